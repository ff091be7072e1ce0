// What the server learns of an agentless host over SSH, with the agent's own parsers
// (hwl_probes): one exec per poll runs a fixed POSIX sh script that prints, between marker
// lines, `uname -m`, `nproc`, /proc/meminfo, the first line of /proc/stat and the GPUs —
// `nvidia-smi --query-gpu=…` (and its compute apps), else `rocm-smi … --json`, else
// `lspci -mm -nn` (inventory only). The markers carry a random nonce per poll, so nothing a
// remote tool prints can open or close a section.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/probes/procfs.hpp"
#include "hwl/probes/sample.hpp"
#include "hwl/result.hpp"

namespace hwl::ssh {
class SshSession;
}

namespace hwl::agentless {

struct Probed {
  std::string arch;     // uname -m
  std::string backend;  // "nvidia-smi", "rocm-smi", "lspci" or "none"
  probes::Sample sample;
  std::optional<probes::CpuTimes> cpu;  // the /proc/stat reading, for the next poll's CPU use
};

// The script for one poll (nonce: 16 lowercase hex digits, else refused).
[[nodiscard]] Result<std::string> probeScript(std::string_view nonce);
// Parses the script's output; `previous_cpu` (the last poll's reading) gives cpu_util_pct. Each
// section at most once and in the script's order (else the output is refused: a tool printed
// marker lines), at most kMaxGpus GPUs with distinct uuids, text bounded and valid UTF-8.
[[nodiscard]] Result<Probed> parseProbeOutput(std::string_view output, std::string_view nonce,
                                              const std::optional<probes::CpuTimes>& previous_cpu,
                                              int64_t time_ms);
// Bounds on what a host may report (as for agents: at most 256 GPUs).
inline constexpr size_t kMaxGpus = 256;
inline constexpr size_t kMaxProcesses = 1024;

// Runs the script on `session` and parses it.
[[nodiscard]] Result<Probed> probeHost(ssh::SshSession& session, std::chrono::milliseconds timeout,
                                       const std::optional<probes::CpuTimes>& previous_cpu = {});

// `lspci -mm -nn`: display controllers (classes 0300, 0302, 0380) of NVIDIA, AMD and Intel, as
// GPUs without telemetry ("uuid": "PCI-<slot>").
[[nodiscard]] std::vector<probes::GpuSample> parseLspciGpus(std::string_view text);

// The GPUs as host.enrolled_ssh and host.inventory_changed record them.
[[nodiscard]] boost::json::array inventoryOf(const probes::Sample& sample);
// The platform of host.enrolled_ssh: arch, cpu_cores, memory_bytes, gpu_backend.
[[nodiscard]] boost::json::object platformOf(const Probed& p);

}  // namespace hwl::agentless
