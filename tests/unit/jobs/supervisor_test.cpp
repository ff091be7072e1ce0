// Tests of the job supervisor with real processes: lifecycle with a loopback "inference server",
// cancel with grace, max runtime, exit codes, log rotation, and agent death (re-adopt or lost).
#include "hwl/jobs/supervisor.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <thread>

#include "hwl/files.hpp"
#include "hwl/job_user_bin.hpp"
#include "hwl/jobs/proc.hpp"

namespace hwl::jobs {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::vector<std::string> kGpus = {"GPU-aaaa", "GPU-bbbb"};

uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

bool processGone(pid_t pid, uint64_t start_time) { return !sameLiveProcess(pid, start_time); }

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hwl-jobs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);
    jobs_root_ = dir_ / "work";
    fs::create_directories(jobs_root_);
    ::chmod(jobs_root_.c_str(), 01777);  // the job user makes its working dirs here
    job_user_ = ::geteuid() == 0 ? "nobody" : "";
    // The driver (a stand-in agent in another process) contains its jobs the same way.
    const char* names[] = {"auto", "cgroup-v2", "cgroup-v1", "subreaper"};
    ::setenv("HWL_TEST_CONTAINMENT", names[static_cast<int>(containment_)], 1);
    ::setenv("HWL_TEST_CGROUP_GROUP", cgroup_group_.c_str(), 1);
    openAll();
  }
  void TearDown() override {
    if (sup_) {
      // Jobs still running are killed and seen to the end, so their cgroups go too.
      for (const auto& job : sup_->list()) {
        if (isTerminal(job.state)) continue;
        (void)sup_->cancel(job.spec.id);
        if (job.pid > 0) ::kill(-job.pid, SIGKILL);
      }
      waitFor([&] {
        for (const auto& job : sup_->list()) {
          if (!isTerminal(job.state)) return false;
        }
        return true;
      });
    }
    sup_.reset();
    box_.reset();
    // Jobs whose records say they are still running (their supervisor was killed): kill whatever
    // is in their cgroups and remove those.
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(dir_ / "state" / "jobs", ec)) {
      auto text = files::readFile(d.path() / "job.json");
      if (!text) continue;
      auto info = JobInfo::fromJson(boost::json::parse(*text), jobs_root_);
      if (!info || info->cgroups.empty()) continue;
      JobProcesses procs{
          .kind = parseContainmentKind(info->containment).value_or(ContainmentKind::kSubreaper),
          .cgroups = info->cgroups};
      signalJob(procs, SIGKILL);
      removeJobCgroups(procs);
    }
    for (const auto& g : {"pids", "freezer", "unified"})
      ::rmdir((fs::path("/sys/fs/cgroup") / g / cgroup_group_).c_str());
    fs::remove_all(dir_);
  }

  SupervisorSettings settings() {
    SupervisorSettings s{.state_dir = dir_ / "state",
                         .jobs_root = jobs_root_,
                         .job_user = job_user_,
                         .log_max_bytes = log_max_bytes_,
                         .log_keep = 2,
                         .poll_interval = 50ms,
                         .ready_probe_timeout = 200ms};
    s.containment = containment_;
    s.cgroup_group = cgroup_group_;
    return s;
  }
  void openAll() {
    sup_.reset();
    box_.reset();
    auto box = outbox::Outbox::open({.dir = dir_ / "state" / "outbox", .host_id = "host-a"});
    ASSERT_TRUE(box) << box.error().toString();
    box_ = std::move(*box);
    auto sup = Supervisor::open(settings(), *box_);
    ASSERT_TRUE(sup) << sup.error().toString();
    sup_ = std::move(*sup);
  }

  JobSpec spec(boost::json::object o) {
    auto s = parseJobSpec(o, kGpus, jobs_root_);
    EXPECT_TRUE(s) << s.error().toString();
    return *s;
  }
  JobInfo submit(boost::json::object o) {
    auto info = sup_->submit(spec(std::move(o)));
    EXPECT_TRUE(info) << info.error().toString();
    return *info;
  }
  JobInfo waitState(const std::string& id, JobState state, std::chrono::milliseconds t = 10s) {
    EXPECT_TRUE(waitFor([&] { return sup_->get(id)->state == state; }, t))
        << "job " << id << " is " << stateName(sup_->get(id)->state) << ", wanted "
        << stateName(state) << " (" << sup_->get(id)->reason << ")";
    return *sup_->get(id);
  }
  std::vector<outbox::Entry> events(const std::string& id) {
    std::vector<outbox::Entry> out;
    for (auto& e : box_->read(0, SIZE_MAX)) {
      if (e.data.at("job_id").as_string() == id) out.push_back(std::move(e));
    }
    return out;
  }
  std::vector<std::string> eventTypes(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& e : events(id)) out.push_back(e.type);
    return out;
  }

  fs::path dir_;
  fs::path jobs_root_;
  std::string job_user_;
  uint64_t log_max_bytes_ = 1 << 20;
  ContainmentChoice containment_ = ContainmentChoice::kAuto;
  std::string cgroup_group_ = "hwl-test-" + std::to_string(::getpid());
  std::unique_ptr<outbox::Outbox> box_;
  std::unique_ptr<Supervisor> sup_;
};

