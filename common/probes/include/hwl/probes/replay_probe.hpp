// Replays recorded real tool output as if it came from live GPUs: for tests, demos and hosts
// without GPUs. Configured as "replay:PATH" where PATH is
//   - a capture file: an nvidia-smi --query-gpu CSV (the busy/idle sibling "<x>-idle.csv" and the
//     matching "<prefix>-compute-apps.csv" are picked up), an `nvidia-smi -q -x` XML, or a
//     `rocm-smi --json` file;
//   - a directory: its "replay.json" if present, else every capture in it;
//   - a replay spec (JSON): {"files": ["a.csv", "b.xml"], "gpu_count": 8}; relative paths are
//     taken from the spec's folder; gpu_count replicates the captured GPUs to N GPUs, each with
//     a distinct uuid and its own phase in the busy/idle cycle so load varies across the fleet.
// Each sample advances one step; sources with a busy and an idle capture alternate between them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/probes/probe.hpp"
#include "hwl/probes/sample.hpp"
#include "hwl/result.hpp"

namespace hwl::probes {

struct ReplaySource {
  std::string path;
  std::vector<std::vector<GpuSample>> frames;  // one GPU list per recorded reading
};

// Loads one capture file (see above) into its frames.
Result<ReplaySource> loadReplayCapture(const std::string& path);

struct ReplaySpec {
  std::vector<std::string> files;  // absolute or relative to the spec's folder (resolved)
  std::optional<std::uint32_t> gpu_count;
};
Result<ReplaySpec> parseReplaySpec(std::string_view json, const std::string& baseDir);

class ReplayProbe final : public Probe {
 public:
  // path as described above (without the "replay:" prefix).
  static Result<std::unique_ptr<ReplayProbe>> open(const std::string& path);
  ReplayProbe(std::vector<ReplaySource> sources, std::optional<std::uint32_t> gpuCount);

  [[nodiscard]] std::string name() const override { return "replay"; }
  Result<Sample> sample() override;
  [[nodiscard]] std::uint64_t step() const { return step_; }

 private:
  std::vector<ReplaySource> sources_;
  std::optional<std::uint32_t> gpu_count_;
  std::uint64_t step_ = 0;
};

}  // namespace hwl::probes
