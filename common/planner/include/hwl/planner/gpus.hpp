// Peak figures of known GPUs (memory bandwidth, dense tensor FLOPs, memory), for the throughput
// upper bounds of a plan. Every figure and its source is listed in docs/planner.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hwl::planner {

struct GpuPeak {
  std::string name;                // canonical, e.g. "H100 SXM"
  double mem_bandwidth = 0;        // bytes/s, peak
  double bf16_flops = 0;           // dense tensor FLOP/s at bf16/fp16 inputs, fp32 accumulate
  double fp8_flops = 0;            // dense; 0 when the GPU has no FP8 tensor cores
  std::uint64_t memory_bytes = 0;  // on-board memory; 0 = not to be used for the fit
};

// The GPU a name denotes: a canonical name ("H100 SXM", "a100-80gb", "mi300x") or what
// nvidia-smi / amd-smi report ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"). Case, spaces,
// dashes and vendor words do not matter. nullopt when not known.
std::optional<GpuPeak> gpuPeak(std::string_view name);

// "unknown GPU 'X' (known: H200, H100 NVL, ...)".
std::string unknownGpuMessage(std::string_view name);

// Every known GPU, in table order.
const std::vector<GpuPeak>& knownGpus();

}  // namespace hwl::planner
