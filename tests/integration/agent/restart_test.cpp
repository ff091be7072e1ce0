// The agent SIGKILLed and restarted on the same state directory: running jobs are re-adopted,
// jobs that died meanwhile are recorded lost, and the outbox keeps every transition the API had
// shown, with contiguous seqs and no duplicates.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <map>
#include <set>
#include <utility>

#include "agent_fixture.hpp"

namespace hwl::itest::agent {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

Agent::Options h100() {
  return {.probe = "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()};
}

std::string state(const bj::object& job) { return std::string(job.at("state").as_string()); }

TEST(AgentRestart, ARunningJobIsReadoptedAndCanStillBeCancelled) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  const uint16_t port = freeLoopbackPort();
  const std::string id = "survivor";
  ASSERT_EQ(agent.submit(serverJob(id, port)).status, 201);
  auto ready = agent.waitForState(id, "ready", 30s);
  const auto pid = static_cast<pid_t>(ready.at("pid").as_int64());
  const auto started_ms = ready.at("started_ms").as_int64();

  agent.crash();
  EXPECT_TRUE(processAlive(pid)) << "the job died with the agent";
  const std::string old_addr = agent.address();
  agent.start();

  auto j = agent.job(id);
  EXPECT_EQ(state(j), "ready") << bj::serialize(j);
  EXPECT_EQ(j.at("pid").as_int64(), pid);
  EXPECT_EQ(j.at("started_ms").as_int64(), started_ms);
  EXPECT_EQ(j.at("adopted"), bj::value(true));
  EXPECT_TRUE(processAlive(pid));
  EXPECT_EQ(static_cast<uint64_t>(j.at("proc_start_time").as_int64()), procStartTime(pid));
  auto health = run({"curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
                     "http://127.0.0.1:" + std::to_string(port) + "/health"});
  EXPECT_EQ(health.out, "200");
  // Its log is still served (the job writes it directly, not through the agent).
  EXPECT_NE(agent.get("/v1/jobs/" + id + "/logs").body.find("listening"), std::string::npos);

  ASSERT_EQ(agent.request("DELETE", "/v1/jobs/" + id).status, 202);
  auto cancelled = agent.waitForState(id, "cancelled", 20s);
  EXPECT_EQ(cancelled.at("exit_status_known"), bj::value(false)) << bj::serialize(cancelled);
  EXPECT_TRUE(eventually([&] { return !processAlive(pid); }, 5s));
  EXPECT_EQ(types(agent.jobEvents(id)),
            (std::vector<std::string>{"job.started", "job.ready", "job.cancelled"}));
}

TEST(AgentRestart, AJobKilledWhileTheAgentIsDownIsRecordedLost) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  const std::string id = "victim";
  ASSERT_EQ(agent.submit({{"id", id}, {"command", bj::array{"sleep", "300"}}}).status, 201);
  auto running = agent.waitForState(id, "running", 10s);
  const auto pid = static_cast<pid_t>(running.at("pid").as_int64());

  agent.crash();
  ASSERT_TRUE(processAlive(pid));
  ASSERT_EQ(::kill(-pid, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return !processAlive(pid); }, 5s));
  agent.start();

  auto lost = agent.waitForState(id, "lost", 10s);
  EXPECT_EQ(lost.at("exit_status_known"), bj::value(false));
  EXPECT_NE(std::string(lost.at("reason").as_string()).find("no agent was running"),
            std::string::npos)
      << bj::serialize(lost);
  auto events = agent.jobEvents(id);
  ASSERT_EQ(types(events), (std::vector<std::string>{"job.started", "job.lost"}));
  EXPECT_EQ(events[1].at("data").at("state"), "lost");

  // Once recorded it stays recorded once: another restart adds nothing.
  agent.stop();
  agent.start();
  EXPECT_EQ(state(agent.job(id)), "lost");
  EXPECT_EQ(agent.jobEvents(id).size(), 2U);
}

