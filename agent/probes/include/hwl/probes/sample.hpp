// The telemetry data model: one Sample = the host plus every GPU at one instant.
// A metric a backend cannot read is std::nullopt ("unsupported"), never 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hwl::probes {

// A process holding a context on a GPU.
struct ProcessSample {
  std::uint32_t pid = 0;
  std::string name;
  std::optional<std::uint64_t> memoryBytes;  // absent on e.g. Windows WDDM
};

// A MIG (multi-instance GPU) slice of a physical GPU.
struct MigDeviceSample {
  std::uint32_t index = 0;
  std::optional<std::uint32_t> gpuInstanceId;
  std::optional<std::uint32_t> computeInstanceId;
  std::string uuid;     // "MIG-…" where the backend reports it, else empty
  std::string profile;  // e.g. "3g.40gb" where known
  std::optional<std::uint64_t> memoryTotalBytes;
  std::optional<std::uint64_t> memoryUsedBytes;
  std::optional<std::uint64_t> memoryFreeBytes;
};

struct GpuSample {
  std::uint32_t index = 0;
  std::string uuid;  // vendor uuid; for AMD the unique id, or "PCI-<bus id>" when there is none
  std::string name;
  std::string vendor;  // "nvidia", "amd", "intel", or "unknown"
  std::string driverVersion;
  std::string pciBusId;
  std::optional<std::uint64_t> memoryTotalBytes;
  std::optional<std::uint64_t> memoryUsedBytes;
  std::optional<std::uint64_t> memoryFreeBytes;
  std::optional<double> utilizationGpuPct;
  std::optional<double> utilizationMemoryPct;
  std::optional<double> temperatureC;
  std::optional<double> powerW;
  std::optional<double> powerLimitW;
  std::optional<std::uint32_t> clockSmMhz;
  std::optional<std::uint32_t> clockMemMhz;
  std::optional<std::uint64_t> energyMj;  // monotonic energy counter since driver load
  std::vector<ProcessSample> processes;
  std::vector<MigDeviceSample> migDevices;
};

struct HostSample {
  std::string cpuModel;
  std::optional<std::uint32_t> cpuCores;  // logical CPUs
  std::optional<double> cpuUtilPct;       // needs two readings; absent on the first
  std::optional<std::uint64_t> memoryTotalBytes;
  std::optional<std::uint64_t> memoryAvailableBytes;
  std::optional<double> packagePowerW;  // CPU packages (RAPL); needs two readings
};

struct Sample {
  std::int64_t timeMs = 0;  // Unix milliseconds
  HostSample host;
  std::vector<GpuSample> gpus;
};

// Figures about the agent process itself, rendered as hwledger_* metrics.
struct AgentSelfStats {
  std::optional<std::uint64_t> residentMemoryBytes;
  std::optional<double> cpuSecondsTotal;
  std::uint64_t samplesTotal = 0;
  std::uint64_t sampleErrorsTotal = 0;
  std::optional<std::uint64_t> outboxEntries;
  std::optional<std::uint64_t> outboxCapacityEntries;
  std::optional<double> startTimeSeconds;  // Unix seconds
  std::vector<std::string> backends;       // probe names in use, e.g. {"nvml", "rapl", "proc"}
  std::string version;
};

}  // namespace hwl::probes
