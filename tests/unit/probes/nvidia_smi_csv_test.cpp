// nvidia-smi --query-gpu / --query-compute-apps / -L parsers against the recorded captures.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/text.hpp"
#include "hwl/test_fixtures.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

using testing::readCapture;
constexpr std::uint64_t kMiB = 1024ULL * 1024ULL;

GpuSample onlyGpu(const std::string& file) {
  auto gpus = parseQueryGpuCsv(readCapture(file));
  EXPECT_TRUE(gpus.has_value()) << file << ": " << (gpus ? "" : gpus.error().message);
  EXPECT_EQ(gpus->size(), 1u) << file;
  return gpus->front();
}

TEST(QueryGpuCsv, H100UnderLoad) {
  const auto g = onlyGpu("nvidia-h100-query-gpu.csv");
  EXPECT_EQ(g.index, 0u);
  EXPECT_EQ(g.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g.uuid, "GPU-00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(g.driver_version, "590.48.01");
  EXPECT_EQ(g.vendor, "nvidia");
  EXPECT_EQ(g.memory_total_bytes, 81559 * kMiB);
  EXPECT_EQ(g.memory_used_bytes, 19818 * kMiB);
  EXPECT_EQ(g.memory_free_bytes, 61263 * kMiB);
  EXPECT_EQ(g.utilization_gpu_pct, 100.0);
  EXPECT_EQ(g.utilization_memory_pct, 11.0);
  EXPECT_EQ(g.temperature_c, 59.0);
  EXPECT_DOUBLE_EQ(*g.power_w, 631.95);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 700.0);
  EXPECT_EQ(g.clock_sm_mhz, 1980u);
  EXPECT_EQ(g.clock_mem_mhz, 2619u);
  EXPECT_EQ(g.pci_bus_id, "00000000:00:09.0");
  EXPECT_FALSE(g.energy_mj.has_value());  // nvidia-smi has no energy field
}

TEST(QueryGpuCsv, H100Idle) {
  const auto g = onlyGpu("nvidia-h100-query-gpu-idle.csv");
  EXPECT_EQ(g.memory_used_bytes, 0u);  // a real zero stays a zero
  EXPECT_EQ(g.memory_free_bytes, 81081 * kMiB);
  EXPECT_EQ(g.utilization_gpu_pct, 0.0);
  EXPECT_DOUBLE_EQ(*g.power_w, 69.85);
  EXPECT_EQ(g.clock_sm_mhz, 345u);
}

TEST(QueryGpuCsv, MigModeUtilizationIsUnsupportedNotZero) {
  HWL_NEEDS_SHARED_DATA();
  for (const char* f : {"nvidia-h100mig-query-gpu.csv", "nvidia-h100mig-query-gpu-idle.csv",
                        "nvidia-h200mig-query-gpu.csv", "nvidia-h200mig-query-gpu-idle.csv"}) {
    const auto g = onlyGpu(f);
    EXPECT_FALSE(g.utilization_gpu_pct.has_value()) << f;
    EXPECT_FALSE(g.utilization_memory_pct.has_value()) << f;
    EXPECT_TRUE(g.memory_total_bytes.has_value()) << f;
  }
  EXPECT_EQ(onlyGpu("nvidia-h100mig-query-gpu.csv").memory_used_bytes, 11125 * kMiB);
  EXPECT_DOUBLE_EQ(*onlyGpu("nvidia-h200mig-query-gpu.csv").power_w, 295.01);
}

TEST(QueryGpuCsv, H200) {
  HWL_NEEDS_SHARED_DATA();
  const auto busy = onlyGpu("nvidia-h200-query-gpu.csv");
  EXPECT_EQ(busy.name, "NVIDIA H200");
  EXPECT_EQ(busy.memory_total_bytes, 143771 * kMiB);
  EXPECT_EQ(busy.memory_used_bytes, 32362 * kMiB);
  EXPECT_EQ(busy.clock_mem_mhz, 3201u);
  const auto idle = onlyGpu("nvidia-h200-query-gpu-idle.csv");
  EXPECT_EQ(idle.temperature_c, 28.0);
  EXPECT_DOUBLE_EQ(*idle.power_w, 77.71);
}

