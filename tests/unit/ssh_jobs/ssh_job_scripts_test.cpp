// The host's side of jobs on agentless hosts, without SSH: the exact command strings the driver
// and the tracker send are run by the real /bin/sh (`sh -c STRING`, as sshd hands them to the
// login shell) on this machine, in a temp job root. Checks the wrapper (exit status, signals,
// environment, working dir, hostile arguments staying literal, one run per job id), the stopper
// (the whole process group gone after a cancel, SIGKILL after grace_s, max_runtime_s,
// ready_timeout_s), logs, and what the poll prints as parsed.
#include "agentless/ssh_job_scripts.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agentless/ssh_jobs.hpp"

namespace hwl::agentless {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Shell {
  int status = -1;  // the exit status of sh, or -1
  std::string out;
};

// popen(3) is `/bin/sh -c command`, what sshd does with an exec request.
Shell runShell(const std::string& command) {
  Shell r;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return f();
}

bool groupAlive(int64_t pgid) { return ::kill(-static_cast<pid_t>(pgid), 0) == 0; }

class SshJobScripts : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hwl-sshjobs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = (dir_ / "jobs").string();
  }
  void TearDown() override {
    // Whatever a failed test left running.
    for (const auto& id : launched_) {
      std::ifstream in(fs::path(root_) / id / "pid");
      int64_t pid = 0;
      if (in >> pid && pid > 1) ::kill(-static_cast<pid_t>(pid), SIGKILL);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static bj::object spec(const std::string& id, const std::vector<std::string>& argv,
                         bj::object extra = {}) {
    bj::array cmd;
    for (const auto& a : argv) cmd.emplace_back(a);
    bj::object s{{"id", id}, {"command", cmd}, {"env", bj::object{}}, {"gpus", bj::array{}}};
    for (auto& kv : extra) s[kv.key()] = kv.value();
    return s;
  }

  Shell launch(const std::string& id, const std::vector<std::string>& argv, bj::object extra = {},
               const std::vector<std::string>& gpus = {}) {
    bj::object s = spec(id, argv, std::move(extra));
    bj::array g;
    for (const auto& u : gpus) g.emplace_back(u);
    s["gpus"] = g;
    auto plan = launchPlan({proto::JobId::trusted(id), gpus, s});
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    if (!plan) return {};
    auto cmd = launchCommand(root_, *plan);
    EXPECT_TRUE(cmd.has_value()) << cmd.error().message;
    if (!cmd) return {};
    launched_.push_back(id);
    return runShell(*cmd);
  }

  RemoteJob poll(const std::string& id, const std::string& ready_url = "",
                 int64_t ready_timeout_ms = 0, int64_t grace_ms = 10'000) {
    auto all = pollAll({{id, ready_url, ready_timeout_ms, grace_ms}});
    auto it = all.jobs.find(id);
    EXPECT_NE(it, all.jobs.end());
    return it == all.jobs.end() ? RemoteJob{} : it->second;
  }

  PollResult pollAll(const std::vector<PollEntry>& entries) {
    const std::string nonce = newNonce();
    auto cmd = pollCommand(root_, nonce, entries);
    EXPECT_TRUE(cmd.has_value()) << cmd.error().message;
    if (!cmd) return {};
    Shell sh = runShell(*cmd);
    EXPECT_EQ(sh.status, 0) << sh.out;
    auto r = parsePollOutput(sh.out, nonce);
    EXPECT_TRUE(r.has_value()) << r.error().message << "\n" << sh.out;
    return r ? *r : PollResult{};
  }

  // Polls until the job has its exit and its process group is gone.
  RemoteJob ended(const std::string& id, std::chrono::milliseconds limit = 15s) {
    RemoteJob r;
    eventually(
        [&] {
          r = poll(id);
          return r.has_exit && !r.group_alive;
        },
        limit);
    return r;
  }

  fs::path jobDir(const std::string& id) const { return fs::path(root_) / id; }

  fs::path dir_;
  std::string root_;
  std::vector<std::string> launched_;
};

TEST_F(SshJobScripts, RunsTheCommandAndRecordsItsExit) {
  auto sh = launch("job-exit3", {"sh", "-c", "echo to-out; echo to-err >&2; exit 3"});
  ASSERT_EQ(sh.status, 0) << sh.out;
  auto answer = parseLaunchOutput(sh.out);
  ASSERT_TRUE(answer.has_value()) << sh.out;
  EXPECT_EQ(*answer, LaunchAnswer::kStarted) << sh.out;
  RemoteJob r = ended("job-exit3");
  ASSERT_TRUE(r.has_exit);
  EXPECT_TRUE(r.dir);
  EXPECT_EQ(r.boot, RemoteJob::Boot::kSame);
  ASSERT_TRUE(r.pid.has_value());
  EXPECT_FALSE(r.alive);
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.exitCode(), 3);
  EXPECT_FALSE(r.signal().has_value());
  ASSERT_TRUE(r.started_ms && r.ended_ms);
  EXPECT_LE(*r.started_ms, *r.ended_ms);
  ASSERT_TRUE(r.log_tail.has_value());
  EXPECT_EQ(*r.log_tail, "to-out\nto-err\n");
  // As on agent hosts: it ran to its end, so it exited (with its code).
  EXPECT_EQ(endOf(r).type, "job.exited");
  EXPECT_EQ(endOf(r).reason, "");
  // The directory holds what the header says; only the user can enter it.
  EXPECT_EQ(fs::status(jobDir("job-exit3")).permissions() & fs::perms::all, fs::perms::owner_all);
  for (const char* f : {"spec.json", "launched_ms", "started_ms", "pid", "exit", "log"})
    EXPECT_TRUE(fs::exists(jobDir("job-exit3") / f)) << f;
}

