// `nvidia-smi -q -x` captures (DTD v11, v12, v13) through the XML reader.
#include <gtest/gtest.h>

#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/test_fixtures.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

using testing::readCapture;
constexpr std::uint64_t kMiB = 1024ULL * 1024ULL;

std::vector<GpuSample> parse(const std::string& file) {
  auto gpus = parseNvidiaSmiXml(readCapture(file));
  EXPECT_TRUE(gpus.has_value()) << file << ": " << (gpus ? "" : gpus.error().message);
  return gpus ? *gpus : std::vector<GpuSample>{};
}

TEST(NvidiaSmiXml, A100With2MigDevicesV11) {
  HWL_NEEDS_SHARED_DATA();
  const auto gpus = parse("nvidia-a100-40gb-mig-smi-q-x.xml");
  ASSERT_EQ(gpus.size(), 1u);
  const auto& g = gpus[0];
  EXPECT_EQ(g.uuid, "GPU-27b94a00-ed54-5c24-b1fd-1054085de32a");
  EXPECT_EQ(g.name, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(g.driver_version, "510.47.03");
  EXPECT_EQ(g.pci_bus_id, "00000000:00:04.0");
  EXPECT_EQ(g.memory_total_bytes, 40960 * kMiB);
  EXPECT_EQ(g.memory_used_bytes, 38 * kMiB);
  EXPECT_EQ(g.memory_free_bytes, 40315 * kMiB);
  EXPECT_FALSE(g.utilization_gpu_pct.has_value());  // N/A in MIG mode
  EXPECT_FALSE(g.utilization_memory_pct.has_value());
  EXPECT_EQ(g.temperature_c, 36.0);
  EXPECT_DOUBLE_EQ(*g.power_w, 66.92);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 400.0);  // v11 enforced_power_limit
  EXPECT_EQ(g.clock_sm_mhz, 1410u);
  EXPECT_EQ(g.clock_mem_mhz, 1215u);
  EXPECT_TRUE(g.processes.empty());
  ASSERT_EQ(g.mig_devices.size(), 2u);
  EXPECT_EQ(g.mig_devices[0].index, 0u);
  EXPECT_EQ(g.mig_devices[0].gpu_instance_id, 1u);
  EXPECT_EQ(g.mig_devices[0].compute_instance_id, 0u);
  EXPECT_EQ(g.mig_devices[0].memory_total_bytes, 19968 * kMiB);
  EXPECT_EQ(g.mig_devices[0].memory_used_bytes, 19 * kMiB);
  EXPECT_EQ(g.mig_devices[1].gpu_instance_id, 2u);
  EXPECT_EQ(g.mig_devices[1].memory_free_bytes, 19948 * kMiB);
}

TEST(NvidiaSmiXml, A100With4MigDevicesV12) {
  HWL_NEEDS_SHARED_DATA();
  const auto gpus = parse("nvidia-a100-80gb-mig-smi-q-x.xml");
  ASSERT_EQ(gpus.size(), 1u);  // attached_gpus says 4: the capture was trimmed upstream
  const auto& g = gpus[0];
  EXPECT_EQ(g.uuid, "GPU-513536b6-7d19-9063-b049-1e69664bb298");
  EXPECT_EQ(g.name, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(g.driver_version, "535.54.03");
  EXPECT_EQ(g.index, 0u);  // nvidia-smi order, not minor_number (1)
  EXPECT_EQ(g.memory_total_bytes, 81920 * kMiB);
  EXPECT_EQ(g.memory_used_bytes, 50 * kMiB);
  EXPECT_EQ(g.temperature_c, 27.0);
  EXPECT_DOUBLE_EQ(*g.power_w, 67.03);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 500.0);  // v12 current_power_limit
  EXPECT_EQ(g.clock_sm_mhz, 1275u);
  EXPECT_EQ(g.clock_mem_mhz, 1593u);
  ASSERT_EQ(g.mig_devices.size(), 4u);
  EXPECT_EQ(g.mig_devices[0].gpu_instance_id, 3u);
  EXPECT_EQ(g.mig_devices[3].gpu_instance_id, 6u);
  EXPECT_EQ(g.mig_devices[3].memory_used_bytes, 12 * kMiB);
  EXPECT_TRUE(g.mig_devices[0].uuid.empty());  // not in this DTD; `nvidia-smi -L` has it
  EXPECT_TRUE(g.processes.empty());            // <processes />
}

