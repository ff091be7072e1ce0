// The agent's outbox journal reader (Outbox::open on a journal left by a crash or a disk fault).
// An input starting with "HWO1" is the journal file itself; otherwise each line is one record
// payload, framed with a valid header and CRC (so mutations reach the JSON and seq checks), and
// a line starting with '!' is appended raw (a torn or foreign tail). Invariants: open never fails
// on content; what it keeps plus what it discards is the file; kept seqs strictly increase; a
// second open finds the same entries and nothing to discard; an append gets the next seq and is
// read back after reopening.
#include <fstream>

#include "fuzz_support.hpp"
#include "hwl/outbox/outbox.hpp"

using namespace hwl;

namespace {

struct World {
  fuzz::ScratchDir dir{"outbox"};
  ManualClock clock{1'700'000'000'000};
};

World& world() {
  static World* w = new World();
  return *w;
}

std::unique_ptr<outbox::Outbox> open(World& w, const std::string& what) {
  outbox::Settings s;
  s.dir = w.dir.path();
  s.host_id = "host-f0f0f0";
  s.max_entries = 1000;
  s.clock = &w.clock;
  auto box = outbox::Outbox::open(s);
  HWL_FUZZ_CHECK(box.has_value(), (box ? "" : box.error().message) + "\n  input: " + what);
  return std::move(*box);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = fuzz::text(data, size);
  std::string file;
  if (in.substr(0, 4) == "HWO1") {
    file = std::string(in);
  } else {
    std::string_view rest = in;
    while (!rest.empty()) {
      auto [line, tail] = fuzz::splitOnce(rest, '\n');
      if (!line.empty() && line.front() == '!')
        file += std::string(line.substr(1));
      else
        file += outbox::encodeRecord(line);
      rest = tail;
    }
  }
  auto& w = world();
  const auto path = w.dir.path() / outbox::kJournalFile;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << file;
    HWL_FUZZ_CHECK(out.good(), path.string());
  }
  const std::string what = std::string(in.substr(0, 600));

  std::vector<outbox::Entry> kept;
  uint64_t last = 0;
  {
    auto box = open(w, what);
    auto st = box->stats();
    HWL_FUZZ_CHECK(st.file_bytes + st.discarded_tail_bytes == file.size(), what);
    kept = box->read(0, 100000);
    uint64_t prev = 0;
    for (const auto& e : kept) {
      HWL_FUZZ_CHECK(e.seq > prev, what);
      prev = e.seq;
    }
    last = box->lastSeq();
    HWL_FUZZ_CHECK(last >= prev && st.acknowledged_seq <= last, what);
    HWL_FUZZ_CHECK(st.stored == kept.size(), what);
  }
  {
    auto box = open(w, what);
    HWL_FUZZ_CHECK(box->stats().discarded_tail_bytes == 0, what);
    auto again = box->read(0, 100000);
    HWL_FUZZ_CHECK(again.size() == kept.size(), what);
    for (size_t i = 0; i < kept.size(); ++i)
      HWL_FUZZ_CHECK(again[i].seq == kept[i].seq && again[i].toJson() == kept[i].toJson(), what);
    auto e = box->append("job.started", boost::json::object{{"job_id", "j1"}});
    if (!e) {
      HWL_FUZZ_CHECK(e.error().code == Code::kResourceExhausted, e.error().message);
      return 0;
    }
    HWL_FUZZ_CHECK(e->seq == last + 1, std::to_string(e->seq) + " after " + std::to_string(last));
  }
  {
    auto box = open(w, what);
    auto all = box->read(last, 10);
    HWL_FUZZ_CHECK(all.size() == 1 && all[0].seq == last + 1 && all[0].type == "job.started", what);
  }
  return 0;
}
