// NVIDIA through the nvidia-smi tool: the --query-gpu / --query-compute-apps CSV formats
// (with or without header and units), `nvidia-smi -L`, `nvidia-smi -q -x`, and the probe
// that runs nvidia-smi when NVML cannot be loaded.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/probes/probe.hpp"
#include "hwl/probes/sample.hpp"
#include "hwl/result.hpp"

namespace hwl::probes {

// The fields the probe asks for, in this order (all documented by `nvidia-smi --help-query-gpu`).
inline constexpr std::string_view kQueryGpuFields[] = {"index",
                                                       "uuid",
                                                       "name",
                                                       "driver_version",
                                                       "memory.total",
                                                       "memory.used",
                                                       "memory.free",
                                                       "utilization.gpu",
                                                       "utilization.memory",
                                                       "temperature.gpu",
                                                       "power.draw",
                                                       "power.limit",
                                                       "clocks.sm",
                                                       "clocks.mem"};
inline constexpr std::string_view kQueryComputeAppsFields[] = {"gpu_uuid", "pid", "process_name",
                                                               "used_memory"};

// Parses `--query-gpu=… --format=csv[,noheader][,nounits]`. With `fields` empty the first line
// is the header ("memory.total [MiB]"; the unit suffix is ignored); otherwise every line is a
// row of those fields. Columns are matched by name, so any field order or superset works.
// A row without an index gets its row number.
Result<std::vector<GpuSample>> parseQueryGpuCsv(std::string_view csv,
                                                std::span<const std::string_view> fields = {});

struct ComputeApp {
  std::string gpu_uuid;
  ProcessSample process;
};
// Parses `--query-compute-apps=…` in the same way (process names may contain ", ").
Result<std::vector<ComputeApp>> parseComputeAppsCsv(std::string_view csv,
                                                    std::span<const std::string_view> fields = {});
// Attaches each process to the GPU with its uuid; returns how many found no GPU.
std::size_t attachProcesses(std::vector<GpuSample>& gpus, const std::vector<ComputeApp>& apps);

// `nvidia-smi -L`: GPUs and their MIG devices (uuid, profile such as "3g.40gb").
struct ListedGpu {
  std::uint32_t index = 0;
  std::string name;
  std::string uuid;
  std::vector<MigDeviceSample> mig_devices;
};
Result<std::vector<ListedGpu>> parseNvidiaSmiList(std::string_view text);

// `nvidia-smi -q -x` (DTD v11 to v13): every <gpu>, its processes and MIG devices.
Result<std::vector<GpuSample>> parseNvidiaSmiXml(std::string_view xml);

struct NvidiaSmiSettings {
  std::string executable = "nvidia-smi";
  std::chrono::milliseconds timeout{5000};
};

// Runs nvidia-smi twice per sample (GPUs, then compute processes).
class NvidiaSmiProbe final : public Probe {
 public:
  explicit NvidiaSmiProbe(NvidiaSmiSettings settings) : settings_(std::move(settings)) {}
  [[nodiscard]] std::string name() const override { return "nvidia-smi"; }
  Result<Sample> sample() override;

 private:
  NvidiaSmiSettings settings_;
};

}  // namespace hwl::probes