TEST_F(SshJobScripts, ASecondLaunchOfTheSameIdRunsNothing) {
  const std::string counter = (dir_ / "runs").string();
  const std::vector<std::string> argv{"sh", "-c", "echo run >> \"$0\"", counter};
  ASSERT_EQ(launch("job-once", argv).status, 0);
  ASSERT_TRUE(ended("job-once").has_exit);
  auto again = launch("job-once", argv);
  ASSERT_EQ(again.status, 0);
  auto answer = parseLaunchOutput(again.out);
  ASSERT_TRUE(answer.has_value()) << again.out;
  EXPECT_EQ(*answer, LaunchAnswer::kExists);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(slurp(counter), "run\n");
}

TEST_F(SshJobScripts, HostileArgumentsAndEnvironmentStayLiteral) {
  const fs::path marker = dir_ / "pwned";
  const std::vector<std::string> hostile{"$(touch " + marker.string() + ")",
                                         "`touch " + marker.string() + "`",
                                         "'; touch " + marker.string() + "; '",
                                         "a\nb",
                                         "\"$HOME\" *",
                                         "-n",
                                         ""};
  std::vector<std::string> argv{"sh", "-c",
                                "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done; "
                                "printf '<%s>\\n' \"$HWL_EVIL\"",
                                "argv0"};
  argv.insert(argv.end(), hostile.begin(), hostile.end());
  bj::object extra{{"env", bj::object{{"HWL_EVIL", "$(touch " + marker.string() + ");'\"`"}}}};
  ASSERT_EQ(launch("job-hostile", argv, extra).status, 0);
  RemoteJob r = ended("job-hostile");
  ASSERT_EQ(r.status, 0) << r.log_tail.value_or("");
  std::string want;
  for (const auto& h : hostile) want += "[" + h + "]\n";
  want += "<$(touch " + marker.string() + ");'\"`>\n";
  EXPECT_EQ(r.log_tail.value_or(""), want);
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(SshJobScripts, GpusJobIdAndWorkingDirectory) {
  ASSERT_EQ(launch("job-env",
                   {"sh", "-c",
                    "echo \"$CUDA_VISIBLE_DEVICES|$ROCR_VISIBLE_DEVICES|"
                    "$HWLEDGER_JOB_ID|$(pwd)\""},
                   {}, {"GPU-aaaa", "GPU-bbbb"})
                .status,
            0);
  RemoteJob r = ended("job-env");
  EXPECT_EQ(r.log_tail.value_or(""), "GPU-aaaa,GPU-bbbb|GPU-aaaa,GPU-bbbb|job-env|" +
                                         fs::canonical(jobDir("job-env") / "work").string() + "\n");
  // An absolute working dir is used as it is; one that is not there fails the job, saying why.
  ASSERT_EQ(launch("job-abs", {"pwd"}, {{"working_dir", dir_.string()}}).status, 0);
  EXPECT_EQ(ended("job-abs").log_tail.value_or(""), fs::canonical(dir_).string() + "\n");
  ASSERT_EQ(launch("job-nodir", {"pwd"}, {{"working_dir", (dir_ / "absent").string()}}).status, 0);
  RemoteJob nodir = ended("job-nodir");
  EXPECT_EQ(nodir.status, 1);
  EXPECT_NE(nodir.log_tail.value_or("").find("cannot enter the working directory"),
            std::string::npos)
      << nodir.log_tail.value_or("");
  // A command that is a shell builtin's name runs as a program, if there is one.
  ASSERT_EQ(launch("job-builtin", {"exit", "0"}).status, 0);
  EXPECT_EQ(ended("job-builtin").status, 127);
}

TEST_F(SshJobScripts, ASignalShowsAsTheSignal) {
  ASSERT_EQ(launch("job-sig", {"sh", "-c", "kill -USR1 $$"}).status, 0);
  RemoteJob r = ended("job-sig");
  EXPECT_EQ(r.signal(), SIGUSR1);
  EXPECT_FALSE(r.exitCode().has_value());
  EXPECT_EQ(endOf(r).type, "job.exited");  // the signal is in the event, as on agent hosts
}

TEST_F(SshJobScripts, CancelEndsTheWholeProcessGroupAfterGrace) {
  // Every process of the job ignores SIGTERM: only the SIGKILL after grace_s ends them.
  ASSERT_EQ(launch("job-cancel",
                   {"sh", "-c",
                    "trap '' TERM; sh -c 'echo child; sleep 300' & echo main; "
                    "while :; do sleep 0.1; done"},
                   {{"grace_s", 1}})
                .status,
            0);
  RemoteJob r;
  ASSERT_TRUE(eventually(
      [&] {
        r = poll("job-cancel");
        return r.pid && r.log_tail.value_or(slurp(jobDir("job-cancel") / "log")).find("child") !=
                            std::string::npos;
      },
      10s));
  const int64_t pgid = *r.pid;
  ASSERT_TRUE(groupAlive(pgid));
  auto cmd = cancelCommand(root_, "job-cancel", 1000);
  ASSERT_TRUE(cmd.has_value());
  const auto t0 = std::chrono::steady_clock::now();
  Shell c = runShell(*cmd);
  EXPECT_EQ(c.out, "cancelling\n");
  ASSERT_TRUE(eventually([&] { return !groupAlive(pgid); }, 10s)) << "the group outlived cancel";
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 900ms) << "SIGKILL came before the grace period";
  r = ended("job-cancel");
  ASSERT_TRUE(r.has_exit);
  EXPECT_EQ(r.stop_reason, "cancel");
  EXPECT_EQ(r.signal(), SIGKILL) << "the wrapper was killed too; the stopper wrote its exit";
  EXPECT_EQ(endOf(r).type, "job.cancelled");
  // Cancelling again: the job has ended; an unknown job is unknown.
  EXPECT_EQ(runShell(*cmd).out, "ended\n");
  EXPECT_EQ(runShell(*cancelCommand(root_, "job-none", 1000)).out, "unknown\n");
}