TEST_F(SupervisorTest, InferenceServerBecomesReadyAndIsCancelled) {
  const uint16_t port = freePort();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/health";
  auto accepted = submit(
      {{"id", "srv"},
       {"command", {hwl::test_fixtures::jobUserCopy(HWL_TEST_HTTP_SERVER), std::to_string(port)}},
       {"gpus", {"GPU-bbbb", "GPU-aaaa"}},
       {"ready_url", url},
       {"ready_timeout_s", 10},
       {"grace_s", 5}});
  EXPECT_EQ(accepted.state, JobState::kAccepted);

  // Seen running before ready (the server binds after 300 ms), and the outbox has each
  // transition by the time the API shows it.
  const auto running = waitState("srv", JobState::kRunning);
  EXPECT_EQ(eventTypes("srv"), (std::vector<std::string>{"job.started"}));
  const auto ready = waitState("srv", JobState::kReady);
  EXPECT_EQ(eventTypes("srv"), (std::vector<std::string>{"job.started", "job.ready"}));
  EXPECT_EQ(ready.pid, running.pid);
  EXPECT_GE(ready.ready_ms, ready.started_ms);

  // Its own session and process group, the job user, the placed GPUs, stdin from /dev/null.
  EXPECT_EQ(::getpgid(ready.pid), ready.pid);
  EXPECT_EQ(::getsid(ready.pid), ready.pid);
  const auto log = sup_->logs("srv", 100);
  ASSERT_TRUE(log);
  EXPECT_NE(log->find("CUDA_VISIBLE_DEVICES=GPU-bbbb,GPU-aaaa\n"), std::string::npos) << *log;
  EXPECT_NE(log->find("ROCR_VISIBLE_DEVICES=GPU-bbbb,GPU-aaaa\n"), std::string::npos) << *log;
  EXPECT_NE(log->find("stdin_is_devnull=1"), std::string::npos) << *log;
  EXPECT_NE(log->find("cwd=" + (jobs_root_ / "srv").string() + "\n"), std::string::npos) << *log;
  const uid_t expected_uid =
      job_user_.empty() ? ::geteuid() : ::getpwnam(job_user_.c_str())->pw_uid;
  EXPECT_NE(log->find("uid=" + std::to_string(expected_uid) + " "), std::string::npos) << *log;
  // No capabilities survive into the job, whatever the agent holds.
  const auto status = files::readFile("/proc/" + std::to_string(ready.pid) + "/status");
  ASSERT_TRUE(status);
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    EXPECT_NE(status->find(std::string(set) + ":\t0000000000000000\n"), std::string::npos)
        << set << " in\n"
        << *status;
  }
  struct stat st {};
  ASSERT_EQ(::stat((jobs_root_ / "srv").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, expected_uid);

  auto during = sup_->cancel("srv");
  ASSERT_TRUE(during);
  const auto done = waitState("srv", JobState::kCancelled);
  EXPECT_EQ(done.signal, SIGTERM);
  EXPECT_FALSE(done.exit_code.has_value());
  EXPECT_TRUE(done.exit_status_known);
  EXPECT_GT(done.runtimeMs(), 0);
  EXPECT_TRUE(processGone(done.pid, done.proc_start_time));
  const auto evs = events("srv");
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[2].type, "job.cancelled");
  EXPECT_EQ(evs[2].data.at("signal").as_int64(), SIGTERM);
  EXPECT_EQ(evs[2].id, "host-a:" + std::to_string(evs[2].seq));
  EXPECT_EQ(evs[0].data.at("pid").as_int64(), done.pid);
}

// The processes of a running job, its leader and a child that left the job's session and
// process group (setsid), are the job's: jobProcesses() names them; they are gone once it ends.
TEST_F(SupervisorTest, JobProcessesAreTheJobsWholeTree) {
  submit({{"id", "tree"},
          {"command", {"sh", "-c", "setsid sleep 30 & echo child=$!; sleep 30"}},
          {"grace_s", 1}});
  const auto running = waitState("tree", JobState::kRunning);
  std::optional<pid_t> child;
  ASSERT_TRUE(waitFor([&] {
    const auto log = sup_->logs("tree", 10);
    const size_t at = log ? log->find("child=") : std::string::npos;
    if (at == std::string::npos) return false;
    child = static_cast<pid_t>(std::stol(log->substr(at + 6)));
    return true;
  }));
  ASSERT_TRUE(waitFor([&] { return ::getsid(*child) == *child; }));  // setsid ran
  ASSERT_TRUE(waitFor([&] { return sup_->jobProcesses().pids.count(*child) > 0; }))
      << "the setsid child is in the job's containment";
  const auto map = sup_->jobProcesses();
  EXPECT_EQ(map.leaders.at(running.pid), "tree");
  EXPECT_EQ(map.pids.at(running.pid), "tree");
  EXPECT_EQ(map.pids.at(*child), "tree");
  EXPECT_EQ(map.pids.count(::getpid()), 0U);
  ASSERT_TRUE(sup_->cancel("tree"));
  waitState("tree", JobState::kCancelled);
  EXPECT_TRUE(sup_->jobProcesses().pids.empty());
  EXPECT_TRUE(sup_->jobProcesses().leaders.empty());
}

