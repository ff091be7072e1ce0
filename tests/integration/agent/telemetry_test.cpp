// Replayed real GPU captures end to end: /v1/telemetry and /v1/info carry the capture's values,
// and /metrics is valid Prometheus text (promtool) with a series per GPU.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>

#include "agent_fixture.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::itest::agent {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024ULL * 1024ULL;

int64_t num(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) throw std::runtime_error(std::string("missing ") + key);
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  return static_cast<int64_t>(v->as_double());
}

double dbl(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) throw std::runtime_error(std::string("missing ") + key);
  return v->to_number<double>();
}

std::string str(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) throw std::runtime_error(std::string("missing ") + key);
  return std::string(v->as_string());
}

uint64_t memTotalFromProc() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

// The lines of a Prometheus exposition for one metric name (exact name, any labels).
std::vector<std::string> seriesOf(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& l : lines(text))
    if (l.rfind(name + "{", 0) == 0 || l.rfind(name + " ", 0) == 0) out.push_back(l);
  return out;
}

// The value of the one series of `name` whose labels contain `label`.
std::optional<std::string> valueWith(const std::string& text, const std::string& name,
                                     const std::string& label) {
  for (const auto& l : seriesOf(text, name))
    if (l.find(label) != std::string::npos) return l.substr(l.rfind(' ') + 1);
  return std::nullopt;
}

TEST(AgentTelemetry, H100ReplayServesTheCapturedValues) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(),
              {.probe = "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()});
  agent.start();
  EXPECT_EQ(readFile(agent.stateDir() / "listen.addr"), agent.address() + "\n");

  // The capture has a load reading and an idle sibling; the replay alternates between them.
  bool saw_busy = false;
  bool saw_idle = false;
  ASSERT_TRUE(eventually(
      [&] {
        auto t = agent.telemetry();
        const auto& gpus = t.at("gpus").as_array();
        EXPECT_EQ(gpus.size(), 1U);
        if (gpus.size() != 1) return true;
        const auto& g = gpus[0].as_object();
        EXPECT_EQ(num(g, "index"), 0);
        EXPECT_EQ(str(g, "uuid"), "GPU-00000000-0000-0000-0000-000000000000");
        EXPECT_EQ(str(g, "name"), "NVIDIA H100 80GB HBM3");
        EXPECT_EQ(str(g, "vendor"), "nvidia");
        EXPECT_EQ(str(g, "driver_version"), "590.48.01");
        EXPECT_EQ(str(g, "pci_bus_id"), "00000000:00:09.0");
        EXPECT_EQ(num(g, "memory_total_bytes"), static_cast<int64_t>(81559 * kMiB));
        EXPECT_EQ(dbl(g, "power_limit_w"), 700.0);
        // The agent matched the GPU's processes against its jobs (it has none running).
        EXPECT_TRUE(g.contains("processes_matched") && g.at("processes_matched").as_bool());
        if (num(g, "memory_used_bytes") == static_cast<int64_t>(19818 * kMiB)) {
          saw_busy = true;
          EXPECT_EQ(num(g, "memory_free_bytes"), static_cast<int64_t>(61263 * kMiB));
          EXPECT_EQ(dbl(g, "utilization_gpu_pct"), 100.0);
          EXPECT_EQ(dbl(g, "utilization_memory_pct"), 11.0);
          EXPECT_EQ(dbl(g, "temperature_c"), 59.0);
          EXPECT_DOUBLE_EQ(dbl(g, "power_w"), 631.95);
          EXPECT_EQ(num(g, "clock_sm_mhz"), 1980);
          EXPECT_EQ(num(g, "clock_mem_mhz"), 2619);
        } else {
          saw_idle = true;
          EXPECT_EQ(num(g, "memory_used_bytes"), 0);
          EXPECT_EQ(num(g, "memory_free_bytes"), static_cast<int64_t>(81081 * kMiB));
          EXPECT_EQ(dbl(g, "utilization_gpu_pct"), 0.0);
          EXPECT_EQ(dbl(g, "temperature_c"), 41.0);
          EXPECT_DOUBLE_EQ(dbl(g, "power_w"), 69.85);
          EXPECT_EQ(num(g, "clock_sm_mhz"), 345);
        }
        // The host part is the real machine's.
        EXPECT_EQ(static_cast<uint64_t>(num(t.at("host").as_object(), "memory_total_bytes")),
                  memTotalFromProc());
        return saw_busy && saw_idle;
      },
      10s))
      << "busy seen " << saw_busy << ", idle seen " << saw_idle;
}

