// rocm-smi --json captures from ROCm 4.3 to 6.1: one card across four releases, and fleets.
#include "hwl/probes/rocm_smi.hpp"

#include <gtest/gtest.h>

#include "hwl/test_fixtures.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

using testing::readCapture;

RocmSmiReport parse(const std::string& file) {
  auto r = parseRocmSmiJson(readCapture(file));
  EXPECT_TRUE(r.has_value()) << file << ": " << (r ? "" : r.error().message);
  return r ? *r : RocmSmiReport{};
}

TEST(RocmSmi, Rx6700XtAcrossRocmVersions) {
  HWL_NEEDS_SHARED_DATA();
  struct Expect {
    const char* file;
    std::uint64_t used;
    const char* name;
    std::optional<double> power;
  };
  for (const auto& e : {
           // 4.3 put the vendor id under "Card series": the name falls back to the device id.
           Expect{"amd-rx6700xt-rocm430-rocm-smi.json", 1622728704, "AMD GPU 0x73df", 6.0},
           Expect{"amd-rx6700xt-rocm571-rocm-smi.json", 1564491776,
                  "Navi 22 [Radeon RX 6700/6700 XT / 6800M]", 6.0},
           // 6.0.2 printed "N/A (Secondary die)" for the average power: unsupported, not 0.
           Expect{"amd-rx6700xt-rocm602-rocm-smi.json", 1572757504,
                  "Navi 22 [Radeon RX 6700/6700 XT / 6800M]", std::nullopt},
           Expect{"amd-rx6700xt-rocm612-rocm-smi.json", 1572745216,
                  "Navi 22 [Radeon RX 6700/6700 XT / 6800M]", 6.0},
       }) {
    const auto r = parse(e.file);
    ASSERT_EQ(r.gpus.size(), 1u) << e.file;
    const auto& g = r.gpus[0];
    EXPECT_EQ(g.vendor, "amd");
    EXPECT_EQ(g.memory_total_bytes, 12868124672u) << e.file;
    EXPECT_EQ(g.memory_used_bytes, e.used) << e.file;
    EXPECT_EQ(g.memory_free_bytes, 12868124672u - e.used) << e.file;
    EXPECT_EQ(g.name, e.name) << e.file;
    EXPECT_EQ(g.power_w, e.power) << e.file;
    EXPECT_EQ(g.power_limit_w, 211.0) << e.file;
    EXPECT_EQ(g.temperature_c, 45.0) << e.file;  // edge sensor
    EXPECT_EQ(g.utilization_gpu_pct, 0.0) << e.file;
    EXPECT_EQ(g.utilization_memory_pct, 0.0) << e.file;
    EXPECT_EQ(g.driver_version, "6.3.6") << e.file;
    EXPECT_EQ(g.pci_bus_id, "0000:07:00.0") << e.file;
    EXPECT_EQ(g.uuid, "PCI-0000:07:00.0") << e.file;  // "Unique ID": "N/A"
    EXPECT_EQ(g.clock_mem_mhz, 96u) << e.file;
    EXPECT_FALSE(g.energy_mj.has_value());
  }
  EXPECT_EQ(parse("amd-rx6700xt-rocm430-rocm-smi.json").gpus[0].clock_sm_mhz, 500u);
  EXPECT_EQ(parse("amd-rx6700xt-rocm612-rocm-smi.json").gpus[0].clock_sm_mhz, 0u);
}

TEST(RocmSmi, Mi100SixCardsRocm571WithAProcess) {
  HWL_NEEDS_SHARED_DATA();
  const auto r = parse("amd-mi100x6-rocm571-rocm-smi.json");
  ASSERT_EQ(r.gpus.size(), 6u);
  for (std::uint32_t i = 0; i < 6; ++i) {
    EXPECT_EQ(r.gpus[i].index, i);
    EXPECT_EQ(r.gpus[i].memory_total_bytes, 34342961152u);
    EXPECT_EQ(r.gpus[i].name, "Arcturus GL-XL [Instinct MI100]");
    EXPECT_EQ(r.gpus[i].driver_version, "6.2.4");
  }
  EXPECT_EQ(r.gpus[0].memory_used_bytes, 6782976u);
  EXPECT_EQ(r.gpus[0].power_w, 39.0);
  EXPECT_EQ(r.gpus[0].power_limit_w, 290.0);
  EXPECT_EQ(r.gpus[0].temperature_c, 31.0);
  EXPECT_EQ(r.gpus[0].clock_sm_mhz, 300u);
  EXPECT_EQ(r.gpus[0].clock_mem_mhz, 1200u);
  EXPECT_EQ(r.gpus[1].power_w, 37.0);
  EXPECT_EQ(r.gpus[5].uuid, "PCI-0000:49:00.0");
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].pid, 104225u);
  EXPECT_EQ(r.processes[0].name, "mlir-cpu-runner");
  EXPECT_EQ(r.processes[0].memory_bytes, 0u);
  // rocm-smi does not say which of the six cards it uses.
  for (const auto& g : r.gpus) EXPECT_TRUE(g.processes.empty());
}