TEST(QueryGpuCsv, L40sAndRtx4080Super) {
  HWL_NEEDS_SHARED_DATA();
  const auto l40s = onlyGpu("nvidia-l40s-query-gpu.csv");
  EXPECT_EQ(l40s.driver_version, "595.80");
  EXPECT_EQ(l40s.memory_total_bytes, 46068 * kMiB);
  EXPECT_EQ(l40s.utilization_gpu_pct, 9.0);
  EXPECT_DOUBLE_EQ(*l40s.power_limit_w, 350.0);
  EXPECT_EQ(onlyGpu("nvidia-l40s-query-gpu-idle.csv").utilization_gpu_pct, 100.0);
  const auto r4080 = onlyGpu("nvidia-rtx4080super-query-gpu.csv");
  EXPECT_EQ(r4080.name, "NVIDIA GeForce RTX 4080 SUPER");
  EXPECT_EQ(r4080.clock_mem_mhz, 11251u);
  EXPECT_DOUBLE_EQ(*r4080.power_w, 84.24);
  EXPECT_EQ(onlyGpu("nvidia-rtx4080super-query-gpu-idle.csv").memory_used_bytes, 596 * kMiB);
}

TEST(QueryGpuCsv, Rtx2080SuperLinuxAndWindows) {
  HWL_NEEDS_SHARED_DATA();
  const auto lin = onlyGpu("nvidia-rtx2080super-query-gpu.csv");
  EXPECT_EQ(lin.driver_version, "610.57.04");
  EXPECT_EQ(lin.memory_total_bytes, 8192 * kMiB);
  EXPECT_DOUBLE_EQ(*lin.power_w, 98.14);  // power.draw, not the [N/A] power.draw.average
  EXPECT_EQ(onlyGpu("nvidia-rtx2080super-query-gpu-idle.csv").clock_sm_mhz, 765u);
  const auto win = onlyGpu("nvidia-rtx2080super-windows-query-gpu.csv");
  EXPECT_EQ(win.driver_version, "610.62");
  EXPECT_EQ(win.memory_used_bytes, 1366 * kMiB);
  EXPECT_EQ(win.clock_sm_mhz, 2040u);
  EXPECT_EQ(onlyGpu("nvidia-rtx2080super-windows-query-gpu-idle.csv").temperature_c, 40.0);
}

TEST(QueryGpuCsv, TeslaP100NoUnitsAndMissingColumns) {
  HWL_NEEDS_SHARED_DATA();
  const auto g = onlyGpu("nvidia-teslap100-query-gpu.csv");
  EXPECT_EQ(g.name, "Tesla P100-PCIE-16GB");
  EXPECT_EQ(g.uuid, "GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6");
  EXPECT_EQ(g.index, 0u);                          // no index column: row number
  EXPECT_FALSE(g.memory_total_bytes.has_value());  // not queried: absent, not derived
  EXPECT_EQ(g.memory_used_bytes, 0u);
  EXPECT_EQ(g.memory_free_bytes, 16280 * kMiB);
  EXPECT_DOUBLE_EQ(*g.power_w, 28.16);
  EXPECT_FALSE(g.power_limit_w.has_value());
  EXPECT_TRUE(g.driver_version.empty());
  EXPECT_EQ(g.clock_sm_mhz, 405u);
  EXPECT_EQ(g.clock_mem_mhz, 715u);
}

