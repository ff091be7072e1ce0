// Host metrics from /proc: CPU utilisation (/proc/stat, two readings), memory
// (/proc/meminfo), CPU model and logical core count (/proc/cpuinfo), and the agent's own
// resident memory and CPU time (/proc/self/stat). Every reader takes the proc root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/probes/probe.hpp"
#include "hwl/probes/sample.hpp"
#include "hwl/result.hpp"

namespace hwl::probes {

struct CpuTimes {  // jiffies summed over all CPUs (the "cpu " line)
  std::uint64_t busy = 0;
  std::uint64_t idle = 0;  // idle + iowait
  [[nodiscard]] std::uint64_t total() const { return busy + idle; }
};
Result<CpuTimes> parseProcStat(std::string_view text);
// Busy share between two readings in percent; nullopt when no time passed.
std::optional<double> cpuUtilizationPct(const CpuTimes& before, const CpuTimes& after);

struct MemInfo {
  std::optional<std::uint64_t> total_bytes;
  std::optional<std::uint64_t> available_bytes;
};
MemInfo parseMeminfo(std::string_view text);

struct CpuInfo {
  std::string model;               // "model name" (x86), else "Hardware"/"Processor"/"cpu model"
  std::uint32_t logical_cpus = 0;  // "processor" entries
};
CpuInfo parseCpuinfo(std::string_view text);

// Resident memory and user+system CPU seconds of a process from <procRoot>/<pid>/stat
// (pid "self" by default).
Result<AgentSelfStats> readProcessStats(const std::string& procRoot = "/proc",
                                        const std::string& pid = "self");

class ProcHostProbe final : public Probe {
 public:
  explicit ProcHostProbe(std::string procRoot) : proc_root_(std::move(procRoot)) {}
  [[nodiscard]] std::string name() const override { return "proc"; }
  Result<Sample> sample() override;  // host.cpu_util_pct absent on the first call

 private:
  std::string proc_root_;
  std::optional<CpuTimes> last_;
  std::optional<CpuInfo> cpu_info_;  // read once
};

}  // namespace hwl::probes