TEST(AgentRestart, ACancelUnderWayIsFinishedByTheNextAgent) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  const std::string id = "stubborn-across-restart";
  ASSERT_EQ(
      agent.submit({{"id", id}, {"command", bj::array{ignoreTermBin()}}, {"grace_s", 2}}).status,
      201);
  auto running = agent.waitForState(id, "running", 10s);
  const auto pid = static_cast<pid_t>(running.at("pid").as_int64());
  ASSERT_TRUE(eventually(
      [&] {
        return agent.get("/v1/jobs/" + id + "/logs").body.find("ignoring SIGTERM") !=
               std::string::npos;
      },
      10s));
  ASSERT_EQ(agent.request("DELETE", "/v1/jobs/" + id).status, 202);
  // Once the API shows the cancel as under way, it must survive the agent.
  ASSERT_TRUE(eventually([&] { return agent.job(id).at("stop_reason") == "cancel"; }, 5s));
  agent.crash();
  ASSERT_TRUE(processAlive(pid)) << "SIGTERM is ignored and the grace period has not passed";
  agent.start();

  auto cancelled = agent.waitForState(id, "cancelled", 20s);
  EXPECT_FALSE(processAlive(pid));
  EXPECT_EQ(cancelled.at("adopted"), bj::value(true));
  EXPECT_EQ(types(agent.jobEvents(id)), (std::vector<std::string>{"job.started", "job.cancelled"}));
}

const std::map<std::string, std::string> kEventOfState{
    {"running", "job.started"}, {"ready", "job.ready"},         {"exited", "job.exited"},
    {"failed", "job.failed"},   {"cancelled", "job.cancelled"}, {"lost", "job.lost"}};

// Every entry once, seqs 1..N without a gap, ids unique, at most one event of a kind per job,
// job.started before any other event of its job.
void expectWellFormed(const std::vector<bj::object>& entries) {
  std::set<std::string> ids;
  std::set<std::pair<std::string, std::string>> job_events;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    EXPECT_EQ(e.at("seq").as_int64(), static_cast<int64_t>(i + 1)) << bj::serialize(e);
    EXPECT_TRUE(ids.insert(std::string(e.at("id").as_string())).second) << bj::serialize(e);
    const std::string type(e.at("type").as_string());
    if (type.rfind("job.", 0) != 0) continue;
    const std::string job(e.at("data").at("job_id").as_string());
    EXPECT_TRUE(job_events.insert({job, type}).second) << "duplicate " << type << " for " << job;
    if (type != "job.started" && type != "job.cancelled" && type != "job.lost") {
      EXPECT_EQ(job_events.count({job, "job.started"}), 1U)
          << type << " before job.started: " << job;
    }
  }
}

