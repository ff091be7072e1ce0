// The probe interface, the probe configuration and backend detection.
// A GPU backend fills Sample::gpus, a host backend fills Sample::host; CompositeProbe merges them.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "hwl/probes/sample.hpp"
#include "hwl/result.hpp"

namespace hwl::probes {

class Probe {
 public:
  virtual ~Probe() = default;
  // Backend name as reported by the agent: "nvml", "nvidia-smi", "rocm-smi", "sysfs",
  // "rapl", "proc", "replay".
  [[nodiscard]] virtual std::string name() const = 0;
  // One reading. Blocking (may fork/exec or read files): call it from the sampler thread.
  virtual Result<Sample> sample() = 0;
};

struct ProbeConfig {
  // "auto" tries NVML, nvidia-smi, rocm-smi, then sysfs (first one that finds a GPU wins);
  // "nvml", "nvidia-smi", "rocm-smi", "sysfs" force one backend (an error if it is unusable);
  // "none" reports no GPU; "replay:PATH" replays recorded tool output (see replay_probe.hpp).
  std::string gpu_source = "auto";
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  std::string nvml_library = "libnvidia-ml.so.1";
  std::string nvidia_smi = "nvidia-smi";  // looked up on PATH unless it contains '/'
  std::string rocm_smi = "rocm-smi";
  std::chrono::milliseconds command_timeout{5000};
  bool host_metrics = true;  // the /proc probe (and RAPL when present)
};

// Merges the readings of several probes into one Sample: GPUs are concatenated in probe order,
// host fields are taken from the first probe that reports them. A failing probe does not fail
// the whole sample; its error is kept in lastErrors().
class CompositeProbe final : public Probe {
 public:
  explicit CompositeProbe(std::vector<std::unique_ptr<Probe>> probes);
  [[nodiscard]] std::string name() const override;  // names joined with '+'
  Result<Sample> sample() override;
  [[nodiscard]] std::vector<std::string> backends() const;
  [[nodiscard]] const std::vector<Error>& lastErrors() const { return last_errors_; }

 private:
  std::vector<std::unique_ptr<Probe>> probes_;
  std::vector<Error> last_errors_;
};

// Builds the probe set for this host from the configuration. Fails only when a backend that
// the configuration asks for explicitly cannot be used (bad replay path, forced NVML absent…).
Result<std::unique_ptr<CompositeProbe>> detectProbes(const ProbeConfig& config);

std::int64_t unixNowMs();

}  // namespace hwl::probes
