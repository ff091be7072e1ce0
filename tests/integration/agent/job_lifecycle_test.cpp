// Jobs through the agent's API with real child processes: a loopback inference server that
// becomes ready, its logs (tail and live follow), cancel (SIGTERM, then SIGKILL after the grace
// period), max_runtime, a plain exit; and the job events each leaves in the outbox.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <cerrno>
#include <regex>

#include "agent_fixture.hpp"

namespace hwl::itest::agent {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

const std::string kH100Uuid = "GPU-00000000-0000-0000-0000-000000000000";

Agent::Options h100() {
  return {.probe = "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()};
}

bool groupGone(pid_t pgid) { return ::kill(-pgid, 0) != 0 && errno == ESRCH; }

// The highest "tick N" in a text, or -1.
int lastTick(const std::string& text) {
  static const std::regex kTick("tick ([0-9]+)");
  int best = -1;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kTick);
       it != std::sregex_iterator(); ++it)
    best = std::max(best, std::stoi((*it)[1].str()));
  return best;
}

std::string state(const bj::object& job) { return std::string(job.at("state").as_string()); }

TEST(AgentJobs, InferenceServerBecomesReadyStreamsLogsAndIsCancelled) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  (void)agent.telemetry();  // GPU uuids are known once a sample exists

  const uint16_t port = freeLoopbackPort();
  const std::string id = "llm-server.1";
  // A server that loads for a moment, plus a background writer in the same process group that
  // logs a numbered line every 200 ms, so following the log has something new to show.
  bj::object spec{
      {"id", id},
      {"command", bj::array{"/bin/sh", "-c",
                            "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done & exec " +
                                testHttpServerBin() + " " + std::to_string(port)}},
      {"env", bj::object{{"MODEL", "tiny"}}},
      {"gpus", bj::array{kH100Uuid}},
      {"ready_url", "http://127.0.0.1:" + std::to_string(port) + "/health"},
      {"ready_timeout_s", 30},
      {"grace_s", 5}};
  auto created = agent.submit(spec);
  ASSERT_EQ(created.status, 201) << created.body << created.err;
  EXPECT_EQ(created.obj().at("id").as_string(), id);

  // Submitting the same spec again is the same job; a different spec under that id is a conflict.
  auto again = agent.submit(spec);
  EXPECT_EQ(again.status, 200) << again.body;
  auto changed = spec;
  changed["grace_s"] = 6;
  auto conflict = agent.submit(changed);
  EXPECT_EQ(conflict.status, 409) << conflict.body;

  auto ready = agent.waitForState(id, "ready", 30s);
  const auto pid = static_cast<pid_t>(ready.at("pid").as_int64());
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(processAlive(pid));
  EXPECT_GT(ready.at("ready_ms").as_int64(), 0);
  auto health = run({"curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
                     "http://127.0.0.1:" + std::to_string(port) + "/health"});
  EXPECT_EQ(health.out, "200") << health.err;

  // The job runs as the job user, in its working dir under the jobs root, seeing its GPU.
  auto logs = agent.get("/v1/jobs/" + id + "/logs?tail=1000");
  ASSERT_EQ(logs.status, 200);
  EXPECT_NE(logs.body.find("uid=65534"), std::string::npos) << logs.body;
  EXPECT_NE(logs.body.find("CUDA_VISIBLE_DEVICES=" + kH100Uuid + "\n"), std::string::npos);
  EXPECT_NE(logs.body.find("cwd=" + (agent.jobsRoot() / id).string() + "\n"), std::string::npos)
      << logs.body;
  EXPECT_NE(logs.body.find("listening\n"), std::string::npos);

  // "listening" came before ready; a few ticks later the last two lines are ticks.
  const int at_ready = lastTick(logs.body);
  ASSERT_TRUE(eventually(
      [&] { return lastTick(agent.get("/v1/jobs/" + id + "/logs").body) >= at_ready + 3; }, 10s));
  auto tail2 = agent.get("/v1/jobs/" + id + "/logs?tail=2");
  ASSERT_EQ(tail2.status, 200);
  auto tail_lines = lines(tail2.body);
  ASSERT_EQ(tail_lines.size(), 2U) << tail2.body;
  for (const auto& l : tail_lines) EXPECT_EQ(l.rfind("tick ", 0), 0U) << l;

  // Follow: the stream keeps delivering lines written after it started.
  const int before = lastTick(agent.get("/v1/jobs/" + id + "/logs?tail=1").body);
  ASSERT_GE(before, 0);
  Process follow({"curl", "-sS", "-N", "--max-time", "60", "-D", (tmp / "follow.headers").string(),
                  agent.url() + "/v1/jobs/" + id + "/logs?follow=1&tail=1"},
                 {.stdout_file = tmp / "follow.out", .stderr_file = tmp / "follow.err"});
  ASSERT_TRUE(eventually([&] { return lastTick(follow.out()) >= before + 5; }, 15s))
      << "follow output: " << follow.out() << follow.err();
  // It started at the tail, not at the beginning of the log.
  EXPECT_EQ(follow.out().find("uid="), std::string::npos) << follow.out();
  std::string headers = readFile(tmp / "follow.headers");
  std::transform(headers.begin(), headers.end(), headers.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  EXPECT_NE(headers.find("transfer-encoding: chunked"), std::string::npos) << headers;
  EXPECT_TRUE(follow.running());

  auto del = agent.request("DELETE", "/v1/jobs/" + id);
  EXPECT_EQ(del.status, 202) << del.body;
  auto cancelled = agent.waitForState(id, "cancelled", 20s);
  EXPECT_EQ(cancelled.at("signal"), bj::value(SIGTERM)) << bj::serialize(cancelled);
  EXPECT_TRUE(cancelled.at("exit_code").is_null());
  EXPECT_FALSE(processAlive(pid));
  EXPECT_TRUE(eventually([&] { return groupGone(pid); }, 5s)) << "the log writer outlived the job";
  auto gone = run({"curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://127.0.0.1:" + std::to_string(port) + "/health"});
  EXPECT_NE(gone.out, "200");

  // The follow stream ends by itself once the job has ended.
  auto follow_end = follow.wait(10s);
  ASSERT_TRUE(follow_end) << "the follow stream did not end after the job was cancelled";
  EXPECT_TRUE(follow_end->success()) << follow_end->describe() << follow.err();

  auto events = agent.jobEvents(id);
  EXPECT_EQ(types(events), (std::vector<std::string>{"job.started", "job.ready", "job.cancelled"}));
  ASSERT_EQ(events.size(), 3U);
  EXPECT_LT(events[0].at("seq").as_int64(), events[1].at("seq").as_int64());
  EXPECT_LT(events[1].at("seq").as_int64(), events[2].at("seq").as_int64());
  EXPECT_EQ(events[0].at("data").at("state"), "running");
  EXPECT_EQ(events[0].at("data").at("pid"), bj::value(pid));
  EXPECT_EQ(events[0].at("data").at("spec").at("gpus").as_array().at(0), bj::value(kH100Uuid));
  EXPECT_EQ(events[1].at("data").at("state"), "ready");
  EXPECT_EQ(events[2].at("data").at("state"), "cancelled");
  EXPECT_EQ(static_cast<uint64_t>(cancelled.at("last_event_seq").as_int64()),
            static_cast<uint64_t>(events[2].at("seq").as_int64()));

  // Cancelling a finished job changes nothing.
  auto del2 = agent.request("DELETE", "/v1/jobs/" + id);
  EXPECT_EQ(del2.status, 202);
  EXPECT_EQ(del2.obj().at("state"), "cancelled");
  EXPECT_EQ(agent.jobEvents(id).size(), 3U);
  auto list = agent.get("/v1/jobs");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.obj().at("jobs").as_array().size(), 1U);
  EXPECT_EQ(list.obj().at("jobs").as_array()[0].at("id"), bj::value(id));
  EXPECT_EQ(agent.get("/v1/jobs/no-such-job").status, 404);
  EXPECT_EQ(agent.request("DELETE", "/v1/jobs/no-such-job").status, 404);
}