TEST(AgentTelemetry, MetricsPassPromtoolWithSeriesForEveryGpu) {
  HWL_NEEDS_SHARED_DATA();
  TempDir tmp("hwl-agent-it");
  const auto spec = tmp / "replay.json";
  writeFile(
      spec,
      bj::serialize(bj::object{
          {"files",
           bj::array{(telemetryDir() / "nvidia-h100-query-gpu.csv").string(),
                     hwl::test_fixtures::find("telemetry", "nvidia-a5000x2-smi-q-x.xml").string()}},
          {"gpu_count", 5}}));
  Agent agent(tmp.path(), {.probe = "replay:" + spec.string()});
  agent.start();

  auto t = agent.telemetry();
  const auto& gpus = t.at("gpus").as_array();
  ASSERT_EQ(gpus.size(), 5U);
  std::set<std::string> uuids;
  for (const auto& g : gpus) uuids.insert(str(g.as_object(), "uuid"));
  EXPECT_EQ(uuids.size(), 5U) << "replicated GPUs must have distinct uuids";

  auto m = agent.get("/metrics");
  ASSERT_EQ(m.status, 200) << m.err;
  auto check = run({promtoolBin(), "check", "metrics"}, {.input = m.body});
  EXPECT_EQ(check.code(), 0) << check.out << check.err << "\n" << m.body;

  for (const auto& g : gpus) {
    const auto& o = g.as_object();
    const std::string label = "UUID=\"" + str(o, "uuid") + "\"";
    const std::string gpu_label = "gpu=\"" + std::to_string(num(o, "index")) + "\"";
    auto util = valueWith(m.body, "DCGM_FI_DEV_GPU_UTIL", label);
    auto used = valueWith(m.body, "DCGM_FI_DEV_FB_USED", label);
    auto total = valueWith(m.body, "DCGM_FI_DEV_FB_TOTAL", label);
    ASSERT_TRUE(util) << label << " has no DCGM_FI_DEV_GPU_UTIL in\n" << m.body;
    ASSERT_TRUE(used) << label << " has no DCGM_FI_DEV_FB_USED in\n" << m.body;
    ASSERT_TRUE(total) << label;
    EXPECT_NE(valueWith(m.body, "DCGM_FI_DEV_GPU_UTIL",
                        label + "," + "model_name=\"" + str(o, "name") + "\""),
              std::nullopt);
    EXPECT_NE(valueWith(m.body, "DCGM_FI_DEV_GPU_UTIL", gpu_label), std::nullopt);
    // Memory is the capture's (the total never changes between frames; MiB as dcgm-exporter).
    EXPECT_EQ(std::stoull(*total), static_cast<uint64_t>(num(o, "memory_total_bytes")) / kMiB);
  }
  // GPU 0 is the H100, 1 and 2 the A5000s, then the templates repeat.
  EXPECT_EQ(valueWith(m.body, "DCGM_FI_DEV_FB_TOTAL", "gpu=\"0\""), "81559");
  EXPECT_EQ(valueWith(m.body, "DCGM_FI_DEV_FB_TOTAL", "gpu=\"1\""), "24564");
  EXPECT_EQ(valueWith(m.body, "DCGM_FI_DEV_FB_TOTAL", "gpu=\"3\""), "81559");
  auto h100_used = valueWith(m.body, "DCGM_FI_DEV_FB_USED", "gpu=\"0\"");
  EXPECT_TRUE(h100_used == "19818" || h100_used == "0") << h100_used.value_or("(none)");
  EXPECT_EQ(seriesOf(m.body, "DCGM_FI_DEV_GPU_UTIL").size(), 5U);
  EXPECT_EQ(seriesOf(m.body, "DCGM_FI_DEV_FB_USED").size(), 5U);
  ASSERT_EQ(seriesOf(m.body, "hwledger_host_gpus").size(), 1U);
  EXPECT_EQ(seriesOf(m.body, "hwledger_host_gpus")[0].substr(
                seriesOf(m.body, "hwledger_host_gpus")[0].rfind(' ') + 1),
            "5");
}

