// NVML via dlopen. The handle is owned by a unique_ptr with a dlclose deleter; nvmlShutdown is
// paired with a successful nvmlInit_v2 in the destructor.
#include "hwl/probes/nvml_probe.hpp"

#include <dlfcn.h>

#include <array>
#include <vector>

#include "hwl/probes/text.hpp"

namespace hwl::probes {
namespace {

// From nvml.h (NVML API reference); values are part of the stable C ABI.
using nvmlReturn_t = int;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;
struct nvmlMemory_t {
  unsigned long long total;  // NOLINT(google-runtime-int): C ABI
  unsigned long long free;   // NOLINT(google-runtime-int)
  unsigned long long used;   // NOLINT(google-runtime-int)
};
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};
// nvmlProcessInfo_t as taken by nvmlDeviceGetComputeRunningProcesses_v2/_v3.
struct nvmlProcessInfo_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;  // NOLINT(google-runtime-int)
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
// nvmlProcessInfo_v1_t as taken by the unversioned nvmlDeviceGetComputeRunningProcesses.
struct nvmlProcessInfoV1_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;  // NOLINT(google-runtime-int)
};

constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlErrorInsufficientSize = 7;
constexpr int kNvmlTemperatureGpu = 0;                        // NVML_TEMPERATURE_GPU
constexpr int kNvmlClockSm = 1;                               // NVML_CLOCK_SM
constexpr int kNvmlClockMem = 2;                              // NVML_CLOCK_MEM
constexpr unsigned long long kNvmlValueNotAvailable = ~0ULL;  // NOLINT(google-runtime-int)
constexpr unsigned int kNameBufferSize = 96;                  // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned int kUuidBufferSize = 96;    // >= NVML_DEVICE_UUID_V2_BUFFER_SIZE (96)
constexpr unsigned int kDriverBufferSize = 80;  // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE
constexpr unsigned int kProcessNameSize = 256;

struct DlClose {
  void operator()(void* h) const {
    if (h != nullptr) ::dlclose(h);
  }
};
using LibHandle = std::unique_ptr<void, DlClose>;

template <typename Fn>
bool resolve(void* lib, const char* symbol, Fn& out) {
  out = reinterpret_cast<Fn>(::dlsym(lib, symbol));
  return out != nullptr;
}

}  // namespace

struct NvmlProbe::Api {
  LibHandle lib;
  bool initialized = false;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*system_get_driver_version)(char*, unsigned int) = nullptr;
  nvmlReturn_t (*system_get_process_name)(unsigned int, char*, unsigned int) = nullptr;
  nvmlReturn_t (*device_get_count)(unsigned int*) = nullptr;
  nvmlReturn_t (*device_get_handle_by_index)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*device_get_name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*device_get_uuid)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*device_get_memory_info)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*device_get_utilization_rates)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*device_get_temperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*device_get_power_usage)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*device_get_enforced_power_limit)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*device_get_clock_info)(nvmlDevice_t, int, unsigned int*) = nullptr;
  // NOLINTNEXTLINE(google-runtime-int): C ABI
  nvmlReturn_t (*device_get_total_energy_consumption)(nvmlDevice_t, unsigned long long*) = nullptr;
  // One of the two process calls is resolved, newest first.
  nvmlReturn_t (*device_get_compute_running_processes)(nvmlDevice_t, unsigned int*,
                                                       nvmlProcessInfo_t*) = nullptr;
  nvmlReturn_t (*device_get_compute_running_processes_v1)(nvmlDevice_t, unsigned int*,
                                                          nvmlProcessInfoV1_t*) = nullptr;

  [[nodiscard]] std::string describe(nvmlReturn_t rc) const {
    const char* s = error_string != nullptr ? error_string(rc) : nullptr;
    return s != nullptr ? std::string(s) : "NVML error " + std::to_string(rc);
  }
};

NvmlProbe::NvmlProbe(std::unique_ptr<Api> api) : api_(std::move(api)) {}

NvmlProbe::~NvmlProbe() {
  if (api_ && api_->initialized && api_->shutdown != nullptr) api_->shutdown();
}

Result<std::unique_ptr<NvmlProbe>> NvmlProbe::open(const NvmlSettings& settings) {
  auto api = std::make_unique<Api>();
  api->lib.reset(::dlopen(settings.library.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!api->lib) {
    const char* why = ::dlerror();
    return unavailable("NVML not available: cannot load " + settings.library + ": " +
                       (why != nullptr ? why : "unknown error"));
  }
  void* lib = api->lib.get();
  const bool ok =
      resolve(lib, "nvmlInit_v2", api->init) && resolve(lib, "nvmlShutdown", api->shutdown) &&
      resolve(lib, "nvmlDeviceGetCount_v2", api->device_get_count) &&
      resolve(lib, "nvmlDeviceGetHandleByIndex_v2", api->device_get_handle_by_index) &&
      resolve(lib, "nvmlDeviceGetName", api->device_get_name) &&
      resolve(lib, "nvmlDeviceGetUUID", api->device_get_uuid) &&
      resolve(lib, "nvmlDeviceGetMemoryInfo", api->device_get_memory_info) &&
      resolve(lib, "nvmlDeviceGetUtilizationRates", api->device_get_utilization_rates) &&
      resolve(lib, "nvmlDeviceGetTemperature", api->device_get_temperature) &&
      resolve(lib, "nvmlDeviceGetPowerUsage", api->device_get_power_usage) &&
      resolve(lib, "nvmlDeviceGetEnforcedPowerLimit", api->device_get_enforced_power_limit) &&
      resolve(lib, "nvmlDeviceGetClockInfo", api->device_get_clock_info) &&
      resolve(lib, "nvmlSystemGetDriverVersion", api->system_get_driver_version);
  if (!ok)
    return unavailable("NVML not available: " + settings.library + " lacks a required symbol");
  // Optional: older drivers lack some of these; their metrics are then absent.
  resolve(lib, "nvmlErrorString", api->error_string);
  resolve(lib, "nvmlSystemGetProcessName", api->system_get_process_name);
  resolve(lib, "nvmlDeviceGetTotalEnergyConsumption", api->device_get_total_energy_consumption);
  if (!resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v3",
               api->device_get_compute_running_processes)) {
    if (!resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v2",
                 api->device_get_compute_running_processes)) {
      resolve(lib, "nvmlDeviceGetComputeRunningProcesses",
              api->device_get_compute_running_processes_v1);
    }
  }
  const nvmlReturn_t rc = api->init();
  if (rc != kNvmlSuccess)
    return unavailable("NVML not available: nvmlInit_v2: " + api->describe(rc));
  api->initialized = true;
  return std::unique_ptr<NvmlProbe>(new NvmlProbe(std::move(api)));
}

