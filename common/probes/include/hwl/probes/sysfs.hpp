// Linux sysfs: GPUs under /sys/class/drm (amdgpu exposes VRAM, busy %, hwmon temperature and
// power; other drivers at least the PCI vendor) and CPU package power from RAPL powercap
// energy counters. Every reader takes the sysfs root so tests can point it at a captured tree.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hwl/probes/probe.hpp"
#include "hwl/probes/sample.hpp"

namespace hwl::probes {

// Every /sys/class/drm/cardN (not the connectors cardN-DP-1…) with a device/vendor file.
std::vector<GpuSample> readDrmCards(const std::string& sysRoot);

struct RaplZone {
  std::string id;    // "intel-rapl:0"
  std::string name;  // "package-0", "core", "dram", "psys"
  std::uint64_t energy_uj = 0;
  std::optional<std::uint64_t> max_energy_range_uj;
};
// Top-level zones (intel-rapl:N, not sub-zones intel-rapl:N:M) under class/powercap.
std::vector<RaplZone> readRaplZones(const std::string& sysRoot);
// Sub-zones too (intel-rapl:N:M), for inspection.
std::vector<RaplZone> readAllRaplZones(const std::string& sysRoot);

// Energy between two readings of one counter, handling one wrap at max_energy_range_uj.
// nullopt when the counter went backwards without a known range.
std::optional<std::uint64_t> raplEnergyDeltaUj(std::uint64_t before, std::uint64_t after,
                                               std::optional<std::uint64_t> maxRangeUj);

// GPUs from /sys/class/drm; used when no vendor tool works.
class SysfsGpuProbe final : public Probe {
 public:
  explicit SysfsGpuProbe(std::string sysRoot) : sys_root_(std::move(sysRoot)) {}
  [[nodiscard]] std::string name() const override { return "sysfs"; }
  Result<Sample> sample() override;

 private:
  std::string sys_root_;
};

// CPU package power: sums the package zones' energy over the time between two samples.
class RaplProbe final : public Probe {
 public:
  using SteadyNow = std::function<std::chrono::steady_clock::time_point()>;
  explicit RaplProbe(
      std::string sysRoot, SteadyNow now = [] { return std::chrono::steady_clock::now(); })
      : sys_root_(std::move(sysRoot)), now_(std::move(now)) {}
  [[nodiscard]] std::string name() const override { return "rapl"; }
  // host.package_power_w is absent on the first call (one reading gives no rate).
  Result<Sample> sample() override;

 private:
  std::string sys_root_;
  SteadyNow now_;
  std::map<std::string, std::uint64_t> last_uj_;
  std::optional<std::chrono::steady_clock::time_point> last_time_;
};

}  // namespace hwl::probes