TEST_F(SupervisorTest, CancelEscalatesToSigkillAfterGrace) {
  submit({{"id", "stubborn"},
          {"command", {hwl::test_fixtures::jobUserCopy(HWL_TEST_IGNORE_TERM)}},
          {"grace_s", 0.6}});
  waitState("stubborn", JobState::kRunning);
  ASSERT_TRUE(waitFor([&] { return sup_->logs("stubborn", 1)->find("ignoring") == 0; }));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(sup_->cancel("stubborn"));
  const auto done = waitState("stubborn", JobState::kCancelled);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 550ms);
  EXPECT_EQ(done.signal, SIGKILL);
  EXPECT_EQ(eventTypes("stubborn"), (std::vector<std::string>{"job.started", "job.cancelled"}));
}

TEST_F(SupervisorTest, MaxRuntimeIsEnforced) {
  submit({{"id", "long"}, {"command", {"sleep", "30"}}, {"max_runtime_s", 0.5}, {"grace_s", 2}});
  const auto done = waitState("long", JobState::kFailed, 5s);
  EXPECT_EQ(done.signal, SIGTERM);
  EXPECT_NE(done.reason.find("max_runtime_s"), std::string::npos);
  EXPECT_GE(done.runtimeMs(), 450);
  EXPECT_LT(done.runtimeMs(), 3000);
  EXPECT_EQ(eventTypes("long"), (std::vector<std::string>{"job.started", "job.failed"}));
}

TEST_F(SupervisorTest, ReadyTimeoutFailsTheJob) {
  const std::string url = "http://127.0.0.1:" + std::to_string(freePort()) + "/health";
  submit({{"id", "deaf"},
          {"command", {"sleep", "30"}},
          {"ready_url", url},
          {"ready_timeout_s", 0.5},
          {"grace_s", 1}});
  const auto done = waitState("deaf", JobState::kFailed, 5s);
  EXPECT_NE(done.reason.find("ready_url"), std::string::npos);
  EXPECT_EQ(done.ready_ms, 0);
}

TEST_F(SupervisorTest, ExitCodeAndLogTailAreRecorded) {
  submit({{"id", "batch"},
          {"command", {"sh", "-c", "echo first; echo to-stderr >&2; echo last; exit 3"}}});
  const auto done = waitState("batch", JobState::kExited);
  EXPECT_EQ(done.exit_code, 3);
  EXPECT_FALSE(done.signal.has_value());
  const auto evs = events("batch");
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[1].type, "job.exited");
  EXPECT_EQ(evs[1].data.at("exit_code").as_int64(), 3);
  EXPECT_EQ(evs[1].data.at("log_tail").as_string(), "first\nto-stderr\nlast\n");
  EXPECT_TRUE(evs[1].data.contains("runtime_ms"));
  EXPECT_EQ(*sup_->logs("batch", 1), "last\n");
}

TEST_F(SupervisorTest, JobThatCannotStartFails) {
  submit({{"id", "nope"}, {"command", {"/nonexistent/server"}}});
  submit({{"id", "nope2"}, {"command", {"no-such-command-anywhere"}}});
  submit({{"id", "nodir"}, {"command", {"true"}}, {"working_dir", "/nonexistent/dir"}});
  EXPECT_NE(waitState("nope", JobState::kFailed).reason.find("exec"), std::string::npos);
  EXPECT_NE(waitState("nope2", JobState::kFailed).reason.find("not found in PATH"),
            std::string::npos);
  EXPECT_NE(waitState("nodir", JobState::kFailed).reason.find("chdir"), std::string::npos);
  EXPECT_EQ(eventTypes("nope"), (std::vector<std::string>{"job.failed"}));
}

TEST_F(SupervisorTest, SubmitIsIdempotentById) {
  const auto first = submit({{"id", "same"}, {"command", {"sleep", "5"}}});
  const auto again = sup_->submit(spec({{"id", "same"}, {"command", {"sleep", "5"}}}));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->accepted_ms, first.accepted_ms);
  const auto other = sup_->submit(spec({{"id", "same"}, {"command", {"sleep", "6"}}}));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Code::kConflict);
  waitState("same", JobState::kRunning);
  EXPECT_EQ(sup_->list().size(), 1u);
  EXPECT_EQ(eventTypes("same"), (std::vector<std::string>{"job.started"}));
  ASSERT_TRUE(sup_->cancel("same"));
  waitState("same", JobState::kCancelled);
  EXPECT_EQ(sup_->get("missing").error().code, Code::kNotFound);
}

