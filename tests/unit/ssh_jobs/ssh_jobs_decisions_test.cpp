// The pure parts of jobs on agentless hosts: what the tracker appends for what a host shows (the
// ids that make a repeated poll a duplicate, data read from the host only), the parsing of the
// poll's output (cut short, forged marks), the launch's plan and limits, the job root.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "agentless/ssh_driver.hpp"
#include "agentless/ssh_job_scripts.hpp"
#include "agentless/ssh_jobs.hpp"
#include "hwl/json.hpp"

namespace hwl::agentless {
namespace {

namespace bj = boost::json;

ledger::JobRow row(const std::string& state) {
  ledger::JobRow r;
  r.id = "job-1";
  r.host_id = "host-1";
  r.state = state;
  r.spec = R"({"command":["true"],"env":{},"gpus":[],"id":"job-1"})";
  return r;
}

RemoteJob running() {
  RemoteJob r;
  r.dir = true;
  r.boot = RemoteJob::Boot::kSame;
  r.launched_ms = 1000;
  r.pid = 4242;
  r.started_ms = 1010;
  r.alive = true;
  r.group_alive = true;
  return r;
}

RemoteJob exited(int status) {
  RemoteJob r = running();
  r.alive = false;
  r.group_alive = false;
  r.has_exit = true;
  r.status = status;
  r.ended_ms = 5000;
  r.log_tail = "last words\n";
  return r;
}

std::vector<std::string> types(const std::vector<ledger::NewEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type + " " + e.id);
  return out;
}

const SshJobSettings kSettings{};

TEST(SshJobDecisions, PlacedThenRunningThenExited) {
  EXPECT_EQ(types(jobEvents(row("placed"), running(), "host-1", 2000, kSettings)),
            std::vector<std::string>{"job.started job-1:started"});
  EXPECT_TRUE(jobEvents(row("running"), running(), "host-1", 2000, kSettings).empty());
  auto end = jobEvents(row("running"), exited(0), "host-1", 6000, kSettings);
  ASSERT_EQ(types(end), std::vector<std::string>{"job.exited job-1:end"});
  const auto& d = end[0].data.as_object();
  EXPECT_EQ(d.at("state"), "exited");
  EXPECT_EQ(d.at("exit_code"), 0);
  EXPECT_EQ(d.at("ended_ms"), 5000);  // the host's time of the exit, not the poll's
  EXPECT_EQ(d.at("started_ms"), 1010);
  EXPECT_EQ(d.at("pid"), 4242);
  EXPECT_EQ(d.at("host_id"), "host-1");
  EXPECT_EQ(d.at("log_tail"), "last words\n");
  EXPECT_FALSE(d.contains("signal"));
}

TEST(SshJobDecisions, AShortJobSeenOnceEndedIsStartedAndEndedInOneAppend) {
  auto ev = jobEvents(row("placed"), exited(2), "host-1", 6000, kSettings);
  EXPECT_EQ(types(ev),
            (std::vector<std::string>{"job.started job-1:started", "job.exited job-1:end"}));
  EXPECT_EQ(ev[0].data.as_object().at("spec").as_object().at("id"), "job-1");
  EXPECT_FALSE(ev[1].data.as_object().contains("reason"));
  EXPECT_EQ(ev[1].data.as_object().at("exit_code"), 2);
}

TEST(SshJobDecisions, TheSameHostStateGivesTheSameEventsAtAnyLaterPoll) {
  // What makes a poll repeated after a server restart a duplicate: same ids, same data.
  for (const auto& remote : {running(), exited(0), exited(137)}) {
    auto a = jobEvents(row("placed"), remote, "host-1", 6000, kSettings);
    auto b = jobEvents(row("placed"), remote, "host-1", 99'000, kSettings);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].id, b[i].id);
      EXPECT_EQ(json::canonical(a[i].data), json::canonical(b[i].data));
    }
  }
}

TEST(SshJobDecisions, SignalsCancelAndStops) {
  RemoteJob killed = exited(128 + 9);
  auto ev = jobEvents(row("running"), killed, "host-1", 6000, kSettings);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, "job.exited");
  EXPECT_EQ(ev[0].data.as_object().at("signal"), 9);
  EXPECT_FALSE(ev[0].data.as_object().contains("exit_code"));
  EXPECT_FALSE(ev[0].data.as_object().contains("reason"));