Result<Sample> NvmlProbe::sample() {
  Api& a = *api_;
  unsigned int count = 0;
  if (nvmlReturn_t rc = a.device_get_count(&count); rc != kNvmlSuccess) {
    return unavailable("nvmlDeviceGetCount_v2: " + a.describe(rc));
  }
  std::array<char, kDriverBufferSize> driver{};
  std::string driverVersion;
  if (a.system_get_driver_version(driver.data(), kDriverBufferSize) == kNvmlSuccess) {
    driverVersion = driver.data();
  }
  Sample s;
  s.time_ms = unixNowMs();
  for (unsigned int i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (nvmlReturn_t rc = a.device_get_handle_by_index(i, &dev); rc != kNvmlSuccess) {
      return unavailable("nvmlDeviceGetHandleByIndex_v2(" + std::to_string(i) +
                         "): " + a.describe(rc));
    }
    GpuSample g;
    g.index = i;
    g.vendor = "nvidia";
    g.driver_version = driverVersion;
    std::array<char, kNameBufferSize> name{};
    if (a.device_get_name(dev, name.data(), kNameBufferSize) == kNvmlSuccess) g.name = name.data();
    std::array<char, kUuidBufferSize> uuid{};
    if (nvmlReturn_t rc = a.device_get_uuid(dev, uuid.data(), kUuidBufferSize);
        rc != kNvmlSuccess) {
      return unavailable("nvmlDeviceGetUUID(" + std::to_string(i) + "): " + a.describe(rc));
    }
    g.uuid = uuid.data();
    nvmlMemory_t mem{};
    if (a.device_get_memory_info(dev, &mem) == kNvmlSuccess) {
      g.memory_total_bytes = mem.total;
      g.memory_used_bytes = mem.used;
      g.memory_free_bytes = mem.free;
    }
    nvmlUtilization_t util{};
    if (a.device_get_utilization_rates(dev, &util) == kNvmlSuccess) {
      g.utilization_gpu_pct = util.gpu;
      g.utilization_memory_pct = util.memory;
    }
    unsigned int v = 0;
    if (a.device_get_temperature(dev, kNvmlTemperatureGpu, &v) == kNvmlSuccess) g.temperature_c = v;
    if (a.device_get_power_usage(dev, &v) == kNvmlSuccess) g.power_w = v / 1000.0;  // mW
    if (a.device_get_enforced_power_limit(dev, &v) == kNvmlSuccess) g.power_limit_w = v / 1000.0;
    if (a.device_get_clock_info(dev, kNvmlClockSm, &v) == kNvmlSuccess) g.clock_sm_mhz = v;
    if (a.device_get_clock_info(dev, kNvmlClockMem, &v) == kNvmlSuccess) g.clock_mem_mhz = v;
    unsigned long long energy = 0;  // NOLINT(google-runtime-int)
    if (a.device_get_total_energy_consumption != nullptr &&
        a.device_get_total_energy_consumption(dev, &energy) == kNvmlSuccess) {
      g.energy_mj = energy;
    }
    // Processes: ask for the count, then retry while the list grows between the two calls.
    auto addProcess = [&](unsigned int pid, unsigned long long used) {  // NOLINT
      ProcessSample p;
      p.pid = pid;
      if (used != kNvmlValueNotAvailable) p.memory_bytes = used;
      std::array<char, kProcessNameSize> pname{};
      if (a.system_get_process_name != nullptr &&
          a.system_get_process_name(pid, pname.data(), kProcessNameSize) == kNvmlSuccess) {
        p.name = pname.data();
      }
      g.processes.push_back(std::move(p));
    };
    // The v2 call and its v1 fallback differ only in the struct they fill.
    auto listProcesses = [&](auto fn, auto info_type) {
      std::vector<decltype(info_type)> infos(8);
      for (int attempt = 0; attempt < 4; ++attempt) {
        auto n = static_cast<unsigned int>(infos.size());
        const nvmlReturn_t rc = fn(dev, &n, infos.data());
        if (rc == kNvmlErrorInsufficientSize) {
          infos.resize(n + 8);
          continue;
        }
        if (rc == kNvmlSuccess) {
          for (unsigned int k = 0; k < n; ++k) addProcess(infos[k].pid, infos[k].usedGpuMemory);
        }
        break;
      }
    };
    if (a.device_get_compute_running_processes != nullptr)
      listProcesses(a.device_get_compute_running_processes, nvmlProcessInfo_t{});
    else if (a.device_get_compute_running_processes_v1 != nullptr)
      listProcesses(a.device_get_compute_running_processes_v1, nvmlProcessInfoV1_t{});
    s.gpus.push_back(std::move(g));
  }
  return s;
}

}  // namespace hwl::probes
