// The replay probe over the recorded captures, and a check that every capture is parsed.
#include "hwl/probes/replay_probe.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/probe.hpp"
#include "hwl/probes/rocm_smi.hpp"
#include "hwl/probes/sysfs.hpp"
#include "hwl/probes/text.hpp"
#include "hwl/test_fixtures.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

namespace fs = std::filesystem;
using testing::capture;
constexpr std::uint64_t kMiB = 1024ULL * 1024ULL;

TEST(Captures, EveryFileIsParsedByItsParser) {
  HWL_NEEDS_SHARED_DATA();
  std::size_t parsed = 0;
  for (const auto& entry : fs::directory_iterator(HWL_TELEMETRY_DIR)) {
    const std::string name = entry.path().filename().string();
    const std::string text = testing::readCapture(name);
    SCOPED_TRACE(name);
    if (name.find("-help-query") != std::string::npos ||
        name.find("-query-q") != std::string::npos || name == "SOURCES.md") {
      // Reference text: checked in nvidia_smi_csv_test (field names, -q agreement).
      continue;
    }
    if (name.find("-query-gpu") != std::string::npos && entry.path().extension() == ".csv") {
      auto r = parseQueryGpuCsv(text);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_EQ(r->size(), 1u);
      EXPECT_TRUE(r->front().memory_used_bytes.has_value());
    } else if (name.find("-compute-apps") != std::string::npos &&
               entry.path().extension() == ".csv") {
      auto r = parseComputeAppsCsv(text);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_FALSE(r->empty());
    } else if (entry.path().extension() == ".xml") {
      auto r = parseNvidiaSmiXml(text);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_FALSE(r->empty());
    } else if (entry.path().extension() == ".json") {
      auto r = parseRocmSmiJson(text);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_FALSE(r->gpus.empty());
    } else if (entry.path().extension() == ".ttar") {
      testing::TempDir dir;
      testing::unpackTtar(entry.path().string(), dir.path());
      EXPECT_FALSE(readRaplZones((dir.path() / "fixtures" / "sys").string()).empty());
    } else if (name.find("-list-L") != std::string::npos) {
      auto r = parseNvidiaSmiList(text);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_FALSE(r->empty());
    } else {
      ADD_FAILURE() << "a capture no parser covers: " << name;
      continue;
    }
    ++parsed;
  }
  EXPECT_EQ(parsed, 42u);  // 47 files less 3 help texts, the -q text and SOURCES.md
}

TEST(ReplayProbe, AlternatesBusyAndIdleWithProcessesOnTheBusyFrame) {
  auto p = ReplayProbe::open(capture("nvidia-h100-query-gpu.csv"));
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ((*p)->name(), "replay");
  std::vector<Sample> samples;
  for (int i = 0; i < 4; ++i) {
    auto s = (*p)->sample();
    ASSERT_TRUE(s.has_value()) << s.error().message;
    ASSERT_EQ(s->gpus.size(), 1u);
    samples.push_back(*s);
  }
  EXPECT_EQ(samples[0].gpus[0].memory_used_bytes, 19818 * kMiB);  // load
  EXPECT_EQ(samples[0].gpus[0].processes.size(), 3u);
  EXPECT_EQ(samples[1].gpus[0].memory_used_bytes, 0u);  // idle
  EXPECT_TRUE(samples[1].gpus[0].processes.empty());
  EXPECT_EQ(samples[2].gpus[0].memory_used_bytes, 19818 * kMiB);
  EXPECT_EQ(samples[3].gpus[0].utilization_gpu_pct, 0.0);
  EXPECT_GT(samples[0].time_ms, 0);
}

TEST(ReplayProbe, IdleFileFindsItsBusySibling) {
  HWL_NEEDS_SHARED_DATA();
  auto p = ReplayProbe::open(capture("nvidia-l40s-query-gpu-idle.csv"));
  ASSERT_TRUE(p.has_value()) << p.error().message;
  auto a = (*p)->sample();
  auto b = (*p)->sample();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(a->gpus[0].memory_used_bytes, b->gpus[0].memory_used_bytes);
}