TEST(QueryGpuCsv, NoHeaderNoUnitsWithTheProbeFieldList) {
  const std::string out =
      "0, GPU-aaaa, NVIDIA H100 80GB HBM3, 590.48.01, 81559, 19818, 61263, 100, 11, 59, 631.95, "
      "700.00, 1980, 2619\n"
      "1, GPU-bbbb, NVIDIA H100 80GB HBM3, 590.48.01, 81559, [N/A], [N/A], [Not Supported], "
      "[Not Supported], 41, [N/A], 700.00, 345, 2619\n";
  auto gpus = parseQueryGpuCsv(out, kQueryGpuFields);
  ASSERT_TRUE(gpus.has_value()) << gpus.error().message;
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[1].index, 1u);
  EXPECT_EQ((*gpus)[1].uuid, "GPU-bbbb");
  EXPECT_FALSE((*gpus)[1].memory_used_bytes.has_value());
  EXPECT_FALSE((*gpus)[1].utilization_gpu_pct.has_value());
  EXPECT_FALSE((*gpus)[1].power_w.has_value());
  EXPECT_EQ((*gpus)[0].memory_used_bytes, 19818 * kMiB);
}

TEST(QueryGpuCsv, RejectsMalformedRows) {
  EXPECT_FALSE(parseQueryGpuCsv("index, uuid, name\n0, GPU-1\n").has_value());
  EXPECT_FALSE(parseQueryGpuCsv("index, name\n0, x\n").has_value());  // no uuid column
  EXPECT_FALSE(parseQueryGpuCsv("index, uuid\nzero, GPU-1\n").has_value());
  EXPECT_FALSE(parseQueryGpuCsv("").has_value());
}

TEST(QueryGpuCsv, EveryFieldTheProbeQueriesIsDocumentedByNvidiaSmi) {
  HWL_NEEDS_SHARED_DATA();
  for (const char* help :
       {"nvidia-h100-help-query-gpu.txt", "nvidia-rtx2080super-help-query-gpu.txt"}) {
    const std::string text = readCapture(help);
    for (auto f : kQueryGpuFields) {
      EXPECT_NE(text.find("\"" + std::string(f) + "\""), std::string::npos) << f << " in " << help;
    }
  }
  const std::string apps = readCapture("nvidia-h100-help-query-compute-apps.txt");
  for (auto f : kQueryComputeAppsFields) {
    EXPECT_NE(apps.find("\"" + std::string(f) + "\""), std::string::npos) << f;
  }
}

TEST(ComputeAppsCsv, H100) {
  auto apps = parseComputeAppsCsv(readCapture("nvidia-h100-compute-apps.csv"));
  ASSERT_TRUE(apps.has_value()) << apps.error().message;
  ASSERT_EQ(apps->size(), 3u);
  EXPECT_EQ((*apps)[0].process.pid, 11327u);
  EXPECT_EQ((*apps)[0].process.name, "/root/tools/memhog");
  EXPECT_EQ((*apps)[0].process.memory_bytes, 2566 * kMiB);
  EXPECT_EQ((*apps)[2].process.pid, 11345u);
  EXPECT_EQ((*apps)[2].process.name, "./gpu_burn");
  EXPECT_EQ((*apps)[2].process.memory_bytes, 15690 * kMiB);
  EXPECT_EQ((*apps)[0].gpu_uuid, "GPU-00000000-0000-0000-0000-000000000000");

  auto gpus = parseQueryGpuCsv(readCapture("nvidia-h100-query-gpu.csv"));
  ASSERT_TRUE(gpus.has_value());
  EXPECT_EQ(attachProcesses(*gpus, *apps), 0u);
  EXPECT_EQ(gpus->front().processes.size(), 3u);
}

TEST(ComputeAppsCsv, WindowsMemoryIsUnsupported) {
  HWL_NEEDS_SHARED_DATA();
  auto apps = parseComputeAppsCsv(readCapture("nvidia-rtx2080super-windows-compute-apps.csv"));
  ASSERT_TRUE(apps.has_value()) << apps.error().message;
  ASSERT_EQ(apps->size(), 21u);
  EXPECT_EQ((*apps)[0].process.pid, 2140u);
  EXPECT_EQ((*apps)[0].process.name, "C:\\Windows\\System32\\dwm.exe");
  for (const auto& a : *apps) EXPECT_FALSE(a.process.memory_bytes.has_value()) << a.process.pid;
  EXPECT_EQ(apps->back().process.pid, 13820u);
}

