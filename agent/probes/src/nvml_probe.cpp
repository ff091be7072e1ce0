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
  const char* (*errorString)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*systemGetDriverVersion)(char*, unsigned int) = nullptr;
  nvmlReturn_t (*systemGetProcessName)(unsigned int, char*, unsigned int) = nullptr;
  nvmlReturn_t (*deviceGetCount)(unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetHandleByIndex)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*deviceGetName)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*deviceGetUuid)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*deviceGetMemoryInfo)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*deviceGetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*deviceGetTemperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetPowerUsage)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetEnforcedPowerLimit)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*deviceGetClockInfo)(nvmlDevice_t, int, unsigned int*) = nullptr;
  // NOLINTNEXTLINE(google-runtime-int): C ABI
  nvmlReturn_t (*deviceGetTotalEnergyConsumption)(nvmlDevice_t, unsigned long long*) = nullptr;
  // One of the two process calls is resolved, newest first.
  nvmlReturn_t (*deviceGetComputeRunningProcesses)(nvmlDevice_t, unsigned int*,
                                                   nvmlProcessInfo_t*) = nullptr;
  nvmlReturn_t (*deviceGetComputeRunningProcessesV1)(nvmlDevice_t, unsigned int*,
                                                     nvmlProcessInfoV1_t*) = nullptr;

  [[nodiscard]] std::string describe(nvmlReturn_t rc) const {
    const char* s = errorString != nullptr ? errorString(rc) : nullptr;
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
      resolve(lib, "nvmlDeviceGetCount_v2", api->deviceGetCount) &&
      resolve(lib, "nvmlDeviceGetHandleByIndex_v2", api->deviceGetHandleByIndex) &&
      resolve(lib, "nvmlDeviceGetName", api->deviceGetName) &&
      resolve(lib, "nvmlDeviceGetUUID", api->deviceGetUuid) &&
      resolve(lib, "nvmlDeviceGetMemoryInfo", api->deviceGetMemoryInfo) &&
      resolve(lib, "nvmlDeviceGetUtilizationRates", api->deviceGetUtilizationRates) &&
      resolve(lib, "nvmlDeviceGetTemperature", api->deviceGetTemperature) &&
      resolve(lib, "nvmlDeviceGetPowerUsage", api->deviceGetPowerUsage) &&
      resolve(lib, "nvmlDeviceGetEnforcedPowerLimit", api->deviceGetEnforcedPowerLimit) &&
      resolve(lib, "nvmlDeviceGetClockInfo", api->deviceGetClockInfo) &&
      resolve(lib, "nvmlSystemGetDriverVersion", api->systemGetDriverVersion);
  if (!ok)
    return unavailable("NVML not available: " + settings.library + " lacks a required symbol");
  // Optional: older drivers lack some of these; their metrics are then absent.
  resolve(lib, "nvmlErrorString", api->errorString);
  resolve(lib, "nvmlSystemGetProcessName", api->systemGetProcessName);
  resolve(lib, "nvmlDeviceGetTotalEnergyConsumption", api->deviceGetTotalEnergyConsumption);
  if (!resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v3",
               api->deviceGetComputeRunningProcesses)) {
    if (!resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v2",
                 api->deviceGetComputeRunningProcesses)) {
      resolve(lib, "nvmlDeviceGetComputeRunningProcesses", api->deviceGetComputeRunningProcessesV1);
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
  if (nvmlReturn_t rc = a.deviceGetCount(&count); rc != kNvmlSuccess) {
    return unavailable("nvmlDeviceGetCount_v2: " + a.describe(rc));
  }
  std::array<char, kDriverBufferSize> driver{};
  std::string driverVersion;
  if (a.systemGetDriverVersion(driver.data(), kDriverBufferSize) == kNvmlSuccess) {
    driverVersion = driver.data();
  }
  Sample s;
  s.timeMs = unixNowMs();
  for (unsigned int i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (nvmlReturn_t rc = a.deviceGetHandleByIndex(i, &dev); rc != kNvmlSuccess) {
      return unavailable("nvmlDeviceGetHandleByIndex_v2(" + std::to_string(i) +
                         "): " + a.describe(rc));
    }
    GpuSample g;
    g.index = i;
    g.vendor = "nvidia";
    g.driverVersion = driverVersion;
    std::array<char, kNameBufferSize> name{};
    if (a.deviceGetName(dev, name.data(), kNameBufferSize) == kNvmlSuccess) g.name = name.data();
    std::array<char, kUuidBufferSize> uuid{};
    if (nvmlReturn_t rc = a.deviceGetUuid(dev, uuid.data(), kUuidBufferSize); rc != kNvmlSuccess) {
      return unavailable("nvmlDeviceGetUUID(" + std::to_string(i) + "): " + a.describe(rc));
    }
    g.uuid = uuid.data();
    nvmlMemory_t mem{};
    if (a.deviceGetMemoryInfo(dev, &mem) == kNvmlSuccess) {
      g.memoryTotalBytes = mem.total;
      g.memoryUsedBytes = mem.used;
      g.memoryFreeBytes = mem.free;
    }
    nvmlUtilization_t util{};
    if (a.deviceGetUtilizationRates(dev, &util) == kNvmlSuccess) {
      g.utilizationGpuPct = util.gpu;
      g.utilizationMemoryPct = util.memory;
    }
    unsigned int v = 0;
    if (a.deviceGetTemperature(dev, kNvmlTemperatureGpu, &v) == kNvmlSuccess) g.temperatureC = v;
    if (a.deviceGetPowerUsage(dev, &v) == kNvmlSuccess) g.powerW = v / 1000.0;  // mW
    if (a.deviceGetEnforcedPowerLimit(dev, &v) == kNvmlSuccess) g.powerLimitW = v / 1000.0;
    if (a.deviceGetClockInfo(dev, kNvmlClockSm, &v) == kNvmlSuccess) g.clockSmMhz = v;
    if (a.deviceGetClockInfo(dev, kNvmlClockMem, &v) == kNvmlSuccess) g.clockMemMhz = v;
    unsigned long long energy = 0;  // NOLINT(google-runtime-int)
    if (a.deviceGetTotalEnergyConsumption != nullptr &&
        a.deviceGetTotalEnergyConsumption(dev, &energy) == kNvmlSuccess) {
      g.energyMj = energy;
    }
    // Processes: ask for the count, then retry while the list grows between the two calls.
    auto addProcess = [&](unsigned int pid, unsigned long long used) {  // NOLINT
      ProcessSample p;
      p.pid = pid;
      if (used != kNvmlValueNotAvailable) p.memoryBytes = used;
      std::array<char, kProcessNameSize> pname{};
      if (a.systemGetProcessName != nullptr &&
          a.systemGetProcessName(pid, pname.data(), kProcessNameSize) == kNvmlSuccess) {
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
    if (a.deviceGetComputeRunningProcesses != nullptr)
      listProcesses(a.deviceGetComputeRunningProcesses, nvmlProcessInfo_t{});
    else if (a.deviceGetComputeRunningProcessesV1 != nullptr)
      listProcesses(a.deviceGetComputeRunningProcessesV1, nvmlProcessInfoV1_t{});
    s.gpus.push_back(std::move(g));
  }
  return s;
}

}  // namespace hwl::probes