TEST(AgentTelemetry, InfoListsProbeBackendsAndGpus) {
  HWL_NEEDS_SHARED_DATA();
  TempDir tmp("hwl-agent-it");
  const auto spec = tmp / "replay.json";
  writeFile(
      spec,
      bj::serialize(bj::object{
          {"files",
           bj::array{hwl::test_fixtures::find("telemetry", "nvidia-a5000x2-smi-q-x.xml").string()}},
          {"gpu_count", 3}}));
  Agent agent(tmp.path(), {.probe = "replay:" + spec.string()});
  agent.start();
  auto t = agent.telemetry();

  auto health = agent.get("/v1/health");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(str(health.obj(), "status"), "ok");

  auto h = agent.get("/v1/info");
  ASSERT_EQ(h.status, 200) << h.body;
  auto info = h.obj();
  EXPECT_EQ(str(info, "agent_version"), "0.1.0");
  std::vector<std::string> backends;
  for (const auto& b : info.at("probe_backends").as_array()) backends.emplace_back(b.as_string());
  EXPECT_NE(std::find(backends.begin(), backends.end(), "replay"), backends.end())
      << bj::serialize(info.at("probe_backends"));
  const auto& gpus = info.at("gpus").as_array();
  ASSERT_EQ(gpus.size(), 3U);
  std::set<std::string> info_uuids;
  std::set<std::string> tele_uuids;
  for (const auto& g : gpus) {
    EXPECT_EQ(str(g.as_object(), "name"), "NVIDIA RTX A5000");
    EXPECT_EQ(str(g.as_object(), "driver_version"), "590.44.01");
    EXPECT_EQ(num(g.as_object(), "memory_total_bytes"), static_cast<int64_t>(24564 * kMiB));
    info_uuids.insert(str(g.as_object(), "uuid"));
  }
  for (const auto& g : t.at("gpus").as_array()) tele_uuids.insert(str(g.as_object(), "uuid"));
  EXPECT_EQ(info_uuids, tele_uuids);
  EXPECT_EQ(info_uuids.count("GPU-12345678-aaaa-bbbb-cccc-0123456789ab"), 1U);

  // The same backends appear in /metrics.
  auto m = agent.get("/metrics");
  for (const auto& b : backends)
    EXPECT_NE(m.body.find("hwledger_agent_probe_info{backend=\"" + b + "\"} 1"), std::string::npos)
        << b;

  // The first inventory reaches the outbox.
  std::vector<bj::object> inv;
  ASSERT_TRUE(eventually(
      [&] {
        inv.clear();
        for (auto& e : agent.outbox())
          if (e.at("type").as_string() == "host.inventory_changed") inv.push_back(e);
        return !inv.empty();
      },
      5s));
  EXPECT_EQ(inv.size(), 1U);
  EXPECT_EQ(inv[0].at("data").as_object().at("added").as_array().size(), 3U);
}

}  // namespace
}  // namespace hwl::itest::agent

namespace hwl::itest::agent {
namespace {

TEST(AgentTelemetry, HistoryKeepsTheRecentReadingsOfEachGpu) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(),
              {.probe = "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()});
  agent.start();
  const std::string uuid = "GPU-00000000-0000-0000-0000-000000000000";
  // Sampling every 200 ms: several readings accumulate, busy and idle alternating.
  std::vector<int64_t> used;
  ASSERT_TRUE(eventually(
      [&] {
        auto h = agent.get("/v1/telemetry/history?gpu=" + uuid);
        if (h.status != 200) return false;
        const auto doc = bj::parse(h.body);
        const auto& gpus = doc.at("gpus").as_array();
        if (gpus.size() != 1) return false;
        const auto& readings = gpus[0].at("readings").as_array();
        used.clear();
        int64_t last_t = 0;
        for (const auto& r : readings) {
          EXPECT_GT(num(r.as_object(), "time_ms"), last_t);  // oldest first
          last_t = num(r.as_object(), "time_ms");
          used.push_back(num(r.as_object(), "memory_used_bytes"));
        }
        return readings.size() >= 4;
      },
      10s));
  EXPECT_NE(std::find(used.begin(), used.end(), 0), used.end());
  EXPECT_NE(std::find(used.begin(), used.end(), static_cast<int64_t>(19818 * kMiB)), used.end());
  EXPECT_EQ(agent.get("/v1/telemetry/history?gpu=GPU-nope").status, 404);
}

}  // namespace
}  // namespace hwl::itest::agent
