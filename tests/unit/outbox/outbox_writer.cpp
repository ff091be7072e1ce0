// Test driver: appends outbox entries in a loop and prints each acknowledged seq on stdout, so a
// test can SIGKILL it at an arbitrary moment and check that every printed seq survived.
// Usage: hwl_outbox_writer DIR MAX_ENTRIES ACK_EVERY
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "hwl/outbox/outbox.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DIR MAX_ENTRIES ACK_EVERY\n", argv[0]);
    return 2;
  }
  const uint64_t max_entries = std::strtoull(argv[2], nullptr, 10);
  const uint64_t ack_every = std::strtoull(argv[3], nullptr, 10);
  auto box =
      hwl::outbox::Outbox::open({.dir = argv[1], .host_id = "host-a", .max_entries = max_entries});
  if (!box) {
    std::fprintf(stderr, "open: %s\n", box.error().toString().c_str());
    return 1;
  }
  for (uint64_t i = 0;; ++i) {
    auto e = (*box)->append("probe.gpu_appeared",
                            {{"i", i}, {"pad", std::string(static_cast<size_t>(i % 300), 'x')}});
    if (!e) {
      std::fprintf(stderr, "append: %s\n", e.error().toString().c_str());
      return 1;
    }
    const std::string line = std::to_string(e->seq) + "\n";
    if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 1;
    // Acknowledge a prefix now and then (as the server's drain would), which compacts.
    if (ack_every > 0 && e->seq % ack_every == 0) {
      if (!(*box)->acknowledge(e->seq - ack_every / 2)) return 1;
    }
  }
}