TEST_F(SupervisorTest, CancelBeforeStartRecordsCancelled) {
  sup_->stop();  // nothing starts while stopped
  const auto info = sup_->submit(spec({{"id", "early"}, {"command", {"sleep", "5"}}}));
  EXPECT_FALSE(info);  // a stopping supervisor accepts nothing
  openAll();
  submit({{"id", "early"}, {"command", {"sleep", "5"}}});
  ASSERT_TRUE(sup_->cancel("early"));
  const auto done = waitState("early", JobState::kCancelled);
  // Either it never started, or it started and was stopped: both end cancelled and recorded.
  EXPECT_EQ(eventTypes("early").back(), "job.cancelled");
  EXPECT_EQ(done.stop_reason, StopReason::kCancel);
}

TEST_F(SupervisorTest, RootAgentWithoutJobUserRefusesJobs) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  job_user_ = "";
  openAll();
  auto r = sup_->submit(spec({{"id", "asroot"}, {"command", {"id"}}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kPermissionDenied);
  EXPECT_TRUE(box_->read(0, 10).empty());
  EXPECT_FALSE(fs::exists(dir_ / "state" / "jobs" / "asroot"));
  job_user_ = "root";
  openAll();
  r = sup_->submit(spec({{"id", "asroot"}, {"command", {"id"}}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kPermissionDenied);
}

TEST_F(SupervisorTest, LogsRotateWhileTheJobRuns) {
  log_max_bytes_ = 4096;
  openAll();
  submit({{"id", "chatty"},
          {"command",
           {"sh", "-c",
            "i=0; while [ $i -lt 400 ]; do echo \"line $i padding padding padding\"; "
            "i=$((i+1)); [ $((i % 40)) = 0 ] && sleep 0.1; done; echo done; sleep 0.3"}}});
  const auto done = waitState("chatty", JobState::kExited);
  const fs::path jd = dir_ / "state" / "jobs" / "chatty";
  EXPECT_TRUE(fs::exists(jd / "job.log.1"));
  EXPECT_FALSE(fs::exists(jd / "job.log.3"));
  EXPECT_LE(fs::file_size(jd / "job.log"), 2u * 4096);
  EXPECT_GT(done.log_base, 0u);
  EXPECT_EQ(*sup_->logs("chatty", 1), "done\n");
  // Following from 0 ends at the end of the stream and never goes backwards.
  uint64_t offset = 0;
  for (int i = 0; i < 1000; ++i) {
    auto chunk = sup_->readLog("chatty", offset, 1024);
    ASSERT_TRUE(chunk);
    ASSERT_GE(chunk->next_offset, offset);
    if (chunk->next_offset == offset) break;
    offset = chunk->next_offset;
  }
  EXPECT_EQ(offset, done.log_base + fs::file_size(jd / "job.log"));
}

uint64_t dirBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      total += static_cast<uint64_t>(st.st_size);
  }
  return total;
}

uint64_t selfRssBytes() {
  auto status = files::readFile("/proc/self/status");
  if (!status) return 0;
  const auto at = status->find("VmRSS:");
  return at == std::string::npos ? 0 : std::stoull(status->substr(at + 6)) * 1024;
}

// 300 MB written as fast as the job can, with 1 MiB × 2 kept: the log directory stays within
// (keep + 1) × max plus a pipe buffer the whole time, the supervisor's memory does not grow with
// the log, another job's max_runtime is still enforced on time, and log_tail stays small.
TEST_F(SupervisorTest, LogsStayBoundedWhileAJobWritesFast) {
  const uint64_t rss_before = selfRssBytes();
  submit({{"id", "flood"},
          {"command", {"sh", "-c", "head -c 300000000 /dev/zero | tr '\\0' x; echo; echo end"}}});
  submit({{"id", "timed"}, {"command", {"sleep", "30"}}, {"max_runtime_s", 1}, {"grace_s", 1}});
  const fs::path jd = dir_ / "state" / "jobs" / "flood";
  uint64_t peak = 0;
  int samples = 0;
  std::optional<JobInfo> timed;
  for (;;) {
    peak = std::max(peak, dirBytes(jd));
    ++samples;
    auto t = sup_->get("timed");
    if (!timed && t && isTerminal(t->state)) timed = *t;
    if (isTerminal(sup_->get("flood")->state) && timed) break;
    ASSERT_LT(samples, 20000) << "the flood job never ended";
    std::this_thread::sleep_for(2ms);
  }
  const auto done = *sup_->get("flood");
  ASSERT_EQ(done.state, JobState::kExited) << done.reason;
  EXPECT_EQ(done.exit_code, 0);
  EXPECT_LE(peak, 3u * (1 << 20) + 65536 + 4096)
      << "peak log dir bytes over " << samples << " samples";
  EXPECT_GT(samples, 10);
  EXPECT_FALSE(fs::exists(jd / "job.log.3"));
  // Nothing lost: the stream offsets add up to everything written (300000000 + "\nend\n").
  EXPECT_EQ(done.log_base + fs::file_size(jd / "job.log"), 300000005u);
  EXPECT_EQ(*sup_->logs("flood", 1), "end\n");
  // The other job was stopped on time while the flood ran.
  EXPECT_EQ(timed->state, JobState::kFailed);
  EXPECT_LT(timed->runtimeMs(), 3000);
  const auto evs = events("flood");
  ASSERT_EQ(evs.size(), 2u);
  const std::string tail(evs[1].data.at("log_tail").as_string());
  EXPECT_LE(tail.size(), 4096u);
  EXPECT_GT(tail.size(), 1000u);
  EXPECT_EQ(tail.substr(tail.size() - 4), "end\n");
  // A 300 MB "line" read back through the API costs at most the tail cap.
  EXPECT_LE(sup_->logs("flood", 5)->size(), size_t{1} << 20);
  EXPECT_LT(selfRssBytes(), rss_before + (64u << 20));
}

// Runs the supervisor in a separate process (standing in for the agent), returns pid + job.
struct Driver {
  pid_t driver = 0;
  pid_t job_pid = 0;
  uint64_t start_time = 0;
};

Driver startDriver(const fs::path& state, const fs::path& jobs_root, const std::string& user,
                   const std::string& id, std::vector<std::string> wrapper,
                   std::vector<std::string> cmd);
Driver startDriver(const fs::path& state, const fs::path& jobs_root, const std::string& user,
                   const std::string& id, std::vector<std::string> cmd) {
  return startDriver(state, jobs_root, user, id, {}, std::move(cmd));
}

Driver startDriver(const fs::path& state, const fs::path& jobs_root, const std::string& user,
                   const std::string& id, std::vector<std::string> wrapper,
                   std::vector<std::string> cmd) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  std::vector<std::string> args = std::move(wrapper);
  for (const auto& a :
       {std::string(HWL_TEST_SUPERVISOR_DRIVER), state.string(), jobs_root.string(), user, id}) {
    args.push_back(a);
  }
  args.insert(args.end(), cmd.begin(), cmd.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Driver d;
  d.driver = ::fork();
  if (d.driver == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string line;
  char c = 0;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(fds[0]);
  unsigned long long st = 0;
  int pid = 0;
  EXPECT_EQ(std::sscanf(line.c_str(), "%d %llu", &pid, &st), 2) << "driver said: " << line;
  d.job_pid = pid;
  d.start_time = st;
  return d;
}

void killDriver(const Driver& d) {
  ::kill(d.driver, SIGKILL);
  int status = 0;
  ::waitpid(d.driver, &status, 0);
}

TEST_F(SupervisorTest, JobIsReadoptedAfterTheAgentIsKilled) {
  sup_.reset();
  box_.reset();
  const auto d = startDriver(dir_ / "state", jobs_root_, job_user_, "survivor",
                             {hwl::test_fixtures::jobUserCopy(HWL_TEST_IGNORE_TERM)});
  ASSERT_GT(d.job_pid, 0);
  killDriver(d);
  ASSERT_TRUE(sameLiveProcess(d.job_pid, d.start_time)) << "the job must outlive the agent";

  openAll();
  const auto info = sup_->get("survivor");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::kRunning);
  EXPECT_TRUE(info->adopted);
  EXPECT_EQ(info->pid, d.job_pid);
  EXPECT_EQ(info->proc_start_time, d.start_time);
  EXPECT_EQ(eventTypes("survivor"), (std::vector<std::string>{"job.started"}));

  // Cancel still reaches it (SIGTERM ignored, SIGKILL after grace); its exit status is unknown
  // because it is not our child any more.
  ASSERT_TRUE(sup_->cancel("survivor"));
  const auto done = waitState("survivor", JobState::kCancelled, 15s);
  EXPECT_TRUE(processGone(d.job_pid, d.start_time));
  EXPECT_EQ(eventTypes("survivor"), (std::vector<std::string>{"job.started", "job.cancelled"}));
  EXPECT_FALSE(done.exit_status_known);
  EXPECT_FALSE(done.signal.has_value());
}

TEST_F(SupervisorTest, ReadoptedJobExitIsRecordedHonestly) {
  sup_.reset();
  box_.reset();
  const auto d =
      startDriver(dir_ / "state", jobs_root_, job_user_, "short", {"sh", "-c", "sleep 1; exit 4"});
  killDriver(d);
  openAll();
  EXPECT_TRUE(sup_->get("short")->adopted);
  const auto done = waitState("short", JobState::kExited);
  EXPECT_FALSE(done.exit_status_known);
  EXPECT_FALSE(done.exit_code.has_value());
  EXPECT_NE(done.reason.find("unknown"), std::string::npos);
  const auto evs = events("short");
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_FALSE(evs[1].data.at("exit_status_known").as_bool());
  EXPECT_TRUE(evs[1].data.at("exit_code").is_null());
}

TEST_F(SupervisorTest, JobThatDiedWhileNoAgentRanIsLost) {
  sup_.reset();
  box_.reset();
  const auto d = startDriver(dir_ / "state", jobs_root_, job_user_, "victim", {"sleep", "30"});
  killDriver(d);
  ASSERT_EQ(::kill(d.job_pid, SIGKILL), 0);
  ASSERT_TRUE(waitFor([&] { return processGone(d.job_pid, d.start_time); }));
  openAll();
  const auto info = sup_->get("victim");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::kLost);
  EXPECT_EQ(eventTypes("victim"), (std::vector<std::string>{"job.started", "job.lost"}));
  // A second restart records nothing new.
  openAll();
  EXPECT_EQ(eventTypes("victim"), (std::vector<std::string>{"job.started", "job.lost"}));
}