TEST_F(SshJobScripts, WhatTheJobLeftInItsGroupGoesWithIt) {
  const std::string pidfile = (dir_ / "left").string();
  ASSERT_EQ(launch("job-left", {"sh", "-c", "sleep 300 & echo $! > \"$0\"", pidfile}).status, 0);
  RemoteJob r = ended("job-left");
  ASSERT_TRUE(r.has_exit);
  EXPECT_EQ(r.status, 0);
  std::ifstream in(pidfile);
  pid_t left = 0;
  ASSERT_TRUE(in >> left);
  EXPECT_TRUE(eventually([&] { return ::kill(left, 0) != 0; }, 5s));
  EXPECT_FALSE(groupAlive(*r.pid));
}

TEST_F(SshJobScripts, MaxRuntimeStopsTheJob) {
  ASSERT_EQ(launch("job-maxrt", {"sleep", "300"}, {{"max_runtime_s", 1}, {"grace_s", 1}}).status,
            0);
  RemoteJob r = ended("job-maxrt", 15s);
  ASSERT_TRUE(r.has_exit);
  EXPECT_EQ(r.stop_reason, "max_runtime");
  EXPECT_EQ(r.signal(), SIGTERM);
  EXPECT_EQ(endOf(r).type, "job.failed");
  EXPECT_EQ(endOf(r).reason, "max_runtime_s exceeded");
}

TEST_F(SshJobScripts, ReadyTimeoutStopsAJobThatNeverAnswers) {
  if (runShell("command -v curl || command -v wget").out.empty())
    GTEST_SKIP() << "neither curl nor wget: no readiness probe";
  // Port 1 on loopback: nothing listens there.
  ASSERT_EQ(launch("job-noready", {"sleep", "300"}, {{"grace_s", 1}}).status, 0);
  RemoteJob r;
  ASSERT_TRUE(eventually(
      [&] {
        r = poll("job-noready", "http://127.0.0.1:1/health", 500, 1000);
        return r.has_exit && !r.group_alive;
      },
      15s));
  EXPECT_FALSE(r.ready_ms.has_value());
  EXPECT_EQ(r.stop_reason, "ready_timeout");
  EXPECT_EQ(endOf(r).reason, "ready_url did not answer 2xx within ready_timeout_s");
}

