// Three agents replaying three vendors' captures (nvidia-smi CSV, nvidia-smi -q -x XML, rocm-smi
// JSON), enrolled and scraped: what the server shows must be what the captures say.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "fleet_support.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(FleetScrape, ThreeVendorsEnrolledAndScrapedMatchTheirCaptures) {
  HWL_NEEDS_SHARED_DATA();
  FleetDir root;
  FleetServer srv(root.path());
  srv.launch();

  struct Case {
    std::string name;
    fs::path capture;
    std::vector<CapturedGpu> expected;
  };
  const auto dir = telemetryDir();
  std::vector<Case> cases{
      {"h100", dir / "nvidia-h100-query-gpu.csv",
       readQueryGpuCsv(dir / "nvidia-h100-query-gpu.csv")},
      {"a5000x2", hwl::test_fixtures::find("telemetry", "nvidia-a5000x2-smi-q-x.xml"),
       readSmiXml(hwl::test_fixtures::find("telemetry", "nvidia-a5000x2-smi-q-x.xml"))},
      {"mi100x4", hwl::test_fixtures::find("telemetry", "amd-mi100x4-rocm602-rocm-smi.json"),
       readRocmSmiJson(
           hwl::test_fixtures::find("telemetry", "amd-mi100x4-rocm602-rocm-smi.json"))}};
  // The captures themselves, as the test reads them.
  ASSERT_EQ(cases[0].expected.size(), 1u);
  ASSERT_EQ(cases[1].expected.size(), 2u);
  ASSERT_EQ(cases[2].expected.size(), 4u);

  std::vector<std::unique_ptr<FleetAgent>> agents;
  std::vector<const FleetAgent*> views;
  for (const auto& c : cases) {
    agents.push_back(
        std::make_unique<FleetAgent>(root.path(), c.name, "replay:" + c.capture.string()));
    agents.back()->enroll(srv);
    agents.back()->start();
    views.push_back(agents.back().get());
  }
  waitForFleet(srv, views);

  auto hosts = getOk(srv, "/v1/hosts").at("hosts").as_array();
  ASSERT_EQ(hosts.size(), 3u) << bj::serialize(hosts);
  std::map<std::string, std::string> uuid_host;  // every GPU the server lists, with its host
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const auto& a = *agents[i];
    auto h = host(srv, a.hostId());
    EXPECT_EQ(str(h.at("name")), cases[i].name);
    EXPECT_EQ(str(h.at("state")), "reachable");
    EXPECT_EQ(str(h.at("address")), "127.0.0.1:" + std::to_string(a.port()));
    EXPECT_TRUE(h.at("last_seen_ms").is_int64()) << bj::serialize(h);
    const auto& gpus = h.at("gpus").as_array();
    const auto& want = cases[i].expected;
    ASSERT_EQ(gpus.size(), want.size()) << bj::serialize(h);
    for (size_t g = 0; g < want.size(); ++g) {
      const auto& got = gpus[g].as_object();
      SCOPED_TRACE(want[g].uuid);
      EXPECT_EQ(i64(got.at("index")), static_cast<int64_t>(g));
      EXPECT_EQ(str(got.at("uuid")), want[g].uuid);
      EXPECT_EQ(str(got.at("name")), want[g].name);
      EXPECT_EQ(i64(got.at("memory_total_bytes")), want[g].memory_total_bytes);
      EXPECT_EQ(str(got.at("driver_version")), want[g].driver_version);
      const auto& s = got.at("sample").as_object();
      const auto& used = want[g].memory_used_bytes;
      EXPECT_NE(std::find(used.begin(), used.end(), i64(s.at("memory_used_bytes"))), used.end())
          << bj::serialize(s);
    }
    // One inventory and one reachable event per host: scraping again records nothing new.
    auto evs = streamEvents(srv, "host/" + a.hostId());
    auto types = typesOf(evs);
    EXPECT_EQ(std::count(types.begin(), types.end(), "host.enrolled"), 1);
    EXPECT_EQ(std::count(types.begin(), types.end(), "host.reachable"), 1);
    EXPECT_EQ(std::count(types.begin(), types.end(), "host.inventory_changed"), 1);
    EXPECT_EQ(std::count(types.begin(), types.end(), "host.unreachable"), 0);
  }

  auto gpus = getOk(srv, "/v1/gpus").at("gpus").as_array();
  EXPECT_EQ(gpus.size(), 7u);
  for (const auto& g : gpus) uuid_host[str(g.at("uuid"))] = str(g.at("host_name"));
  for (const auto& c : cases)
    for (const auto& want : c.expected) {
      EXPECT_EQ(uuid_host[want.uuid], c.name) << want.uuid;
      auto it = std::find_if(gpus.begin(), gpus.end(),
                             [&](const bj::value& g) { return str(g.at("uuid")) == want.uuid; });
      ASSERT_NE(it, gpus.end()) << want.uuid;
      // The full latest sample, as the agent reported it.
      const auto& s = it->at("sample").as_object();
      EXPECT_EQ(i64(s.at("memory_total_bytes")), want.memory_total_bytes) << want.uuid;
      EXPECT_EQ(str(s.at("name")), want.name) << want.uuid;
    }

  // Telemetry over the last minute, per second, from the raw table: each GPU has points, and
  // the memory in use is one the capture recorded.
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const auto& a = *agents[i];
    bj::object t;
    ASSERT_TRUE(eventually(
        [&] {
          int64_t now = nowMs();
          t = getOk(srv, "/v1/telemetry?host=" + a.hostId() +
                             "&from=" + std::to_string(now - 60'000) +
                             "&to=" + std::to_string(now + 1000) + "&step=1000");
          const auto& series = t.at("series").as_array();
          if (series.size() != cases[i].expected.size()) return false;
          for (const auto& s : series)
            if (s.at("points").as_array().size() < 2) return false;
          return true;
        },
        20s))
        << bj::serialize(t);
    EXPECT_EQ(str(t.at("source")), "raw");
    std::set<std::string> seen;
    for (const auto& s : t.at("series").as_array()) {
      std::string uuid = str(s.at("gpu_uuid"));
      seen.insert(uuid);
      auto it = std::find_if(cases[i].expected.begin(), cases[i].expected.end(),
                             [&](const CapturedGpu& g) { return g.uuid == uuid; });
      ASSERT_NE(it, cases[i].expected.end()) << uuid;
      for (const auto& p : s.at("points").as_array()) {
        EXPECT_GE(i64(p.at("samples")), 1);
        const auto& used = it->memory_used_bytes;
        EXPECT_NE(std::find(used.begin(), used.end(), i64(p.at("mem_used_bytes"))), used.end())
            << bj::serialize(p);
      }
    }
    EXPECT_EQ(seen.size(), cases[i].expected.size());
  }
}

}  // namespace
}  // namespace hwl::itest::fleet