// The production setup: the agent is an unprivileged user holding only CAP_SETUID, CAP_SETGID and
// CAP_KILL as ambient capabilities, under no_new_privs (systemd's NoNewPrivileges=yes). Jobs must
// still start as the job user, and must carry no capability at all.
TEST_F(SupervisorTest, UnprivilegedAgentWithCapabilitiesStartsJobsAsTheJobUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to set up the agent user";
  if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv";
  const passwd* agent = ::getpwnam("daemon");  // getpwnam's buffer is shared: copy at once
  if (!agent) GTEST_SKIP() << "needs user daemon";
  const uid_t agent_uid = agent->pw_uid;
  const gid_t agent_gid = agent->pw_gid;
  const passwd* job = ::getpwnam("nobody");
  if (!job) GTEST_SKIP() << "needs user nobody";
  const uid_t job_uid = job->pw_uid;
  sup_.reset();
  box_.reset();
  const fs::path state = dir_ / "agent-state";
  fs::create_directories(state);
  ASSERT_EQ(::chown(state.c_str(), agent_uid, agent_gid), 0);
  ::chmod(state.c_str(), 0700);
  const auto d = startDriver(state, jobs_root_, "nobody", "capped",
                             {"/usr/bin/setpriv", "--reuid=daemon", "--regid=daemon",
                              "--clear-groups", "--inh-caps=-all,+setuid,+setgid,+kill",
                              "--ambient-caps=+setuid,+setgid,+kill", "--no-new-privs"},
                             {"sleep", "30"});
  ASSERT_GT(d.job_pid, 0);
  const auto status = files::readFile("/proc/" + std::to_string(d.job_pid) + "/status");
  killDriver(d);
  ::kill(-d.job_pid, SIGKILL);
  ASSERT_TRUE(status);
  const std::string uid = std::to_string(job_uid);
  EXPECT_NE(status->find("Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid + "\n"),
            std::string::npos)
      << *status;
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    EXPECT_NE(status->find(std::string(set) + ":\t0000000000000000\n"), std::string::npos)
        << set << " in\n"
        << *status;
  }
  EXPECT_NE(status->find("NoNewPrivs:\t1\n"), std::string::npos) << *status;
}