  RemoteJob cancelled = exited(128 + 15);
  cancelled.stop_reason = "cancel";
  ev = jobEvents(row("ready"), cancelled, "host-1", 6000, kSettings);
  ASSERT_EQ(types(ev), std::vector<std::string>{"job.cancelled job-1:end"});
  EXPECT_EQ(ev[0].data.as_object().at("state"), "cancelled");
  EXPECT_FALSE(ev[0].data.as_object().contains("log_tail"));

  // Cancelled before the command ran: no start, only the end.
  RemoteJob early;
  early.dir = true;
  early.pid = 4242;
  early.has_exit = true;
  early.ended_ms = 1500;
  early.stop_reason = "cancel";
  EXPECT_EQ(types(jobEvents(row("placed"), early, "host-1", 2000, kSettings)),
            std::vector<std::string>{"job.cancelled job-1:end"});

  RemoteJob maxrt = exited(143);
  maxrt.stop_reason = "max_runtime";
  EXPECT_EQ(endOf(maxrt).type, "job.failed");
  EXPECT_EQ(endOf(maxrt).reason, "max_runtime_s exceeded");
}

TEST(SshJobDecisions, TheEndWaitsForTheRestOfTheProcessGroup) {
  RemoteJob r = exited(0);
  r.group_alive = true;
  EXPECT_TRUE(jobEvents(row("running"), r, "host-1", 6000, kSettings).empty());
  // …but not forever.
  EXPECT_EQ(types(jobEvents(row("running"), r, "host-1", 5000 + 31'000, kSettings)),
            std::vector<std::string>{"job.exited job-1:end"});
}

TEST(SshJobDecisions, ReadyOnceWithItsTimeFromTheHost) {
  RemoteJob r = running();
  r.ready_ms = 1500;
  auto ev = jobEvents(row("running"), r, "host-1", 2000, kSettings);
  ASSERT_EQ(types(ev), std::vector<std::string>{"job.ready job-1:ready"});
  EXPECT_EQ(ev[0].data.as_object().at("ready_ms"), 1500);
  EXPECT_TRUE(jobEvents(row("ready"), r, "host-1", 2000, kSettings).empty());
  EXPECT_EQ(types(jobEvents(row("placed"), r, "host-1", 2000, kSettings)),
            (std::vector<std::string>{"job.started job-1:started", "job.ready job-1:ready"}));
}

TEST(SshJobDecisions, Lost) {
  RemoteJob gone;  // no directory
  EXPECT_TRUE(jobEvents(row("placed"), gone, "host-1", 2000, kSettings).empty())
      << "a placed job's launch may be on its way";
  auto ev = jobEvents(row("running"), gone, "host-1", 2000, kSettings);
  ASSERT_EQ(types(ev), std::vector<std::string>{"job.lost job-1:end"});
  EXPECT_EQ(ev[0].data.as_object().at("reason"), "its job directory is gone");

  RemoteJob dead = running();
  dead.alive = false;
  ev = jobEvents(row("running"), dead, "host-1", 2000, kSettings);
  ASSERT_EQ(types(ev), std::vector<std::string>{"job.lost job-1:end"});

  RemoteJob rebooted = running();
  rebooted.boot = RemoteJob::Boot::kOther;
  EXPECT_EQ(types(jobEvents(row("running"), rebooted, "host-1", 2000, kSettings)),
            std::vector<std::string>{"job.lost job-1:end"});

  RemoteJob never;  // launched, no wrapper
  never.dir = true;
  never.launched_ms = 1000;
  EXPECT_TRUE(jobEvents(row("placed"), never, "host-1", 1000 + 59'000, kSettings).empty());
  EXPECT_EQ(types(jobEvents(row("placed"), never, "host-1", 1000 + 61'000, kSettings)),
            std::vector<std::string>{"job.lost job-1:end"});
}

TEST(SshJobDecisions, EndedJobsAreLeftAlone) {
  for (const char* st : {"exited", "failed", "cancelled", "lost", "submitted"})
    EXPECT_TRUE(jobEvents(row(st), exited(0), "host-1", 6000, kSettings).empty()) << st;
}

TEST(SshJobDecisions, ALaunchThatGaveNoAnswerButRanIsReportedByTheHost) {
  // dispatch_failed after a launch that timed out: the host's report wins if the job ran.
  EXPECT_EQ(types(jobEvents(row("dispatch_failed"), running(), "host-1", 2000, kSettings)),
            std::vector<std::string>{"job.started job-1:started"});
  EXPECT_EQ(types(jobEvents(row("dispatch_failed"), exited(0), "host-1", 6000, kSettings)),
            (std::vector<std::string>{"job.started job-1:started", "job.exited job-1:end"}));
  // Not there, or never started: the failure stands (no lost either).
  RemoteJob never;
  never.dir = true;
  never.launched_ms = 1000;
  EXPECT_TRUE(jobEvents(row("dispatch_failed"), RemoteJob{}, "host-1", 99'000, kSettings).empty());
  EXPECT_TRUE(jobEvents(row("dispatch_failed"), never, "host-1", 99'000, kSettings).empty());
}

TEST(SshJobDecisions, LogTailIsText) {
  RemoteJob r = exited(1);
  r.log_tail = std::string("\x80\x80") + "ok \xff end";
  auto ev = jobEvents(row("running"), r, "host-1", 6000, kSettings);
  ASSERT_EQ(ev.size(), 1u);
  const std::string tail(ev[0].data.as_object().at("log_tail").as_string());
  EXPECT_EQ(tail.rfind("ok ", 0), 0u) << tail;
  // Serialised and parsed back: valid JSON text.
  EXPECT_TRUE(json::parseObject(json::canonical(ev[0].data)).has_value());
}

TEST(SshJobPollOutput, ParsesAndRefusesWhatIsNotItsOwn) {
  const std::string n = "0123456789abcdef";
  const std::string m = "@@hwl-" + n;
  const std::string out = "motd from a login script\n" + m + " now 1700000000000 curl\n" + m +
                          " job job-1\ndir 1\nboot same\npid 12\nstarted 5\nalive 0\ngroup 0\n"
                          "exit 0 9\n" +
                          m + " log\nhello\n@@hwl-ffffffffffffffff end\n\n" + m + " endlog\n" + m +
                          " job job-2\ndir 0\n" + m + " end\n";
  auto r = parsePollOutput(out, n);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->now_ms, 1700000000000);
  EXPECT_EQ(r->prober, "curl");
  ASSERT_EQ(r->jobs.size(), 2u);
  const RemoteJob& j = r->jobs.at("job-1");
  EXPECT_TRUE(j.dir && j.has_exit);
  EXPECT_EQ(j.status, 0);
  EXPECT_EQ(j.ended_ms, 9);
  EXPECT_EQ(j.pid, 12);
  // A log that prints another poll's mark is only log.
  EXPECT_EQ(j.log_tail, "hello\n@@hwl-ffffffffffffffff end\n");
  EXPECT_FALSE(r->jobs.at("job-2").dir);

  // Cut short: no closing mark, or inside a log.
  EXPECT_FALSE(parsePollOutput(out.substr(0, out.size() - (m.size() + 5)), n).has_value());
  EXPECT_FALSE(parsePollOutput(out.substr(0, out.find("hello") + 3), n).has_value());
  // Another nonce's output is not this poll's.
  EXPECT_FALSE(parsePollOutput(out, "fedcba9876543210").has_value());
  // A job named twice, an exit status out of range.
  EXPECT_FALSE(parsePollOutput(m + " job a\n" + m + " job a\n" + m + " end\n", n).has_value());
  EXPECT_FALSE(parsePollOutput(m + " job a\nexit 300 1\n" + m + " end\n", n).has_value());
  EXPECT_FALSE(parsePollOutput(out, "not-a-nonce").has_value());
}

TEST(SshJobLaunch, PlanFollowsTheSpec) {
  bj::object spec{{"id", "job-1"},
                  {"command", bj::array{"python3", "serve.py"}},
                  {"env", bj::object{{"A", "1"}, {"CUDA_VISIBLE_DEVICES", "spoofed"}}},
                  {"gpus", bj::array{"GPU-1", "GPU-2"}},
                  {"grace_s", 3},
                  {"max_runtime_s", 60},
                  {"working_dir", "sub/dir"}};
  auto p = launchPlan({proto::JobId::trusted("job-1"), {"GPU-1", "GPU-2"}, spec});
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->command, (std::vector<std::string>{"python3", "serve.py"}));
  EXPECT_EQ(p->grace_ms, 3000);
  EXPECT_EQ(p->max_runtime_ms, 60'000);
  EXPECT_EQ(p->working_dir, "sub/dir");
  // The placed GPUs win over the spec's env, as on the agent (exported last).
  ASSERT_GE(p->env.size(), 3u);
  EXPECT_EQ(p->env[p->env.size() - 3],
            (std::pair<std::string, std::string>{"CUDA_VISIBLE_DEVICES", "GPU-1,GPU-2"}));
  EXPECT_EQ(p->env.back(), (std::pair<std::string, std::string>{"HWLEDGER_JOB_ID", "job-1"}));

  // The host's parser refuses what the agent would: a GPU not placed, a path leaving the root.
  spec["gpus"] = bj::array{"GPU-3"};
  EXPECT_FALSE(launchPlan({proto::JobId::trusted("job-1"), {"GPU-1"}, spec}).has_value());
  spec["gpus"] = bj::array{};
  spec["working_dir"] = "../../etc";
  EXPECT_FALSE(launchPlan({proto::JobId::trusted("job-1"), {}, spec}).has_value());
  spec.erase("working_dir");
  EXPECT_FALSE(launchPlan({proto::JobId::trusted("job-2"), {}, spec}).has_value())
      << "the spec's id must be the job's";
  // Limits an SSH host cannot enforce are refused, as an agent refuses them.
  spec["pids_max"] = 100;
  auto refused = launchPlan({proto::JobId::trusted("job-1"), {}, spec});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().message.rfind("pids_max", 0), 0u) << refused.error().message;
  spec.erase("pids_max");
  spec["memory_max_bytes"] = 1 << 30;
  EXPECT_FALSE(launchPlan({proto::JobId::trusted("job-1"), {}, spec}).has_value());
  spec.erase("memory_max_bytes");
  EXPECT_TRUE(launchPlan({proto::JobId::trusted("job-1"), {}, spec}).has_value());
}

TEST(SshJobLaunch, ACommandLineTooLongForTheHostIsRefused) {
  LaunchPlan p;
  p.job_id = "job-1";
  p.command = {"echo"};
  for (int i = 0; i < 10; ++i) p.command.push_back(std::string(15 * 1024, 'x'));
  auto c = launchCommand("~/.hwledger/jobs", p);
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("at most"), std::string::npos) << c.error().message;
}

TEST(SshJobLaunch, JobRoot) {
  for (const char* ok : {"~", "~/.hwledger/jobs", "/var/lib/hwl jobs", "/"})
    EXPECT_TRUE(validateJobRoot(ok).has_value()) << ok;
  for (const char* bad : {"", "relative/dir", "~other/jobs", "/a\nb", "$HOME/jobs"})
    EXPECT_FALSE(validateJobRoot(bad).has_value()) << bad;
  EXPECT_FALSE(launchCommand("relative", {}).has_value());
  EXPECT_FALSE(cancelCommand("/x", "../etc", 1).has_value()) << "job ids are checked";
  EXPECT_FALSE(logsCommand("/x", "job-1", -1, false).has_value());
}

TEST(SshJobStatus, TheHostsView) {
  EXPECT_EQ(remoteJobJson("job-1", running()).at("state"), "running");
  RemoteJob r = running();
  r.ready_ms = 7;
  EXPECT_EQ(remoteJobJson("job-1", r).at("state"), "ready");
  r.alive = false;
  EXPECT_EQ(remoteJobJson("job-1", r).at("state"), "lost");
  auto done = remoteJobJson("job-1", exited(3));
  EXPECT_EQ(done.at("state"), "exited");
  EXPECT_EQ(done.at("exit_code"), 3);
  RemoteJob starting;
  starting.dir = true;
  EXPECT_EQ(remoteJobJson("job-1", starting).at("state"), "starting");
}

}  // namespace
}  // namespace hwl::agentless