TEST(AgentJobs, CancelKillsAJobThatIgnoresSigtermAfterTheGracePeriod) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  const std::string id = "stubborn";
  auto created =
      agent.submit({{"id", id}, {"command", bj::array{ignoreTermBin()}}, {"grace_s", 1}});
  ASSERT_EQ(created.status, 201) << created.body;
  auto running = agent.waitForState(id, "running", 10s);
  const auto pid = static_cast<pid_t>(running.at("pid").as_int64());
  // Only once it has said so is SIGTERM ignored.
  ASSERT_TRUE(eventually(
      [&] {
        return agent.get("/v1/jobs/" + id + "/logs").body.find("ignoring SIGTERM") !=
               std::string::npos;
      },
      10s));

  const auto t0 = Steady::now();
  ASSERT_EQ(agent.request("DELETE", "/v1/jobs/" + id).status, 202);
  // Still alive well into the grace period.
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(processAlive(pid));
  EXPECT_NE(state(agent.job(id)), "cancelled");
  auto cancelled = agent.waitForState(id, "cancelled", 15s);
  const auto took = Steady::now() - t0;
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 10s);
  EXPECT_EQ(cancelled.at("signal"), bj::value(SIGKILL)) << bj::serialize(cancelled);
  EXPECT_FALSE(processAlive(pid));
  EXPECT_EQ(types(agent.jobEvents(id)), (std::vector<std::string>{"job.started", "job.cancelled"}));
}

