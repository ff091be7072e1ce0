// toJson and renderPrometheus; the Prometheus output is piped through promtool when installed.
#include "hwl/probes/exporters.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>

#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/replay_probe.hpp"
#include "hwl/probes/subprocess.hpp"
#include "hwl/test_fixtures.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

using testing::capture;

Sample h100Sample() {
  auto p = ReplayProbe::open(capture("nvidia-h100-query-gpu.csv"));
  EXPECT_TRUE(p.has_value());
  auto s = (*p)->sample();
  EXPECT_TRUE(s.has_value());
  s->time_ms = 1784000000123;
  s->host.cpu_model = "Intel(R) Xeon(R) Platinum 8480+";
  s->host.cpu_cores = 224;
  s->host.memory_total_bytes = 2164000000000ULL;
  s->host.memory_available_bytes = 2000000000000ULL;
  s->host.cpu_util_pct = 12.5;
  return *s;
}

TEST(ToJson, FieldNamesAndValues) {
  const auto o = toJson(h100Sample());
  EXPECT_EQ(o.at("time_ms").as_int64(), 1784000000123);
  const auto& host = o.at("host").as_object();
  EXPECT_EQ(host.at("cpu_cores").as_uint64(), 224u);
  EXPECT_EQ(host.at("cpu_model").as_string(), "Intel(R) Xeon(R) Platinum 8480+");
  EXPECT_DOUBLE_EQ(host.at("cpu_util_pct").to_number<double>(), 12.5);
  EXPECT_FALSE(host.contains("package_power_w"));  // unknown: omitted
  const auto& gpus = o.at("gpus").as_array();
  ASSERT_EQ(gpus.size(), 1u);
  const auto& g = gpus[0].as_object();
  EXPECT_EQ(g.at("index").as_uint64(), 0u);
  EXPECT_EQ(g.at("uuid").as_string(), "GPU-00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(g.at("name").as_string(), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g.at("driver_version").as_string(), "590.48.01");
  EXPECT_EQ(g.at("memory_total_bytes").as_uint64(), 81559ULL * 1024 * 1024);
  EXPECT_EQ(g.at("memory_used_bytes").as_uint64(), 19818ULL * 1024 * 1024);
  EXPECT_EQ(g.at("memory_free_bytes").as_uint64(), 61263ULL * 1024 * 1024);
  EXPECT_DOUBLE_EQ(g.at("utilization_gpu_pct").to_number<double>(), 100.0);
  EXPECT_DOUBLE_EQ(g.at("utilization_memory_pct").to_number<double>(), 11.0);
  EXPECT_DOUBLE_EQ(g.at("temperature_c").to_number<double>(), 59.0);
  EXPECT_DOUBLE_EQ(g.at("power_w").to_number<double>(), 631.95);
  EXPECT_DOUBLE_EQ(g.at("power_limit_w").to_number<double>(), 700.0);
  EXPECT_EQ(g.at("clock_sm_mhz").as_uint64(), 1980u);
  EXPECT_EQ(g.at("clock_mem_mhz").as_uint64(), 2619u);
  EXPECT_FALSE(g.contains("energy_mj"));
  EXPECT_FALSE(g.contains("mig_devices"));
  const std::string text = boost::json::serialize(o);
  EXPECT_NE(text.find(R"("temperature_c":59,)"), std::string::npos) << text;  // not 5.9E1
  const auto& procs = g.at("processes").as_array();
  ASSERT_EQ(procs.size(), 3u);
  EXPECT_EQ(procs[2].as_object().at("pid").as_uint64(), 11345u);
  EXPECT_EQ(procs[2].as_object().at("name").as_string(), "./gpu_burn");
  EXPECT_EQ(procs[2].as_object().at("memory_bytes").as_uint64(), 15690ULL * 1024 * 1024);
}

// The server renders the fleet's /metrics from the agents' JSON: what it reads back must render
// exactly as the agent renders the sample itself.
TEST(ToJson, GpuFromJsonReadsBackWhatToJsonWrote) {
  const Sample s = h100Sample();
  const GpuSample back = gpuFromJson(toJson(s.gpus.at(0)));
  EXPECT_EQ(boost::json::serialize(toJson(back)), boost::json::serialize(toJson(s.gpus.at(0))));
  PromExposition a, b;
  addGpuSeries(a, s.gpus.at(0), {{"Hostname", "h"}});
  addGpuSeries(b, back, {{"Hostname", "h"}});
  EXPECT_EQ(a.render(), b.render());
  EXPECT_NE(a.render().find(
                "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-00000000-0000-0000-0000-000000000000\""),
            std::string::npos);
  // Wrong types are absent, not zero.
  const GpuSample odd = gpuFromJson(
      boost::json::parse(R"({"index":"0","memory_used_bytes":-5,"power_w":"lots","name":7})")
          .as_object());
  EXPECT_FALSE(odd.memory_used_bytes.has_value());
  EXPECT_FALSE(odd.power_w.has_value());
  EXPECT_TRUE(odd.name.empty());
}

// The agent's job on a process and the GPU's processes_matched go to JSON and back; a job name
// that is not a valid job id is dropped, not passed on.
TEST(ToJson, ProcessJobsRoundTripAndBadJobIdsAreDropped) {
  Sample s = h100Sample();
  GpuSample& g = s.gpus.at(0);
  g.processes.insert(g.processes.begin(), ProcessSample{11345, "./gpu_burn", 15690ULL << 20, ""});
  g.processes[0].job_id = "job-7.a_b";
  g.processes_matched = true;
  const auto o = toJson(g);
  EXPECT_EQ(o.at("processes").as_array()[0].at("job").as_string(), "job-7.a_b");
  EXPECT_TRUE(o.at("processes_matched").as_bool());
  const GpuSample back = gpuFromJson(o);
  EXPECT_EQ(back.processes[0].job_id, "job-7.a_b");
  EXPECT_TRUE(back.processes_matched);
  EXPECT_FALSE(toJson(h100Sample().gpus.at(0)).contains("processes_matched"));
  for (const char* bad : {"", "../etc", ".hidden", "a b", "x\n"}) {
    auto odd = o;
    odd["processes"].as_array()[0].as_object()["job"] = bad;
    EXPECT_EQ(gpuFromJson(odd).processes[0].job_id, "") << bad;
  }
}

TEST(ToJson, UnsupportedMetricsAreOmittedNotZero) {
  HWL_NEEDS_SHARED_DATA();
  auto gpus = parseQueryGpuCsv(testing::readCapture("nvidia-h100mig-query-gpu-idle.csv"));
  ASSERT_TRUE(gpus.has_value());
  const auto g = toJson(gpus->front());
  EXPECT_FALSE(g.contains("utilization_gpu_pct"));
  EXPECT_FALSE(g.contains("utilization_memory_pct"));
  EXPECT_TRUE(g.contains("memory_used_bytes"));
  auto apps =
      parseComputeAppsCsv(testing::readCapture("nvidia-rtx2080super-windows-compute-apps.csv"));
  ASSERT_TRUE(apps.has_value());
  GpuSample win;
  win.uuid = apps->front().gpu_uuid;
  win.processes.push_back(apps->front().process);
  const auto w = toJson(win);
  EXPECT_FALSE(w.at("processes").as_array()[0].as_object().contains("memory_bytes"));
}

TEST(ToJson, MigDevices) {
  HWL_NEEDS_SHARED_DATA();
  auto gpus = parseNvidiaSmiXml(testing::readCapture("nvidia-a100-80gb-mig-smi-q-x.xml"));
  ASSERT_TRUE(gpus.has_value());
  const auto g = toJson(gpus->front());
  const auto& migs = g.at("mig_devices").as_array();
  ASSERT_EQ(migs.size(), 4u);
  EXPECT_EQ(migs[0].as_object().at("gpu_instance_id").as_uint64(), 3u);
  EXPECT_EQ(migs[0].as_object().at("memory_total_bytes").as_uint64(), 19968ULL * 1024 * 1024);
  EXPECT_FALSE(g.contains("utilization_gpu_pct"));
}

TEST(Prometheus, EscapesLabelValues) {
  EXPECT_EQ(escapeLabelValue(R"(a"b\c)"
                             "\n"
                             "d"),
            R"(a\"b\\c\nd)");
  Sample s;
  GpuSample g;
  g.uuid = "GPU-1";
  g.name = "Odd \"GPU\"\\\nname";
  g.temperature_c = 40;
  s.gpus.push_back(g);
  const auto text = renderPrometheus(s, "host\"1", {});
  EXPECT_NE(text.find(R"(model_name="Odd \"GPU\"\\\nname")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(Hostname="host\"1")"), std::string::npos);
}

TEST(Prometheus, DcgmNamesAndAbsentMetrics) {
  AgentSelfStats self;
  self.samples_total = 17;
  self.outbox_entries = 3;
  self.outbox_capacity_entries = 10000;
  self.resident_memory_bytes = 12345678;
  self.cpu_seconds_total = 1.25;
  self.backends = {"replay", "proc"};
  const auto text = renderPrometheus(h100Sample(), "gpu-node-1", self);
  const std::string l =
      R"({gpu="0",UUID="GPU-00000000-0000-0000-0000-000000000000",model_name="NVIDIA H100 80GB HBM3",Hostname="gpu-node-1"})";
  EXPECT_NE(text.find("DCGM_FI_DEV_GPU_UTIL" + l + " 100\n"), std::string::npos) << text;
  EXPECT_NE(text.find("DCGM_FI_DEV_MEM_COPY_UTIL" + l + " 11\n"), std::string::npos);
  EXPECT_NE(text.find("DCGM_FI_DEV_FB_USED" + l + " 19818\n"), std::string::npos);
  EXPECT_NE(text.find("DCGM_FI_DEV_FB_FREE" + l + " 61263\n"), std::string::npos);
  EXPECT_NE(text.find("DCGM_FI_DEV_GPU_TEMP" + l + " 59\n"), std::string::npos);
  EXPECT_NE(text.find("DCGM_FI_DEV_POWER_USAGE" + l + " 631.95\n"), std::string::npos);
  EXPECT_NE(text.find("DCGM_FI_DEV_SM_CLOCK" + l + " 1980\n"), std::string::npos);
  EXPECT_NE(text.find("DCGM_FI_DEV_MEM_CLOCK" + l + " 2619\n"), std::string::npos);
  EXPECT_EQ(text.find("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"), std::string::npos);  // absent
  EXPECT_NE(text.find("# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"), std::string::npos);
  EXPECT_NE(text.find("hwledger_agent_samples_total 17\n"), std::string::npos);
  EXPECT_NE(text.find("hwledger_outbox_entries 3\n"), std::string::npos);
  EXPECT_NE(text.find("hwledger_outbox_capacity_entries 10000\n"), std::string::npos);
  EXPECT_NE(text.find("hwledger_agent_resident_memory_bytes 12345678\n"), std::string::npos);
  EXPECT_NE(text.find("hwledger_agent_cpu_seconds_total 1.25\n"), std::string::npos);
  EXPECT_NE(text.find("hwledger_agent_probe_info{backend=\"replay\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("hwledger_host_cpu_package_power_watts"), std::string::npos);

  PrometheusOptions dcgm;
  dcgm.dcgm_exact_labels = true;
  Sample withEnergy = h100Sample();
  withEnergy.gpus[0].energy_mj = 123456789012ULL;
  const auto exact = renderPrometheus(withEnergy, "gpu-node-1", self, dcgm);
  EXPECT_NE(exact.find(R"(modelName="NVIDIA H100 80GB HBM3")"), std::string::npos);
  EXPECT_NE(exact.find("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"), std::string::npos);
  EXPECT_NE(exact.find("} 123456789012\n"), std::string::npos);
}

// Runs promtool on the text; returns its exit code and report.
std::pair<int, std::string> promtool(const std::string& text) {
  testing::TempDir dir;
  const auto metrics = dir.write("metrics.prom", text);
  auto r = runCommand({"sh", "-c", "promtool check metrics < \"$1\" 2>&1", "sh", metrics.string()});
  if (!r) return {-1, r.error().message};
  return {r->exit_code, r->out};
}

TEST(Prometheus, PassesPromtoolCheckMetrics) {
  HWL_NEEDS_SHARED_DATA();
  if (!findExecutable("promtool")) GTEST_SKIP() << "promtool is not installed";
  AgentSelfStats self;
  self.samples_total = 5;
  self.sample_errors_total = 1;
  self.outbox_entries = 0;
  self.outbox_capacity_entries = 100000;
  self.resident_memory_bytes = 1 << 20;
  self.cpu_seconds_total = 0.5;
  self.start_time_seconds = 1784000000.5;
  self.backends = {"replay", "rapl", "proc"};
  self.version = "0.1.0";
  // Every capture at once: NVIDIA CSV/XML with MIG, AMD, absent fields, odd names.
  auto p = ReplayProbe::open(HWL_TELEMETRY_DIR);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  auto s = (*p)->sample();
  ASSERT_TRUE(s.has_value());
  s->gpus[0].name = "quote \" backslash \\ newline \n end";
  s->gpus[1].energy_mj = 98765;
  s->host.package_power_w = 87.5;
  s->host.cpu_util_pct = 3.25;
  const auto [rc, report] = promtool(renderPrometheus(*s, "node\\1", self));
  EXPECT_EQ(rc, 0) << report;
  EXPECT_TRUE(report.empty()) << report;
}

TEST(Prometheus, PromtoolRejectsBrokenExposition) {
  // Guards the test above: promtool must be able to fail here.
  if (!findExecutable("promtool")) GTEST_SKIP() << "promtool is not installed";
  const auto [rc, report] = promtool("# TYPE x gauge\nx{a=\"unterminated} 1\n");
  EXPECT_NE(rc, 0) << report;
}

}  // namespace
}  // namespace hwl::probes
