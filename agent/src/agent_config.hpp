// hwledger-agent configuration: defaults, a JSON file (--config), then flags (which win).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "hwl/result.hpp"

namespace hwl::agent {

inline constexpr const char* kAgentVersion = "0.1.0";

struct AgentConfig {
  std::filesystem::path state_dir = "/var/lib/hwledger-agent";
  std::filesystem::path jobs_root;  // empty: <state_dir>/work
  std::string listen = "0.0.0.0:9443";
  std::string probe = "auto";  // auto|nvml|nvidia-smi|rocm-smi|sysfs|none|replay:PATH
  std::string job_user;
  int64_t sample_interval_ms = 1000;
  int64_t outbox_max_entries = 100'000;
  int64_t log_max_bytes = 64LL << 20;
  int64_t log_keep = 3;
  // How job processes are contained: auto|cgroup-v2|cgroup-v1|subreaper (see containment.hpp).
  std::string job_containment = "auto";
  int64_t job_pids_max = 16384;  // pids.max of a job whose spec has none (threads count); 0: none
  bool dev = false;              // plain HTTP on loopback, no mTLS
  bool metrics_dcgm_labels = false;  // dcgm-exporter's exact label spelling (modelName)
};

// Every key of the file format; each also works as a flag (--state-dir for state_dir, ...).
Result<AgentConfig> loadAgentConfig(const std::filesystem::path& path, AgentConfig base = {});

}  // namespace hwl::agent