TEST_F(SshJobScripts, ACancelRacingTheLaunchIsNeverMissed) {
  // The cancel comes before, during or after the wrapper's start: each run either never runs the
  // command or ends it, and ends as cancelled.
  for (int i = 0; i < 5; ++i) {
    const std::string id = "job-race" + std::to_string(i);
    auto plan =
        launchPlan({proto::JobId::trusted(id), {}, spec(id, {"sleep", "300"}, {{"grace_s", 1}})});
    ASSERT_TRUE(plan.has_value());
    auto l = launchCommand(root_, *plan);
    auto c = cancelCommand(root_, id, 1000);
    ASSERT_TRUE(l && c);
    launched_.push_back(id);
    std::thread t([&] { runShell(*l); });
    std::this_thread::sleep_for(std::chrono::milliseconds(i * 20));
    Shell cs;
    eventually(
        [&] {
          cs = runShell(*c);
          return cs.out != "unknown\n";
        },
        5s);
    t.join();
    RemoteJob r = ended(id);
    ASSERT_TRUE(r.has_exit) << id;
    EXPECT_EQ(r.stop_reason, "cancel") << id;
    EXPECT_EQ(endOf(r).type, "job.cancelled") << id;
  }
}

TEST_F(SshJobScripts, AWrapperKilledWithoutAnExitIsLost) {
  ASSERT_EQ(launch("job-lost", {"sleep", "300"}).status, 0);
  RemoteJob r;
  ASSERT_TRUE(eventually(
      [&] {
        r = poll("job-lost");
        return r.pid.has_value();
      },
      5s));
  ::kill(static_cast<pid_t>(*r.pid), SIGKILL);  // the wrapper only, as an OOM kill would
  ASSERT_TRUE(eventually(
      [&] {
        r = poll("job-lost");
        return !r.alive;
      },
      5s));
  EXPECT_FALSE(r.has_exit);
  ledger::JobRow row;
  row.id = "job-lost";
  row.state = "running";
  auto events = jobEvents(row, r, "host-1", 1000, {});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "job.lost");
  EXPECT_EQ(events[0].id, "job-lost:end");
}

TEST_F(SshJobScripts, LogsTailAndFollowUntilTheJobEnds) {
  ASSERT_EQ(
      launch("job-logs", {"sh", "-c", "for i in 1 2 3; do echo line$i; done; sleep 1; echo late"})
          .status,
      0);
  auto follow = logsCommand(root_, "job-logs", 2, true);
  ASSERT_TRUE(follow.has_value());
  const auto t0 = std::chrono::steady_clock::now();
  Shell f = runShell(*follow);  // returns when the job has ended
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_NE(f.out.find("late\n"), std::string::npos) << f.out;
  EXPECT_EQ(f.out.find("line1"), std::string::npos) << f.out;  // two lines back only
  auto tail = logsCommand(root_, "job-logs", 2, false);
  ASSERT_TRUE(tail.has_value());
  EXPECT_EQ(runShell(*tail).out, "line3\nlate\n");
  Shell none = runShell(*logsCommand(root_, "job-none", 2, false));
  EXPECT_EQ(none.status, 3);
}

TEST_F(SshJobScripts, TheRootUnderHomeIsTheRemoteUsersHome) {
  const std::string home = (dir_ / "home").string();
  fs::create_directories(home);
  const char* old = ::getenv("HOME");
  const std::string saved = old ? old : "";
  ::setenv("HOME", home.c_str(), 1);
  root_ = "~/.hwledger/jobs";
  auto sh = launch("job-home", {"true"});
  RemoteJob r = ended("job-home");
  ::setenv("HOME", saved.c_str(), 1);
  root_ = (fs::path(home) / ".hwledger/jobs").string();  // for TearDown
  ASSERT_EQ(sh.status, 0);
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(fs::exists(fs::path(home) / ".hwledger/jobs/job-home/exit"));
}

TEST_F(SshJobScripts, OnePollReadsEveryJob) {
  ASSERT_EQ(launch("job-a", {"true"}).status, 0);
  ASSERT_EQ(launch("job-b", {"sleep", "300"}).status, 0);
  ASSERT_TRUE(ended("job-a").has_exit);
  auto all = pollAll({{"job-a", "", 0, 1000}, {"job-b", "", 0, 1000}, {"job-c", "", 0, 1000}});
  ASSERT_EQ(all.jobs.size(), 3u);
  EXPECT_TRUE(all.jobs["job-a"].has_exit);
  EXPECT_TRUE(all.jobs["job-b"].alive);
  EXPECT_FALSE(all.jobs["job-c"].dir);
  EXPECT_GT(all.now_ms, 1'600'000'000'000);
}

}  // namespace
}  // namespace hwl::agentless