TEST(AgentRestart, OutboxKeepsEveryAcknowledgedTransitionAcrossSigkill) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  (void)agent.telemetry();

  // Jobs of three kinds arrive while earlier ones start, exit and get cancelled; every state
  // the API shows is recorded as acknowledged.
  std::set<std::pair<std::string, std::string>> acknowledged;  // (job, event type)
  std::set<std::string> submitted;
  auto observe = [&] {
    auto h = agent.get("/v1/jobs");
    ASSERT_EQ(h.status, 200) << h.body << h.err;
    const auto body = h.obj();
    for (const auto& j : body.at("jobs").as_array()) {
      const auto& o = j.as_object();
      auto it = kEventOfState.find(state(o));
      if (it != kEventOfState.end())
        acknowledged.insert({std::string(o.at("id").as_string()), it->second});
    }
  };
  constexpr int kJobs = 45;
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = "burst-" + std::to_string(i);
    bj::array cmd;
    if (i % 3 == 0) {
      cmd = bj::array{"true"};
    } else if (i % 3 == 1) {
      cmd = bj::array{"sh", "-c", "echo working; exit 1"};
    } else {
      cmd = bj::array{"sleep", "120"};
    }
    auto h = agent.submit({{"id", id}, {"command", cmd}});
    ASSERT_EQ(h.status, 201) << h.body << h.err;
    submitted.insert(id);
    if (i % 6 == 5) (void)agent.request("DELETE", "/v1/jobs/burst-" + std::to_string(i - 3));
    observe();
  }
  observe();
  agent.crash();
  ASSERT_GT(acknowledged.size(), static_cast<size_t>(kJobs / 2))
      << "too little happened before the crash for the test to mean anything";

  agent.start();
  auto entries = agent.outbox();
  expectWellFormed(entries);
  std::set<std::pair<std::string, std::string>> recorded;
  for (const auto& e : entries) {
    const std::string type(e.at("type").as_string());
    if (type.rfind("job.", 0) == 0)
      recorded.insert({std::string(e.at("data").at("job_id").as_string()), type});
  }
  for (const auto& a : acknowledged)
    EXPECT_EQ(recorded.count(a), 1U)
        << a.first << " was shown " << a.second << " by the API but the outbox lost it";

  // The restarted agent finishes what was interrupted without recording anything twice.
  for (int i = 2; i < kJobs; i += 3)
    (void)agent.request("DELETE", "/v1/jobs/burst-" + std::to_string(i));
  ASSERT_TRUE(eventually(
      [&] {
        auto h = agent.get("/v1/jobs");
        if (h.status != 200) return false;
        size_t terminal = 0;
        const auto body = h.obj();
        for (const auto& j : body.at("jobs").as_array()) {
          auto s = state(j.as_object());
          if (s == "exited" || s == "failed" || s == "cancelled" || s == "lost") ++terminal;
        }
        return terminal == submitted.size();
      },
      60s))
      << agent.get("/v1/jobs").body;
  auto final_entries = agent.outbox();
  expectWellFormed(final_entries);
  ASSERT_GE(final_entries.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i)
    EXPECT_EQ(bj::serialize(final_entries[i]), bj::serialize(entries[i]));
  auto last = agent.get("/v1/outbox?limit=1").obj();
  EXPECT_EQ(last.at("last_seq").as_int64(), static_cast<int64_t>(final_entries.size()));
  // Every job has exactly one terminal event.
  std::map<std::string, int> terminal_events;
  for (const auto& e : final_entries) {
    const std::string type(e.at("type").as_string());
    if (type == "job.exited" || type == "job.failed" || type == "job.cancelled" ||
        type == "job.lost")
      ++terminal_events[std::string(e.at("data").at("job_id").as_string())];
  }
  EXPECT_EQ(terminal_events.size(), submitted.size());
  for (const auto& [job, n] : terminal_events) EXPECT_EQ(n, 1) << job;
}

TEST(AgentRestart, ANewGpuInventoryIsRecordedOnRestart) {
  TempDir tmp("hwl-agent-it");
  const auto spec = tmp / "replay.json";
  auto writeSpec = [&](int n) {
    writeFile(spec,
              bj::serialize(bj::object{
                  {"files", bj::array{(telemetryDir() / "nvidia-h100-query-gpu.csv").string()}},
                  {"gpu_count", n}}));
  };
  writeSpec(2);
  Agent agent(tmp.path(), {.probe = "replay:" + spec.string()});
  agent.start();
  auto inventory = [&] {
    std::vector<bj::object> out;
    for (auto& e : agent.outbox())
      if (e.at("type").as_string() == "host.inventory_changed") out.push_back(e);
    return out;
  };
  ASSERT_TRUE(eventually([&] { return inventory().size() == 1; }, 5s));
  agent.crash();
  agent.start();  // same GPUs: nothing new
  (void)agent.telemetry();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(inventory().size(), 1U);
  agent.stop();
  writeSpec(3);
  agent.start();
  ASSERT_TRUE(eventually([&] { return inventory().size() == 2; }, 5s));
  auto change = inventory().back().at("data").as_object();
  EXPECT_EQ(change.at("added").as_array().size(), 1U) << bj::serialize(change);
  EXPECT_EQ(change.at("removed").as_array().size(), 0U);
  EXPECT_EQ(change.at("gpus").as_array().size(), 3U);
}

}  // namespace
}  // namespace hwl::itest::agent