TEST(NvidiaSmiXml, TwoA5000sV13) {
  HWL_NEEDS_SHARED_DATA();
  const auto gpus = parse("nvidia-a5000x2-smi-q-x.xml");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].index, 0u);
  EXPECT_EQ(gpus[1].index, 1u);
  EXPECT_EQ(gpus[0].uuid, "GPU-12345678-aaaa-bbbb-cccc-0123456789ab");
  EXPECT_EQ(gpus[1].uuid, "GPU-12345678-aaaa-bbbb-cccc-0123456789cd");
  EXPECT_EQ(gpus[0].name, "NVIDIA RTX A5000");
  EXPECT_EQ(gpus[0].driver_version, "590.44.01");
  EXPECT_EQ(gpus[0].memory_total_bytes, 24564 * kMiB);
  EXPECT_EQ(gpus[0].memory_used_bytes, 22437 * kMiB);
  EXPECT_EQ(gpus[1].memory_used_bytes, 17253 * kMiB);
  EXPECT_DOUBLE_EQ(*gpus[0].power_w, 6.52);  // v13 instant_power_draw
  EXPECT_DOUBLE_EQ(*gpus[1].power_w, 13.59);
  EXPECT_DOUBLE_EQ(*gpus[0].power_limit_w, 230.0);
  EXPECT_EQ(gpus[0].temperature_c, 13.0);
  EXPECT_EQ(gpus[1].temperature_c, 15.0);
  EXPECT_EQ(gpus[0].utilization_gpu_pct, 0.0);  // a real 0 %, present
  EXPECT_EQ(gpus[0].clock_sm_mhz, 210u);
  EXPECT_EQ(gpus[0].clock_mem_mhz, 405u);
  ASSERT_EQ(gpus[0].processes.size(), 1u);
  EXPECT_EQ(gpus[0].processes[0].pid, 100477u);
  EXPECT_EQ(gpus[0].processes[0].name, "/root/src/llama.cpp/build/bin/llama-server");
  EXPECT_EQ(gpus[0].processes[0].memory_bytes, 22430 * kMiB);
  ASSERT_EQ(gpus[1].processes.size(), 1u);
  EXPECT_EQ(gpus[1].processes[0].memory_bytes, 17246 * kMiB);
  EXPECT_TRUE(gpus[0].mig_devices.empty());
}

TEST(NvidiaSmiXml, RtxPro6000BlackwellV13) {
  HWL_NEEDS_SHARED_DATA();
  const auto gpus = parse("nvidia-rtxpro6000maxq-smi-q-x.xml");
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].name, "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition");
  EXPECT_EQ(gpus[0].memory_total_bytes, 97887 * kMiB);
  EXPECT_EQ(gpus[0].memory_used_bytes, 65720 * kMiB);
  EXPECT_DOUBLE_EQ(*gpus[0].power_w, 3.99);
  EXPECT_DOUBLE_EQ(*gpus[0].power_limit_w, 300.0);
  EXPECT_EQ(gpus[0].temperature_c, 24.0);
  EXPECT_EQ(gpus[0].clock_sm_mhz, 180u);
  ASSERT_EQ(gpus[0].processes.size(), 1u);
  EXPECT_EQ(gpus[0].processes[0].pid, 116860u);
  EXPECT_EQ(gpus[0].processes[0].memory_bytes, 65710 * kMiB);
}

TEST(NvidiaSmiXml, TeslaT4V11) {
  HWL_NEEDS_SHARED_DATA();
  const auto gpus = parse("nvidia-t4-smi-q-x.xml");
  ASSERT_EQ(gpus.size(), 1u);
  const auto& g = gpus[0];
  EXPECT_EQ(g.uuid, "GPU-d37e67a5-91dd-3774-a5cb-99096249601a");
  EXPECT_EQ(g.name, "Tesla T4");
  EXPECT_EQ(g.driver_version, "515.105.01");
  EXPECT_EQ(g.memory_total_bytes, 15360 * kMiB);
  EXPECT_EQ(g.memory_used_bytes, 1032 * kMiB);
  EXPECT_DOUBLE_EQ(*g.power_w, 26.78);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 70.0);
  EXPECT_EQ(g.clock_sm_mhz, 585u);
  EXPECT_EQ(g.clock_mem_mhz, 5000u);
  ASSERT_EQ(g.processes.size(), 2u);
  EXPECT_EQ(g.processes[0].pid, 675u);
  EXPECT_EQ(g.processes[0].name, "/usr/lib/xorg/Xorg");
  EXPECT_EQ(g.processes[0].memory_bytes, 22 * kMiB);
  EXPECT_EQ(g.processes[1].pid, 5762u);
  EXPECT_EQ(g.processes[1].name, "python");
  EXPECT_EQ(g.processes[1].memory_bytes, 1005 * kMiB);
}

TEST(NvidiaSmiXml, Rtx4090V12) {
  HWL_NEEDS_SHARED_DATA();
  const auto gpus = parse("nvidia-rtx4090-smi-q-x.xml");
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].uuid, "GPU-71d1acc2-662d-2166-bf9f-65272d2fc437");
  EXPECT_EQ(gpus[0].name, "NVIDIA GeForce RTX 4090");
  EXPECT_EQ(gpus[0].driver_version, "535.86.05");
  EXPECT_EQ(gpus[0].memory_total_bytes, 24564 * kMiB);
  EXPECT_EQ(gpus[0].memory_used_bytes, 2 * kMiB);
  EXPECT_DOUBLE_EQ(*gpus[0].power_w, 26.84);
  EXPECT_DOUBLE_EQ(*gpus[0].power_limit_w, 450.0);
  EXPECT_EQ(gpus[0].temperature_c, 40.0);
  EXPECT_FALSE(gpus[0].energy_mj.has_value());
}

TEST(NvidiaSmiXml, RejectsOtherDocuments) {
  EXPECT_FALSE(parseNvidiaSmiXml("<other/>").has_value());
  EXPECT_FALSE(parseNvidiaSmiXml("<nvidia_smi_log><gpu></gpu></nvidia_smi_log>").has_value());
  EXPECT_FALSE(parseNvidiaSmiXml("<nvidia_smi_log><gpu>").has_value());
}

}  // namespace
}  // namespace hwl::probes