TEST_F(SupervisorTest, TransitionInOutboxButNotInJobFileIsReplayed) {
  submit({{"id", "replay"}, {"command", {"sleep", "0.3"}}});
  waitState("replay", JobState::kRunning);
  const fs::path record = dir_ / "state" / "jobs" / "replay" / "job.json";
  const auto running_record = files::readFile(record);
  ASSERT_TRUE(running_record);
  waitState("replay", JobState::kExited);
  // As if the agent died after appending job.exited but before writing job.json.
  sup_.reset();
  ASSERT_TRUE(files::writeFileAtomic(record, *running_record));
  openAll();
  EXPECT_EQ(sup_->get("replay")->state, JobState::kExited);
  EXPECT_EQ(sup_->get("replay")->exit_code, 0);
  EXPECT_EQ(eventTypes("replay"), (std::vector<std::string>{"job.started", "job.exited"}));
}

TEST_F(SupervisorTest, FullOutboxRefusesNewJobs) {
  sup_.reset();
  box_.reset();
  auto box = outbox::Outbox::open(
      {.dir = dir_ / "state" / "outbox", .host_id = "host-a", .max_entries = 10});
  ASSERT_TRUE(box);
  box_ = std::move(*box);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(box_->append("probe.gpu_appeared", {}));
  auto sup = Supervisor::open(settings(), *box_);
  ASSERT_TRUE(sup);
  sup_ = std::move(*sup);
  auto r = sup_->submit(spec({{"id", "nospace"}, {"command", {"true"}}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kResourceExhausted);
  ASSERT_TRUE(box_->acknowledge(7));
  EXPECT_TRUE(sup_->submit(spec({{"id", "nospace"}, {"command", {"true"}}})));
}

// Processes whose argv holds `marker` (an argument no other process uses), zombies excluded.
int countProcesses(const std::string& marker) {
  int n = 0;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/proc", ec)) {
    const auto name = d.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    auto cmdline = files::readFile(d.path() / "cmdline");
    if (!cmdline) continue;
    size_t pos = 0;
    while (pos < cmdline->size()) {
      const size_t end = cmdline->find('\0', pos);
      const std::string arg = cmdline->substr(pos, end == std::string::npos ? end : end - pos);
      if (arg == marker) {
        ++n;
        break;
      }
      if (end == std::string::npos) break;
      pos = end + 1;
    }
  }
  return n;
}

// Directories named `group` anywhere in the cgroup hierarchies (a few levels down).
std::vector<fs::path> cgroupDirsNamed(const std::string& group) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const char* h : {"pids", "freezer", "memory", "unified"}) {
    fs::recursive_directory_iterator it(fs::path("/sys/fs/cgroup") / h, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      if (it.depth() >= 3) it.disable_recursion_pending();
      if (it->is_directory(ec) && it->path().filename() == group) out.push_back(it->path());
    }
  }
  return out;
}

