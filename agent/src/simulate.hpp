// Many simulated hosts in one process, for fleet-scale benchmarks: each on its own loopback
// address (127.0.x.y) with its own enrolled identity, outbox and mTLS listener, GPUs replayed
// from recorded captures with a per-host phase so the load varies across the fleet. Jobs are
// accepted (POST /v1/jobs answers as the real agent's API does, idempotent by id) and kept in
// memory, never run: they stay `accepted` and report nothing through the outbox.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

namespace hwl::agent {

struct SimulateOptions {
  int count = 0;
  std::filesystem::path state_dir;  // sim-<i>/ per host
  std::string probe;                // replay:PATH (a capture or a replay spec)
  uint16_t port = 9443;             // every host listens on 127.0.x.y:port
  int64_t sample_interval_ms = 1000;
  // Enrollment of hosts not yet enrolled: one token per line in tokens_file.
  std::string server;
  std::string ca_pin;
  std::filesystem::path tokens_file;
  // One host that answers POST /v1/jobs only after a delay (a dispatch to a stalled agent):
  // host index slow_dispatch_host (-1: none), slow_dispatch_ms milliseconds. It gets worker
  // threads of its own, so its held answers do not hold up the other hosts.
  int slow_dispatch_host = -1;
  int64_t slow_dispatch_ms = 0;
};

// Parses --slow-dispatch HOST_INDEX:MS into opts; false when malformed.
bool parseSlowDispatch(const std::string& text, SimulateOptions& opts);

// The address of simulated host i: 127.0.(1 + i / 250).(1 + i % 250).
std::string simulatedAddress(int i, uint16_t port);

int runSimulation(const SimulateOptions& opts, std::ostream& out);

}  // namespace hwl::agent
