// Evidence on a real server with a real agent replaying the H100 capture (busy frame with its
// compute-apps processes): processes on a GPU no job holds become gpu.unaccounted_use, once; a
// job's usage is recorded after it ends and served with the job.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "fleet_support.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The evidence periods shortened: looked at every 300 ms, windows summed 2 s after they close,
// processes on a GPU no job holds recorded once seen for a second.
struct EvidenceFleet {
  EvidenceFleet() {
    srv.launch(R"({"scrape_timeout_ms":1000,"usage_interval_ms":300,"usage_settle_ms":2000,
                   "unaccounted_after_ms":1000})");
    agent.enroll(srv);
    agent.start();
    waitForFleet(srv, {&agent});
  }
  FleetDir root;
  FleetServer srv{root.path()};
  FleetAgent agent{root.path(), "h100",
                   "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()};
};

TEST(FleetEvidence, UnaccountedProcessesAndAJobsUsage) {
  EvidenceFleet f;
  // memhog (twice) and gpu_burn run on the capture's H100 and no job holds it.
  ASSERT_TRUE(eventually([&] { return !typedEvents(f.srv, "gpu.unaccounted_use").empty(); }, 30s));
  auto unaccounted = typedEvents(f.srv, "gpu.unaccounted_use");
  const auto& d = unaccounted.front().at("data").as_object();
  EXPECT_EQ(str(d.at("host_id")), f.agent.hostId());
  bool burn = false;
  for (const auto& p : d.at("processes").as_array()) {
    burn = burn || (i64(p.at("pid")) == 11345 && str(p.at("name")) == "./gpu_burn");
  }
  EXPECT_TRUE(burn) << bj::serialize(d);

  // A job that names its model gets the planner's prediction on job.placed; a model the planner
  // refuses is refused with the reason and nothing appended.
  const auto llama =
      bj::parse(readFile(hwl::test_fixtures::find("models", "Llama-3.1-8B.config.json")));
  const int64_t before = f.srv.eventCount();
  auto bad = submitJob(
      f.srv, {{"name", "bad"},
              {"command", bj::array{"/bin/true"}},
              {"gpus", 1},
              {"model",
               bj::object{{"config", bj::object{{"model_type", "mystery"}}}, {"context", 4096}}}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("missing required key 'hidden_size'"), std::string::npos) << bad.body;
  EXPECT_EQ(f.srv.eventCount(), before);
  const std::string planned =
      submitJobOk(f.srv, {{"name", "planned"},
                          {"command", bj::array{"/bin/true"}},
                          {"gpus", 1},
                          {"model", bj::object{{"config", llama}, {"context", 4096}}}});
  bool predicted = false;
  for (const auto& e : streamEvents(f.srv, "job/" + planned)) {
    if (str(e.at("type")) != "job.placed") continue;
    const auto& p = e.at("data").as_object().at("predicted").as_object();
    EXPECT_EQ(str(p.at("architecture")), "llama");
    // 16.06 GB of bf16 weights + 0.5 GiB of KV at 4096 tokens + workspace + 1 GiB overhead.
    EXPECT_EQ(i64(p.at("kv_bytes")), 131072LL * 4096);
    EXPECT_GT(i64(p.at("per_gpu_bytes")), 16'060'522'496LL + (1LL << 30));
    predicted = true;
  }
  EXPECT_TRUE(predicted);
  waitForJobState(f.srv, planned, "exited", 30s);

  std::map<std::string, bj::object> reports;
  // A job on that GPU, ended: its usage follows (usage_settle_ms 2 s here).
  const std::string id = submitJobOk(
      f.srv, {{"name", "short"}, {"command", bj::array{"/bin/sleep", "2"}}, {"gpus", 1}});
  waitForJobState(f.srv, id, "exited", 30s);
  ASSERT_TRUE(eventually(
      [&] {
        auto j = f.srv.request("GET", "/v1/jobs/" + id, f.srv.adminToken());
        return j.status == 200 && !j.obj().at("usage").as_array().empty();
      },
      30s));
  auto j = f.srv.request("GET", "/v1/jobs/" + id, f.srv.adminToken()).obj();
  EXPECT_EQ(str(j.at("state")), "exited");
  const auto& u = j.at("usage").as_array().back().as_object();
  EXPECT_TRUE(u.at("final").as_bool());
  EXPECT_EQ(i64(u.at("from_ms")), i64(j.at("started_ms")));
  EXPECT_EQ(i64(u.at("to_ms")), i64(j.at("ended_ms")));
  EXPECT_GT(i64(u.at("samples")), 0);
  // The capture has no energy counter: power integrated (the busy frame draws 631.95 W).
  EXPECT_EQ(str(u.at("energy_source")), "power");
  EXPECT_GT(u.at("energy_wh").to_number<double>(), 0.0);
  EXPECT_EQ(str(u.at("memory_source")), "gpu");
  // Exactly one final usage, and one unaccounted-use event for the same processes.
  std::this_thread::sleep_for(1s);
  int finals = 0;
  for (const auto& e : streamEvents(f.srv, "job/" + id)) {
    if (str(e.at("type")) == "job.usage" && e.at("data").as_object().at("final").as_bool())
      ++finals;
  }
  EXPECT_EQ(finals, 1);
  EXPECT_EQ(typedEvents(f.srv, "gpu.unaccounted_use").size(), 1U);

  // Every job's final usage is in (nothing more will be appended for the report's period).
  ASSERT_TRUE(eventually(
      [&] {
        auto j2 = f.srv.request("GET", "/v1/jobs/" + planned, f.srv.adminToken());
        return j2.status == 200 && !j2.obj().at("usage").as_array().empty();
      },
      30s));
  // The report: online, then offline from a copy of the database, for the same period.
  const int64_t to = i64(j.at("ended_ms")) + 3'600'000;
  for (const char* group : {"job", "host", "gpu"}) {
    auto online = f.srv.request(
        "GET", std::string("/v1/report?from=0&to=") + std::to_string(to) + "&group_by=" + group,
        f.srv.adminToken());
    ASSERT_EQ(online.status, 200) << online.body;
    reports[group] = online.obj();
  }
  const bj::object* row = nullptr;
  for (const auto& r : reports["job"].at("rows").as_array()) {
    if (str(r.at("job_id")) == id) row = &r.as_object();
  }
  ASSERT_NE(row, nullptr) << bj::serialize(reports["job"]);
  EXPECT_EQ(row->at("energy_wh").to_number<double>(), u.at("energy_wh").to_number<double>());
  EXPECT_EQ(row->at("seqs").as_array().size(), 1U);  // the final usage
  EXPECT_EQ(i64(reports["host"].at("totals").at("unaccounted_use_events")), 1);
  f.srv.stop();
  const auto copy = f.root.path() / "ledger-copy.db";
  fs::copy_file(f.srv.db(), copy);
  for (const char* group : {"job", "host", "gpu"}) {
    auto r = run({cliBin(), "report", "--db", copy.string(), "--from", "0", "--to",
                  std::to_string(to), "--group-by", group, "--format", "json"});
    ASSERT_TRUE(r.status.success()) << r.err;
    EXPECT_EQ(bj::parse(r.out), bj::value(reports[group])) << group;
  }
}

}  // namespace
}  // namespace hwl::itest::fleet