TEST(ReplayProbe, XmlAndRocmCaptures) {
  HWL_NEEDS_SHARED_DATA();
  auto x = ReplayProbe::open(capture("nvidia-a5000x2-smi-q-x.xml"));
  ASSERT_TRUE(x.has_value()) << x.error().message;
  auto xs = (*x)->sample();
  ASSERT_TRUE(xs.has_value());
  EXPECT_EQ(xs->gpus.size(), 2u);
  auto r = ReplayProbe::open(capture("amd-mi100x6-rocm571-rocm-smi.json"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto rs = (*r)->sample();
  ASSERT_TRUE(rs.has_value());
  ASSERT_EQ(rs->gpus.size(), 6u);
  EXPECT_EQ(rs->gpus[3].memory_total_bytes, 34342961152u);
}

TEST(ReplayProbe, SpecReplicatesGpusWithDistinctUuidsAndVaryingLoad) {
  testing::TempDir dir;
  const auto spec =
      dir.write("replay.json", R"({"files": [")" + capture("nvidia-h100-query-gpu.csv") +
                                   R"("], "gpu_count": 8})");
  auto p = ReplayProbe::open(spec.string());
  ASSERT_TRUE(p.has_value()) << p.error().message;
  auto s = (*p)->sample();
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->gpus.size(), 8u);
  std::set<std::string> uuids;
  int busy = 0;
  for (std::uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(s->gpus[i].index, i);
    uuids.insert(s->gpus[i].uuid);
    busy += s->gpus[i].utilization_gpu_pct == 100.0 ? 1 : 0;
  }
  EXPECT_EQ(uuids.size(), 8u);
  EXPECT_EQ(s->gpus[0].uuid, "GPU-00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(s->gpus[3].uuid, "GPU-00000000-0000-0000-0000-000000000003");
  EXPECT_EQ(busy, 4);  // half the fleet in each phase
  auto next = (*p)->sample();
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(next->gpus[0].utilization_gpu_pct, s->gpus[0].utilization_gpu_pct);
  EXPECT_EQ(next->gpus[3].uuid, s->gpus[3].uuid);  // identities are stable across samples
}

TEST(ReplayProbe, DirectoryWithReplayJsonUsesRelativePaths) {
  HWL_NEEDS_SHARED_DATA();
  testing::TempDir dir;
  fs::copy_file(capture("nvidia-t4-smi-q-x.xml"), dir.path() / "t4.xml");
  dir.write("replay.json", R"({"files": ["t4.xml"], "gpu_count": 2})");
  auto p = ReplayProbe::open(dir.path().string());
  ASSERT_TRUE(p.has_value()) << p.error().message;
  auto s = (*p)->sample();
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->gpus.size(), 2u);
  EXPECT_EQ(s->gpus[0].name, "Tesla T4");
  EXPECT_NE(s->gpus[0].uuid, s->gpus[1].uuid);
}

TEST(ReplayProbe, WholeCaptureDirectory) {
  HWL_NEEDS_SHARED_DATA();
  auto p = ReplayProbe::open(HWL_TELEMETRY_DIR);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  auto s = (*p)->sample();
  ASSERT_TRUE(s.has_value());
  // 9 query-gpu sets + 7 XML GPUs (2 A5000) + 17 AMD cards.
  EXPECT_EQ(s->gpus.size(), 9u + 7u + 17u);
  std::set<std::string> uuids;
  for (const auto& g : s->gpus) uuids.insert(g.uuid);
  EXPECT_EQ(uuids.size(), s->gpus.size());
}

TEST(ReplayProbe, BadConfigurations) {
  EXPECT_EQ(ReplayProbe::open("/nonexistent/capture.csv").error().code, Code::kNotFound);
  testing::TempDir dir;
  EXPECT_EQ(ReplayProbe::open(dir.path().string()).error().code, Code::kNotFound);  // empty dir
  const auto bad = dir.write("spec.json", R"({"files": ["a.csv"], "gpu_count": 0})");
  EXPECT_EQ(ReplayProbe::open(bad.string()).error().code, Code::kInvalidArgument);
  const auto unknown = dir.write("spec2.json", R"({"files": ["a.csv"], "gpus": 3})");
  EXPECT_EQ(ReplayProbe::open(unknown.string()).error().code, Code::kInvalidArgument);
  const auto txt = dir.write("x.txt", "hello");
  EXPECT_FALSE(ReplayProbe::open(txt.string()).has_value());
}

TEST(DetectProbes, ReplaySourceWithHostMetrics) {
  HWL_NEEDS_SHARED_DATA();
  ProbeConfig c;
  c.gpu_source = "replay:" + capture("nvidia-h200-query-gpu.csv");
  c.sys_root = "/nonexistent-sys";
  auto probes = detectProbes(c);
  ASSERT_TRUE(probes.has_value()) << probes.error().message;
  EXPECT_EQ((*probes)->name(), "replay+proc");
  auto s = (*probes)->sample();
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->gpus.size(), 1u);
  EXPECT_EQ(s->gpus[0].name, "NVIDIA H200");
  EXPECT_GT(s->host.memory_total_bytes.value_or(0), 0u);
  c.gpu_source = "replay:/nonexistent";
  EXPECT_FALSE(detectProbes(c).has_value());
}

}  // namespace
}  // namespace hwl::probes