TEST(ComputeAppsCsv, EveryCapture) {
  HWL_NEEDS_SHARED_DATA();
  struct Expect {
    const char* file;
    std::size_t count;
    std::uint32_t firstPid;
    std::uint64_t firstMiB;
  };
  for (const auto& e : {Expect{"nvidia-h100mig-compute-apps.csv", 3, 21180, 2296},
                        Expect{"nvidia-h200-compute-apps.csv", 3, 10291, 2566},
                        Expect{"nvidia-h200mig-compute-apps.csv", 3, 12249, 2194},
                        Expect{"nvidia-l40s-compute-apps.csv", 2, 20037, 538},
                        Expect{"nvidia-rtx4080super-compute-apps.csv", 3, 2165, 25},
                        Expect{"nvidia-rtx2080super-compute-apps.csv", 2, 28512, 370}}) {
    auto apps = parseComputeAppsCsv(readCapture(e.file));
    ASSERT_TRUE(apps.has_value()) << e.file << ": " << apps.error().message;
    ASSERT_EQ(apps->size(), e.count) << e.file;
    EXPECT_EQ(apps->front().process.pid, e.firstPid) << e.file;
    EXPECT_EQ(apps->front().process.memory_bytes, e.firstMiB * kMiB) << e.file;
  }
}

TEST(ComputeAppsCsv, ProcessNameWithCommaIsKeptWhole) {
  const std::string out = "GPU-1, 42, /opt/app, with comma, 100\n";
  auto apps = parseComputeAppsCsv(out, kQueryComputeAppsFields);
  ASSERT_TRUE(apps.has_value()) << apps.error().message;
  ASSERT_EQ(apps->size(), 1u);
  EXPECT_EQ(apps->front().process.name, "/opt/app, with comma");
  EXPECT_EQ(apps->front().process.memory_bytes, 100 * kMiB);
}

TEST(NvidiaSmiList, H100MigDevices) {
  HWL_NEEDS_SHARED_DATA();
  auto list = parseNvidiaSmiList(readCapture("nvidia-h100mig-list-L.txt"));
  ASSERT_TRUE(list.has_value()) << list.error().message;
  ASSERT_EQ(list->size(), 1u);
  const auto& g = list->front();
  EXPECT_EQ(g.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g.uuid, "GPU-00000000-0000-0000-0000-000000000000");
  ASSERT_EQ(g.mig_devices.size(), 4u);
  EXPECT_EQ(g.mig_devices[0].profile, "3g.40gb");
  EXPECT_EQ(g.mig_devices[0].uuid, "MIG-00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(g.mig_devices[1].profile, "2g.20gb");
  EXPECT_EQ(g.mig_devices[1].uuid, "MIG-00000001-0000-0000-0000-000000000001");
  EXPECT_EQ(g.mig_devices[3].index, 3u);
  EXPECT_EQ(g.mig_devices[3].profile, "1g.10gb");
  EXPECT_EQ(g.mig_devices[3].uuid, "MIG-00000003-0000-0000-0000-000000000003");
}

TEST(NvidiaSmiQueryText, H100CaptureAgreesWithTheCsv) {
  HWL_NEEDS_SHARED_DATA();
  // `nvidia-smi -q` of the same H100 load run: the fields the CSV parser reads match.
  const std::string q = readCapture("nvidia-h100-query-q.txt");
  const auto g = onlyGpu("nvidia-h100-query-gpu.csv");
  EXPECT_NE(q.find(": " + g.uuid), std::string::npos);
  EXPECT_NE(q.find(": " + g.driver_version), std::string::npos);
  EXPECT_NE(q.find(": " + g.name), std::string::npos);
  EXPECT_NE(q.find("81559 MiB"), std::string::npos);
}

}  // namespace
}  // namespace hwl::probes
