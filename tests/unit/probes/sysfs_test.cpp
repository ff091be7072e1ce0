// RAPL powercap (from the procfs fixture ttar) and DRM cards under a sysfs root.
#include "hwl/probes/sysfs.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "hwl/test_fixtures.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

using testing::TempDir;

TEST(Rapl, ReadsTheCapturedZones) {
  HWL_NEEDS_SHARED_DATA();
  TempDir dir;
  testing::unpackTtar(testing::capture("linux-rapl-powercap-sysfs.ttar"), dir.path());
  const std::string sysRoot = (dir.path() / "fixtures" / "sys").string();
  const auto zones = readRaplZones(sysRoot);
  ASSERT_EQ(zones.size(), 1u);
  EXPECT_EQ(zones[0].id, "intel-rapl:0");
  EXPECT_EQ(zones[0].name, "package-0");
  EXPECT_EQ(zones[0].energy_uj, 240422366267u);
  EXPECT_EQ(zones[0].max_energy_range_uj, 262143328850u);
  const auto all = readAllRaplZones(sysRoot);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].id, "intel-rapl:0:0");
  EXPECT_EQ(all[1].name, "core");
  EXPECT_EQ(all[1].energy_uj, 118821284256u);
}

TEST(Rapl, DeltaHandlesWrapAround) {
  constexpr std::uint64_t kMax = 262143328850;
  EXPECT_EQ(raplEnergyDeltaUj(100, 350, kMax), 250u);
  EXPECT_EQ(raplEnergyDeltaUj(kMax - 10, 20, kMax), 31u);  // 10 to the top, 1 for the wrap, 20
  EXPECT_FALSE(raplEnergyDeltaUj(500, 20, std::nullopt).has_value());
}

TEST(Rapl, PackagePowerFromTwoReadingsIncludingAWrap) {
  HWL_NEEDS_SHARED_DATA();
  TempDir dir;
  testing::unpackTtar(testing::capture("linux-rapl-powercap-sysfs.ttar"), dir.path());
  const std::string sysRoot = (dir.path() / "fixtures" / "sys").string();
  const auto energyFile = dir.path() / "fixtures/sys/class/powercap/intel-rapl:0/energy_uj";
  auto clock = std::chrono::steady_clock::time_point{};
  RaplProbe probe(sysRoot, [&clock] { return clock; });

  auto first = probe.sample();
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->host.package_power_w.has_value());  // one reading: no rate yet

  clock += std::chrono::seconds(2);
  std::ofstream(energyFile) << (240422366267ULL + 90'000'000ULL) << "\n";  // 90 J in 2 s
  auto second = probe.sample();
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(second->host.package_power_w.has_value());
  EXPECT_DOUBLE_EQ(*second->host.package_power_w, 45.0);

  // The counter wraps at max_energy_range_uj (262143328850 µJ, about 72 h at 1 kW).
  clock += std::chrono::seconds(1000);
  const std::uint64_t before = 240422366267ULL + 90'000'000ULL;
  const std::uint64_t wrapped = 1'000'000ULL;
  std::ofstream(energyFile) << wrapped << "\n";
  auto third = probe.sample();
  ASSERT_TRUE(third.has_value());
  ASSERT_TRUE(third->host.package_power_w.has_value());
  const double expectedUj = static_cast<double>((262143328850ULL - before) + wrapped + 1);
  EXPECT_NEAR(*third->host.package_power_w, expectedUj / 1e6 / 1000.0, 1e-9);
  EXPECT_GT(*third->host.package_power_w, 0.0);
}

TEST(Rapl, NoPowercapIsUnavailable) {
  TempDir dir;
  RaplProbe probe(dir.path().string());
  auto s = probe.sample();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, Code::kUnavailable);
}

// No drm capture exists; this tree follows the amdgpu sysfs layout with the RX 6700 XT's
// figures from the rocm-smi capture.
TEST(DrmCards, AmdgpuLayout) {
  TempDir dir;
  const std::string dev = "class/drm/card0/device/";
  dir.write(dev + "vendor", "0x1002\n");
  dir.write(dev + "device", "0x73df\n");
  dir.write(dev + "uevent", "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_SLOT_NAME=0000:07:00.0\n");
  dir.write(dev + "mem_info_vram_total", "12868124672\n");
  dir.write(dev + "mem_info_vram_used", "1622728704\n");
  dir.write(dev + "gpu_busy_percent", "7\n");
  dir.write(dev + "hwmon/hwmon3/temp1_input", "45000\n");
  dir.write(dev + "hwmon/hwmon3/temp1_label", "edge\n");
  dir.write(dev + "hwmon/hwmon3/power1_average", "6000000\n");
  dir.write(dev + "hwmon/hwmon3/power1_cap", "211000000\n");
  dir.write(dev + "hwmon/hwmon3/freq1_input", "500000000\n");
  dir.write("class/drm/card0-DP-1/status", "connected\n");  // a connector, not a card
  dir.write("class/drm/card1/device/vendor", "0x10de\n");   // NVIDIA without amdgpu files
  dir.write("class/drm/card1/device/device", "0x2684\n");
  dir.write("class/drm/renderD128/device/vendor", "0x1002\n");  // render node, not a card

  const auto gpus = readDrmCards(dir.path().string());
  ASSERT_EQ(gpus.size(), 2u);
  const auto& a = gpus[0];
  EXPECT_EQ(a.index, 0u);
  EXPECT_EQ(a.vendor, "amd");
  EXPECT_EQ(a.name, "AMD GPU 0x73df");
  EXPECT_EQ(a.pci_bus_id, "0000:07:00.0");
  EXPECT_EQ(a.uuid, "PCI-0000:07:00.0");
  EXPECT_EQ(a.memory_total_bytes, 12868124672u);
  EXPECT_EQ(a.memory_used_bytes, 1622728704u);
  EXPECT_EQ(a.memory_free_bytes, 12868124672u - 1622728704u);
  EXPECT_EQ(a.utilization_gpu_pct, 7.0);
  EXPECT_FALSE(a.utilization_memory_pct.has_value());
  EXPECT_EQ(a.temperature_c, 45.0);
  EXPECT_EQ(a.power_w, 6.0);
  EXPECT_EQ(a.power_limit_w, 211.0);
  EXPECT_EQ(a.clock_sm_mhz, 500u);
  const auto& n = gpus[1];
  EXPECT_EQ(n.vendor, "nvidia");
  EXPECT_EQ(n.name, "NVIDIA GPU 0x2684");
  EXPECT_FALSE(n.memory_total_bytes.has_value());
  EXPECT_FALSE(n.temperature_c.has_value());
  EXPECT_FALSE(n.power_w.has_value());
}

TEST(DrmCards, NoDrmClassMeansNoGpu) {
  TempDir dir;
  EXPECT_TRUE(readDrmCards(dir.path().string()).empty());
}

}  // namespace
}  // namespace hwl::probes