TEST(AgentJobs, MaxRuntimeEndsTheJobAsFailed) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  const std::string id = "too-long";
  auto created = agent.submit(
      {{"id", id}, {"command", bj::array{"sleep", "60"}}, {"max_runtime_s", 1}, {"grace_s", 2}});
  ASSERT_EQ(created.status, 201) << created.body;
  auto running = agent.waitForState(id, "running", 10s);
  const auto pid = static_cast<pid_t>(running.at("pid").as_int64());
  auto failed = agent.waitForState(id, "failed", 15s);
  EXPECT_EQ(failed.at("reason"), "max_runtime_s exceeded");
  EXPECT_EQ(failed.at("stop_reason"), "max_runtime");
  EXPECT_EQ(failed.at("signal"), bj::value(SIGTERM));
  EXPECT_GE(failed.at("runtime_ms").as_int64(), 1000);
  EXPECT_LT(failed.at("runtime_ms").as_int64(), 10000);
  EXPECT_FALSE(processAlive(pid));
  auto events = agent.jobEvents(id);
  ASSERT_EQ(types(events), (std::vector<std::string>{"job.started", "job.failed"}));
  EXPECT_EQ(events[1].at("data").at("reason"), "max_runtime_s exceeded");
}

TEST(AgentJobs, ExitCodeAndLastLogLinesAreRecorded) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), h100());
  agent.start();
  const std::string id = "batch";
  auto created =
      agent.submit({{"id", id},
                    {"command", bj::array{"/bin/sh", "-c", "echo \"$GREETING\"; exit 3"}},
                    {"env", bj::object{{"GREETING", "bye from the batch job"}}}});
  ASSERT_EQ(created.status, 201) << created.body;
  auto exited = agent.waitForState(id, "exited", 15s);
  EXPECT_EQ(exited.at("exit_code"), bj::value(3));
  EXPECT_TRUE(exited.at("signal").is_null());
  auto events = agent.jobEvents(id);
  ASSERT_EQ(types(events), (std::vector<std::string>{"job.started", "job.exited"}));
  EXPECT_EQ(events[1].at("data").at("exit_code"), bj::value(3));
  EXPECT_EQ(events[1].at("data").at("log_tail"), "bye from the batch job\n");
}

}  // namespace
}  // namespace hwl::itest::agent
