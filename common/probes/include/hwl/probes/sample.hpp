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
  std::optional<std::uint64_t> memory_bytes;  // absent on e.g. Windows WDDM
  // The agent's job this process belongs to (its cgroup, subreaper tree, session or process
  // group), or empty: none, or not matched (see GpuSample::processes_matched).
  std::string job_id;
};

// A MIG (multi-instance GPU) slice of a physical GPU.
struct MigDeviceSample {
  std::uint32_t index = 0;
  std::optional<std::uint32_t> gpu_instance_id;
  std::optional<std::uint32_t> compute_instance_id;
  std::string uuid;     // "MIG-…" where the backend reports it, else empty
  std::string profile;  // e.g. "3g.40gb" where known
  std::optional<std::uint64_t> memory_total_bytes;
  std::optional<std::uint64_t> memory_used_bytes;
  std::optional<std::uint64_t> memory_free_bytes;
};

struct GpuSample {
  std::uint32_t index = 0;
  std::string uuid;  // vendor uuid; for AMD the unique id, or "PCI-<bus id>" when there is none
  std::string name;
  std::string vendor;  // "nvidia", "amd", "intel", or "unknown"
  std::string driver_version;
  std::string pci_bus_id;
  std::optional<std::uint64_t> memory_total_bytes;
  std::optional<std::uint64_t> memory_used_bytes;
  std::optional<std::uint64_t> memory_free_bytes;
  std::optional<double> utilization_gpu_pct;
  std::optional<double> utilization_memory_pct;
  std::optional<double> temperature_c;
  std::optional<double> power_w;
  std::optional<double> power_limit_w;
  std::optional<std::uint32_t> clock_sm_mhz;
  std::optional<std::uint32_t> clock_mem_mhz;
  std::optional<std::uint64_t> energy_mj;  // monotonic energy counter since driver load
  std::vector<ProcessSample> processes;
  // True when the agent matched `processes` against its jobs: a process with no job_id then
  // belongs to no job of the agent's.
  bool processes_matched = false;
  std::vector<MigDeviceSample> mig_devices;
};

struct HostSample {
  std::string cpu_model;
  std::optional<std::uint32_t> cpu_cores;  // logical CPUs
  std::optional<double> cpu_util_pct;      // needs two readings; absent on the first
  std::optional<std::uint64_t> memory_total_bytes;
  std::optional<std::uint64_t> memory_available_bytes;
  std::optional<double> package_power_w;  // CPU packages (RAPL); needs two readings
};

struct Sample {
  std::int64_t time_ms = 0;  // Unix milliseconds
  HostSample host;
  std::vector<GpuSample> gpus;
};

// Figures about the agent process itself, rendered as hwledger_* metrics.
struct AgentSelfStats {
  std::optional<std::uint64_t> resident_memory_bytes;
  std::optional<double> cpu_seconds_total;
  std::uint64_t samples_total = 0;
  std::uint64_t sample_errors_total = 0;
  std::optional<std::uint64_t> outbox_entries;
  std::optional<std::uint64_t> outbox_capacity_entries;
  std::optional<double> start_time_seconds;  // Unix seconds
  std::vector<std::string> backends;         // probe names in use, e.g. {"nvml", "rapl", "proc"}
  std::string version;
};

}  // namespace hwl::probes