TEST(RocmSmi, Mi100FourCardsRocm602) {
  HWL_NEEDS_SHARED_DATA();
  const auto r = parse("amd-mi100x4-rocm602-rocm-smi.json");
  ASSERT_EQ(r.gpus.size(), 4u);
  EXPECT_EQ(r.gpus[0].uuid, "0x79ccd55167a2124a");
  EXPECT_EQ(r.gpus[1].uuid, "0x4edfb117a17a07d");
  EXPECT_EQ(r.gpus[0].memory_total_bytes, 34342961152u);
  EXPECT_EQ(r.gpus[0].memory_used_bytes, 6750208u);
  EXPECT_EQ(r.gpus[0].power_w, 36.0);
  EXPECT_EQ(r.gpus[1].power_w, 44.0);
  EXPECT_EQ(r.gpus[0].temperature_c, 53.0);
  EXPECT_EQ(r.gpus[3].pci_bus_id, "0000:E3:00.0");
  EXPECT_EQ(r.gpus[0].driver_version, "6.3.6");
}

TEST(RocmSmi, Mi50) {
  HWL_NEEDS_SHARED_DATA();
  const auto r = parse("amd-mi50-rocm-smi.json");
  ASSERT_EQ(r.gpus.size(), 1u);
  const auto& g = r.gpus[0];
  EXPECT_EQ(g.name, "Radeon Instinct MI50 32GB");
  EXPECT_EQ(g.uuid, "0x2f048617326b1ea");
  EXPECT_EQ(g.memory_total_bytes, 34342961152u);
  EXPECT_EQ(g.memory_used_bytes, 10850304u);
  EXPECT_EQ(g.clock_sm_mhz, 1725u);
  EXPECT_EQ(g.clock_mem_mhz, 1000u);
  EXPECT_EQ(g.power_w, 26.0);
  EXPECT_EQ(g.power_limit_w, 225.0);
  EXPECT_EQ(g.driver_version, "5.9.17");
}

TEST(RocmSmi, Rx7800XtWithoutSystemSection) {
  HWL_NEEDS_SHARED_DATA();
  const auto r = parse("amd-rx7800xt-rocm-smi.json");
  ASSERT_EQ(r.gpus.size(), 1u);
  const auto& g = r.gpus[0];
  EXPECT_EQ(g.name, "Navi 32 [Radeon RX 7700 XT / 7800 XT]");
  EXPECT_EQ(g.uuid, "0x5c88007d760374f3");
  EXPECT_EQ(g.memory_total_bytes, 17163091968u);
  EXPECT_EQ(g.memory_used_bytes, 11615076352u);
  EXPECT_EQ(g.utilization_gpu_pct, 100.0);
  EXPECT_EQ(g.power_w, 53.0);
  EXPECT_TRUE(g.driver_version.empty());
  // Not asked for in that command: absent, not zero.
  EXPECT_FALSE(g.power_limit_w.has_value());
  EXPECT_FALSE(g.clock_sm_mhz.has_value());
  EXPECT_FALSE(g.utilization_memory_pct.has_value());
  EXPECT_TRUE(g.pci_bus_id.empty());
}

TEST(RocmSmi, Vega10Xt) {
  HWL_NEEDS_SHARED_DATA();
  const auto r = parse("amd-vega10xt-rocm-smi.json");
  ASSERT_EQ(r.gpus.size(), 1u);
  const auto& g = r.gpus[0];
  EXPECT_EQ(g.name, "AMD GPU 0x6861");  // no series/name key in that release
  EXPECT_EQ(g.uuid, "0x2150e7d042a1124");
  EXPECT_EQ(g.memory_total_bytes, 17163091968u);
  EXPECT_EQ(g.memory_used_bytes, 17776640u);
  EXPECT_EQ(g.temperature_c, 39.0);
  EXPECT_EQ(g.power_w, 15.0);
  EXPECT_EQ(g.power_limit_w, 170.0);
  EXPECT_EQ(g.clock_sm_mhz, 1269u);
  EXPECT_FALSE(g.utilization_memory_pct.has_value());
  EXPECT_EQ(g.driver_version, "5.9.25");
}

TEST(RocmSmi, RejectsBadInput) {
  EXPECT_FALSE(parseRocmSmiJson("not json").has_value());
  EXPECT_FALSE(parseRocmSmiJson("[1,2]").has_value());
  EXPECT_FALSE(parseRocmSmiJson(R"({"cardX": {}})").has_value());
  auto empty = parseRocmSmiJson("{}");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->gpus.empty());
}

}  // namespace
}  // namespace hwl::probes