bool writableDir(const char* path) { return ::access(path, W_OK) == 0; }

std::string marker(const char* base) {
  static int n = 0;
  return std::string(base) + "." + std::to_string(::getpid() % 100000) + std::to_string(++n);
}

// The same job lifecycle under each containment; each is forced, so all are exercised here.
class ContainmentTest : public SupervisorTest,
                        public ::testing::WithParamInterface<ContainmentChoice> {
 protected:
  void SetUp() override {
    containment_ = GetParam();
    if (containment_ != ContainmentChoice::kSubreaper && ::geteuid() != 0)
      GTEST_SKIP() << "cgroups need root here";
    if (containment_ == ContainmentChoice::kCgroupV2 && !writableDir("/sys/fs/cgroup/unified") &&
        !writableDir("/sys/fs/cgroup/cgroup.procs"))
      GTEST_SKIP() << "no writable cgroup2 hierarchy";
    if (containment_ == ContainmentChoice::kCgroupV1 && !writableDir("/sys/fs/cgroup/pids"))
      GTEST_SKIP() << "no writable cgroup v1 pids hierarchy";
    SupervisorTest::SetUp();
  }
  void TearDown() override {
    SupervisorTest::TearDown();
    // Nothing is left in the cgroup file system once the supervisor is gone.
    EXPECT_EQ(cgroupDirsNamed(cgroup_group_), std::vector<fs::path>{});
  }
  void expectKind() {
    const auto kind = sup_->containment().kind();
    switch (GetParam()) {
      case ContainmentChoice::kCgroupV2:
        EXPECT_EQ(kind, ContainmentKind::kCgroupV2);
        break;
      case ContainmentChoice::kCgroupV1:
        EXPECT_EQ(kind, ContainmentKind::kCgroupV1);
        break;
      default:
        EXPECT_EQ(kind, ContainmentKind::kSubreaper);
    }
  }
};

TEST_P(ContainmentTest, SetsidGrandchildDiesWithACancelledJob) {
  expectKind();
  const std::string m = marker("777");
  submit({{"id", "escape"},
          {"command", {"sh", "-c", "setsid sleep " + m + " & sleep 600"}},
          {"grace_s", 2}});
  const auto running = waitState("escape", JobState::kRunning);
  ASSERT_TRUE(waitFor([&] { return countProcesses(m) == 1; })) << "the grandchild never ran";
  EXPECT_EQ(running.containment, containmentName(sup_->containment().kind()));
  ASSERT_TRUE(sup_->cancel("escape"));
  const auto done = waitState("escape", JobState::kCancelled);
  // Gone by the time the job is recorded ended, not some time later.
  EXPECT_EQ(countProcesses(m), 0) << "the setsid child outlived the cancelled job";
  EXPECT_EQ(done.signal, SIGTERM);
  for (const auto& cg : done.cgroups) EXPECT_FALSE(fs::exists(cg)) << cg;
}

TEST_P(ContainmentTest, SetsidGrandchildDiesWhenTheMainProcessExits) {
  const std::string m = marker("778");
  submit(
      {{"id", "leaver"}, {"command", {"sh", "-c", "setsid sleep " + m + " & sleep 0.5; exit 5"}}});
  waitState("leaver", JobState::kRunning);
  ASSERT_TRUE(waitFor([&] { return countProcesses(m) == 1; })) << "the grandchild never ran";
  const auto done = waitState("leaver", JobState::kExited);
  EXPECT_EQ(countProcesses(m), 0) << "the setsid child outlived its job";
  EXPECT_EQ(done.exit_code, 5);
  EXPECT_EQ(eventTypes("leaver"), (std::vector<std::string>{"job.started", "job.exited"}));
}

TEST_P(ContainmentTest, DoubleForkedDaemonDiesWithItsJob) {
  const std::string m = marker("779");
  // The daemon's parent exits at once, so it is re-parented (to the monitor) right away.
  submit({{"id", "daemon"},
          {"command", {"sh", "-c", "(setsid sh -c 'sleep " + m + " & exit 0' &) ; sleep 0.4"}}});
  ASSERT_TRUE(waitFor([&] { return countProcesses(m) == 1; })) << "the daemon never ran";
  waitState("daemon", JobState::kExited);
  EXPECT_EQ(countProcesses(m), 0);
}

TEST_P(ContainmentTest, ForkBombIsHeldToPidsMax) {
  const std::string m = marker("780");
  const boost::json::object bomb{
      {"id", "bomb"},
      {"command",
       // bash retries a fork that fails with EAGAIN, so the bomb keeps pushing at the limit.
       {"bash", "-c", "for i in $(seq 300); do sleep " + m + " & done; sleep 600"}},
      {"pids_max", 32},
      {"grace_s", 1}};
  if (!sup_->containment().enforcesPids()) {
    // Refused before anything is recorded, naming the field.
    auto r = sup_->submit(spec(bomb));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kFailedPrecondition);
    EXPECT_EQ(r.error().message.rfind("pids_max:", 0), 0u) << r.error().message;
    EXPECT_TRUE(box_->read(0, 10).empty());
    EXPECT_FALSE(sup_->get("bomb"));
    return;
  }
  submit(bomb);
  waitState("bomb", JobState::kRunning);
  int peak = 0;
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    peak = std::max(peak, countProcesses(m));
    std::this_thread::sleep_for(20ms);
  }
  // The shell and its sleeps share the 32.
  EXPECT_LE(peak, 31);
  EXPECT_GE(peak, 20) << "the bomb never got going: the test would prove nothing";
  EXPECT_LT(countProcesses(m), 300);
  ASSERT_TRUE(sup_->cancel("bomb"));
  waitState("bomb", JobState::kCancelled);
  EXPECT_EQ(countProcesses(m), 0);
}

TEST_P(ContainmentTest, MemoryLimitEndsAJobThatAllocatesBeyondIt) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/python3";
  const boost::json::object hog{
      {"id", "hog"},
      {"command",
       {"/usr/bin/python3", "-c", "b = bytearray(300 * 1024 * 1024); print('survived')"}},
      {"memory_max_bytes", 64 << 20}};
  if (!sup_->containment().enforcesMemory()) {
    auto r = sup_->submit(spec(hog));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kFailedPrecondition);
    EXPECT_EQ(r.error().message.rfind("memory_max_bytes:", 0), 0u) << r.error().message;
    EXPECT_TRUE(box_->read(0, 10).empty());
    return;
  }
  submit(hog);
  const auto done = waitState("hog", JobState::kFailed, 20s);
  EXPECT_EQ(done.signal, SIGKILL);
  EXPECT_NE(done.reason.find("memory_max_bytes"), std::string::npos) << done.reason;
  EXPECT_EQ(sup_->logs("hog", 10)->find("survived"), std::string::npos);
  EXPECT_EQ(eventTypes("hog"), (std::vector<std::string>{"job.started", "job.failed"}));
  // Within the limit the same program runs to the end.
  submit({{"id", "small"},
          {"command", {"/usr/bin/python3", "-c", "b = bytearray(8 * 1024 * 1024); print('ok')"}},
          {"memory_max_bytes", 64 << 20}});
  EXPECT_EQ(waitState("small", JobState::kExited, 20s).exit_code, 0);
}

TEST_P(ContainmentTest, ReadoptedJobIsStillContained) {
  sup_.reset();
  box_.reset();
  const std::string m = marker("781");
  const auto d = startDriver(dir_ / "state", jobs_root_, job_user_, "adopted",
                             {"sh", "-c", "setsid sleep " + m + " & exec sleep 600"});
  ASSERT_GT(d.job_pid, 0);
  ASSERT_TRUE(waitFor([&] { return countProcesses(m) == 1; }));
  killDriver(d);
  openAll();
  ASSERT_TRUE(sup_->get("adopted")->adopted);
  ASSERT_TRUE(sup_->cancel("adopted"));
  waitState("adopted", JobState::kCancelled, 15s);
  EXPECT_EQ(countProcesses(m), 0);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ContainmentTest,
                         ::testing::Values(ContainmentChoice::kCgroupV1,
                                           ContainmentChoice::kCgroupV2,
                                           ContainmentChoice::kSubreaper),
                         [](const auto& info) {
                           switch (info.param) {
                             case ContainmentChoice::kCgroupV1:
                               return std::string("CgroupV1");
                             case ContainmentChoice::kCgroupV2:
                               return std::string("CgroupV2");
                             default:
                               return std::string("Subreaper");
                           }
                         });

}  // namespace
}  // namespace hwl::jobs
