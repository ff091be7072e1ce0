// Jobs on an agentless host end to end: the real hwledger-server, a real OpenSSH sshd on loopback
// as the host (this machine, so its processes can be checked directly), enrolled with POST
// /v1/hosts/ssh; a fake nvidia-smi on the sessions' PATH replays a recorded H100 so the host has
// a GPU to place on. Jobs are submitted, followed, cancelled through the API and the CLI; the
// server is SIGKILLed while they run and restarted. The job root is in the test's temp dir (the
// sshd's user is the current user, whose HOME is not touched).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "server_fixture.hpp"
#include "sshd_fixture.hpp"

namespace hwl::itest {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string str(const bj::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return f();
}

class SshJobs : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = sshdUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    sshd_ = std::make_unique<SshdFixture>(SshdOptions{.remote_bin = true});
    sshd_->addRemoteTool("nvidia-smi",
                         fs::path(HWL_FIXTURES_DIR) / "telemetry/nvidia-h100-query-gpu.csv");
    sshd_->start();
    jobs_root_ = tmp_ / "jobs";
    config_ = tmp_ / "server.json";
    writeConfig(20'000);
    server_ = std::make_unique<LedgerServer>(tmp_.path(), "srv");
    server_->init();
    startServer();
    auto h = server_->post(
        "/v1/hosts/ssh",
        bj::serialize(bj::object{{"address", "127.0.0.1:" + std::to_string(sshd_->port())},
                                 {"user", sshd_->user()},
                                 {"key_file", sshd_->clientKey().string()},
                                 {"fingerprint", sshd_->hostKeyFingerprint()},
                                 {"name", "ssh-gpu"}}));
    ASSERT_EQ(h.status, 201) << h.body << h.err;
    host_ = str(h.obj().at("host_id"));
    ASSERT_FALSE(host_.empty()) << h.body;
  }

  void TearDown() override {
    // Whatever a failed test left running on the "host".
    std::error_code ec;
    if (fs::exists(jobs_root_, ec))
      for (const auto& d : fs::directory_iterator(jobs_root_, ec)) {
        std::string pid = readFile(d.path() / "pid");
        if (!pid.empty() && std::stol(pid) > 1)
          ::kill(-static_cast<pid_t>(std::stol(pid)), SIGKILL);
      }
  }

  void writeConfig(int64_t command_timeout_ms) {
    writeFile(config_, bj::serialize(bj::object{{"ssh_job_root", jobs_root_.string()},
                                                {"ssh_poll_interval_ms", 2000},
                                                {"ssh_key_dir", sshd_->dir().string()},
                                                {"ssh_job_interval_ms", 250},
                                                {"ssh_command_timeout_ms", command_timeout_ms}}));
  }
  void startServer() { server_->start({"--config", config_.string()}); }

  // The host's `sh` runs `script` first for a launch while `flag` exists (then the launch as it
  // came, unless the script exits).
  void holdLaunches(const fs::path& flag, const std::string& script) {
    const fs::path fake_sh = sshd_->dir() / "bin" / "sh";
    writeFile(fake_sh, "#!/bin/sh\nif [ \"$3\" = hwl-launch ] && [ -f '" + flag.string() +
                           "' ]; then " + script + "; fi\nexec /bin/sh \"$@\"\n");
    fs::permissions(fake_sh, fs::perms::owner_all);
  }

  // POST /v1/jobs on the SSH host, retried while the host is not placeable yet (its first poll).
  std::string submit(bj::object body) {
    body["host"] = host_;
    Http h;
    eventually(
        [&] {
          h = server_->post("/v1/jobs", bj::serialize(body));
          return h.status != 409;
        },
        30s);
    EXPECT_EQ(h.status, 201) << h.body;
    if (h.status != 201) return "";
    auto o = h.obj();
    EXPECT_EQ(str(o.at("host")), host_);
    return str(o.at("id"));
  }

  bj::object job(const std::string& id) {
    auto h = server_->get("/v1/jobs/" + id);
    return h.status == 200 ? h.obj() : bj::object{};
  }
  std::string state(const std::string& id) {
    auto j = job(id);
    return j.contains("state") ? str(j.at("state")) : "";
  }
  bool waitState(const std::string& id, const std::string& want,
                 std::chrono::milliseconds limit = 30s) {
    return eventually([&] { return state(id) == want; }, limit);
  }

  // The job's events: each type with how many times it is there; every id once.
  std::map<std::string, int> eventTypes(const std::string& id) {
    std::map<std::string, int> types;
    std::map<std::string, int> ids;
    for (const auto& e : server_->allEvents("&stream=job/" + id)) {
      ++types[str(e.at("type"))];
      ++ids[str(e.at("id"))];
    }
    for (const auto& [eid, n] : ids) EXPECT_EQ(n, 1) << eid;
    return types;
  }

  bj::object eventData(const std::string& id, const std::string& type) {
    for (const auto& e : server_->allEvents("&stream=job/" + id))
      if (str(e.at("type")) == type) {
        EXPECT_EQ(str(e.at("actor")), "system");
        return e.at("data").as_object();
      }
    return {};
  }

  int64_t jobPid(const std::string& id) {
    int64_t pid = 0;
    eventually(
        [&] {
          std::string p = readFile(jobs_root_ / id / "pid");
          if (!p.empty()) pid = std::stol(p);
          return pid > 0;
        },
        20s);
    return pid;
  }

  // `pgrep -g PGID`: exit 0 when some process is in the group, 1 when none is.
  static int pgrepGroup(int64_t pgid) { return run({"pgrep", "-g", std::to_string(pgid)}).code(); }

  TempDir tmp_{"hwl-sshjobs"};
  fs::path jobs_root_;
  fs::path config_;
  std::unique_ptr<SshdFixture> sshd_;
  std::unique_ptr<LedgerServer> server_;
  std::string host_;
};

TEST_F(SshJobs, RunsOnTheHostItsLogStreamsAndEachStateIsRecordedOnce) {
  const std::string id = submit(
      {{"name", "hello"},
       {"gpus", 1},
       {"command", bj::array{"sh", "-c",
                             "echo hello on $CUDA_VISIBLE_DEVICES; for i in 1 2 3 4 5 6; do echo "
                             "tick $i; sleep 0.5; done; echo done"}}});
  ASSERT_FALSE(id.empty());
  // Followed with the CLI while it runs: the first lines arrive before the job ends, and the
  // stream ends with the job.
  Process follow({cliBin(), "jobs", "logs", id, "--follow"},
                 {.env = server_->cliEnv(server_->adminToken()),
                  .stdout_file = tmp_ / "follow.out",
                  .stderr_file = tmp_ / "follow.err"});
  ASSERT_TRUE(follow.waitForOutput("tick 1", 20s)) << follow.out() << follow.err();
  EXPECT_EQ(follow.out().find("done"), std::string::npos) << "not streamed: " << follow.out();
  auto st = follow.wait(30s);
  ASSERT_TRUE(st.has_value()) << "the followed log did not end with the job";
  EXPECT_TRUE(st->success()) << st->describe() << follow.err();
  EXPECT_NE(follow.out().find("hello on GPU-00000000-0000-0000-0000-000000000000"),
            std::string::npos)
      << follow.out();
  EXPECT_NE(follow.out().find("done"), std::string::npos) << follow.out();

  ASSERT_TRUE(waitState(id, "exited")) << bj::serialize(job(id));
  auto j = job(id);
  EXPECT_EQ(j.at("exit_code"), 0);
  EXPECT_TRUE(j.at("started_ms").is_int64());
  auto types = eventTypes(id);
  EXPECT_EQ(types,
            (std::map<std::string, int>{
                {"job.submitted", 1}, {"job.placed", 1}, {"job.started", 1}, {"job.exited", 1}}));
  auto exited = eventData(id, "job.exited");
  EXPECT_EQ(str(exited.at("host_id")), host_);
  EXPECT_NE(str(exited.at("log_tail")).find("tick 6\ndone\n"), std::string::npos);

  // The log afterwards, from the API: its last lines.
  auto logs = server_->get("/v1/jobs/" + id + "/logs?tail=2");
  EXPECT_EQ(logs.status, 200);
  EXPECT_EQ(logs.body, "tick 6\ndone\n");
  // The job's directory on the host is where the server was told, private to the user.
  EXPECT_TRUE(fs::exists(jobs_root_ / id / "exit"));
  EXPECT_EQ(fs::status(jobs_root_ / id).permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST_F(SshJobs, AReaderThatLeavesAFollowedLogLeavesNoTailBehind) {
  const std::string id =
      submit({{"command", bj::array{"sh", "-c", "while :; do echo tick; sleep 0.3; done"}}});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(waitState(id, "running"));
  const std::string log = (jobs_root_ / id / "log").string();
  auto tails = [&] { return run({"pgrep", "-f", "tail .*" + log}).code(); };
  // curl leaves after 2 s, in the middle of the stream.
  auto h = server_->request("GET", "/v1/jobs/" + id + "/logs?follow=1&tail=1",
                            server_->adminToken(), {}, {"--max-time", "2"});
  EXPECT_EQ(h.curl_exit, 28) << h.err;  // the timeout: the stream was still going
  EXPECT_NE(h.body.find("tick"), std::string::npos) << h.body;
  // The server closes the channel; the host's tail ends at the job's next line.
  EXPECT_TRUE(eventually([&] { return tails() == 1; }, 10s)) << "a tail of " << log << " remains";
  auto del = server_->request("DELETE", "/v1/jobs/" + id, server_->adminToken());
  EXPECT_EQ(del.status, 202);
  EXPECT_TRUE(waitState(id, "cancelled"));
}

TEST_F(SshJobs, AFailingJobKeepsItsExitCodeAndLogTail) {
  const std::string id =
      submit({{"command", bj::array{"sh", "-c", "echo something broke >&2; exit 3"}}});
  ASSERT_FALSE(id.empty());
  // As on agent hosts: a job that ran to its end exited, with its code.
  ASSERT_TRUE(waitState(id, "exited")) << bj::serialize(job(id));
  auto j = job(id);
  EXPECT_EQ(j.at("exit_code"), 3);
  auto types = eventTypes(id);
  EXPECT_EQ(types["job.started"], 1);
  EXPECT_EQ(types["job.exited"], 1);
  EXPECT_EQ(str(eventData(id, "job.exited").at("log_tail")), "something broke\n");
}

TEST_F(SshJobs, ReadyThenCancelledTheWholeProcessGroupIsGone) {
  const uint16_t port = freeLoopbackPort();
  // The job's group: a shell that becomes the web server, a background sleep, and a child that
  // ignores SIGTERM (only the SIGKILL of what the job leaves behind ends it).
  const std::string id = submit(
      {{"gpus", 1},
       {"port", port},
       {"ready_path", "/health"},
       {"command", bj::array{"sh", "-c", "\"$2\" & sleep 300 & exec \"$0\" \"$1\"",
                             HWL_TEST_HTTP_SERVER, std::to_string(port), HWL_TEST_IGNORE_TERM}}});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(waitState(id, "ready")) << bj::serialize(job(id));
  const int64_t pgid = jobPid(id);
  ASSERT_GT(pgid, 1);
  EXPECT_EQ(pgrepGroup(pgid), 0) << "the job's group should be running";
  // Another job cannot have the one GPU while this one holds it.
  auto busy = server_->post(
      "/v1/jobs",
      bj::serialize(bj::object{{"host", host_}, {"gpus", 1}, {"command", bj::array{"true"}}}));
  EXPECT_EQ(busy.status, 409) << busy.body;

  auto del = server_->request("DELETE", "/v1/jobs/" + id, server_->adminToken());
  ASSERT_EQ(del.status, 202) << del.body;
  EXPECT_EQ(str(del.obj().at("state")), "cancelling");
  ASSERT_TRUE(waitState(id, "cancelled")) << bj::serialize(job(id));
  // Recorded once the whole group is gone: nothing of it is left on the host.
  EXPECT_EQ(pgrepGroup(pgid), 1) << "processes of the cancelled job's group remain";
  EXPECT_NE(::kill(-static_cast<pid_t>(pgid), 0), 0);

  auto types = eventTypes(id);
  EXPECT_EQ(types["job.started"], 1);
  EXPECT_EQ(types["job.ready"], 1);
  EXPECT_EQ(types["job.cancelled"], 1);
  EXPECT_EQ(eventData(id, "job.cancelled").at("signal"), SIGTERM);
  // A second cancel: the job has ended.
  EXPECT_EQ(server_->request("DELETE", "/v1/jobs/" + id, server_->adminToken()).status, 409);
  // Its GPU is free again.
  const std::string next = submit({{"gpus", 1}, {"command", bj::array{"true"}}});
  EXPECT_FALSE(next.empty());
  EXPECT_TRUE(waitState(next, "exited"));
}

TEST_F(SshJobs, ServerKilledWhileJobsRunTheyFinishAndEachEventIsRecordedOnce) {
  // One job ends while the server is down, the other after it is back.
  const std::string shortjob =
      submit({{"command", bj::array{"sh", "-c", "echo short; sleep 2; echo short done"}}});
  const std::string longjob = submit(
      {{"gpus", 1}, {"command", bj::array{"sh", "-c", "echo long; sleep 8; echo long done"}}});
  ASSERT_FALSE(shortjob.empty());
  ASSERT_FALSE(longjob.empty());
  ASSERT_TRUE(waitState(shortjob, "running"));
  ASSERT_TRUE(waitState(longjob, "running"));
  server_->crash();
  EXPECT_TRUE(eventually([&] { return fs::exists(jobs_root_ / shortjob / "exit"); }, 15s));
  EXPECT_FALSE(fs::exists(jobs_root_ / longjob / "exit")) << "the long job ended too soon";
  startServer();
  ASSERT_TRUE(waitState(shortjob, "exited")) << bj::serialize(job(shortjob));
  ASSERT_TRUE(waitState(longjob, "exited", 40s)) << bj::serialize(job(longjob));
  for (const auto& id : {shortjob, longjob}) {
    auto types = eventTypes(id);
    EXPECT_EQ(types,
              (std::map<std::string, int>{
                  {"job.submitted", 1}, {"job.placed", 1}, {"job.started", 1}, {"job.exited", 1}}))
        << id;
  }
  // Polled again and again after the end, by a server restarted once more: nothing new.
  const int64_t head = server_->eventCount();
  server_->crash();
  startServer();
  std::this_thread::sleep_for(3s);
  for (const auto& e : server_->allEvents("&after=" + std::to_string(head)))
    EXPECT_NE(str(e.at("type")).rfind("job.", 0), 0u) << bj::serialize(e);
  auto verify = server_->get("/v1/ledger/verify");
  EXPECT_EQ(verify.status, 200);
  EXPECT_EQ(verify.obj().at("ok"), true) << verify.body;
}

TEST_F(SshJobs, AJobLeftPlacedByAKilledServerIsLaunchedAfterTheRestart) {
  // The host can take jobs (its first poll is in).
  const std::string first = submit({{"gpus", 1}, {"command", bj::array{"true"}}});
  ASSERT_TRUE(waitState(first, "exited"));
  // The host's `sh` holds the launch (and then drops it) while a flag file exists: the server is
  // killed with the job placed in the ledger and nothing started on the host.
  const fs::path hold = tmp_ / "hold-launch";
  writeFile(hold, "");
  holdLaunches(hold, "sleep 10; exit 1");
  Process submitting(
      {"curl", "-sS", "--cacert", server_->caCert().string(), "-H",
       "Authorization: Bearer " + server_->adminToken(), "-H", "Content-Type: application/json",
       "--data-binary",
       bj::serialize(bj::object{
           {"host", host_}, {"gpus", 1}, {"command", bj::array{"sh", "-c", "echo recovered"}}}),
       server_->url() + "/v1/jobs"},
      {.stdout_file = tmp_ / "submit.out", .stderr_file = tmp_ / "submit.err"});
  std::string id;
  ASSERT_TRUE(eventually(
      [&] {
        auto jobs = server_->get("/v1/jobs");
        if (jobs.status != 200) return false;
        const auto o = jobs.obj();
        for (const auto& j : o.at("jobs").as_array())
          if (str(j.at("state")) == "placed") id = str(j.at("id"));
        return !id.empty();
      },
      20s))
      << submitting.out() << submitting.err();
  server_->crash();
  EXPECT_FALSE(fs::exists(jobs_root_ / id)) << "the launch was meant to be held";
  fs::remove(hold);
  startServer();
  ASSERT_TRUE(waitState(id, "exited", 40s)) << bj::serialize(job(id));
  auto types = eventTypes(id);
  EXPECT_EQ(types,
            (std::map<std::string, int>{
                {"job.submitted", 1}, {"job.placed", 1}, {"job.started", 1}, {"job.exited", 1}}));
  EXPECT_EQ(str(eventData(id, "job.exited").at("log_tail")), "recovered\n");
}

TEST_F(SshJobs, ALaunchThatTimedOutButWentThroughIsReportedByTheHost) {
  const std::string first = submit({{"command", bj::array{"true"}}});
  ASSERT_TRUE(waitState(first, "exited"));
  // Commands time out after 2 s; the host's sh holds the launch for 4 s, then runs it.
  server_->stop();
  writeConfig(2000);
  startServer();
  const fs::path hold = tmp_ / "slow-launch";
  writeFile(hold, "");
  holdLaunches(hold, "sleep 4");
  Http h;
  eventually(
      [&] {
        h = server_->post("/v1/jobs", bj::serialize(bj::object{
                                          {"host", host_},
                                          {"command", bj::array{"sh", "-c", "echo late start"}}}));
        return h.status != 409;
      },
      30s);
  ASSERT_EQ(h.status, 502) << h.body;
  std::string id;
  {
    auto jobs = server_->get("/v1/jobs?host=" + host_);
    const auto o = jobs.obj();
    for (const auto& j : o.at("jobs").as_array())
      if (str(j.at("state")) == "dispatch_failed") id = str(j.at("id"));
  }
  ASSERT_FALSE(id.empty());
  // The host's report wins over the verdict: the job is followed to its end.
  ASSERT_TRUE(waitState(id, "exited", 30s)) << bj::serialize(job(id));
  EXPECT_EQ(eventTypes(id), (std::map<std::string, int>{{"job.submitted", 1},
                                                        {"job.placed", 1},
                                                        {"job.dispatch_failed", 1},
                                                        {"job.started", 1},
                                                        {"job.exited", 1}}));
  EXPECT_EQ(str(eventData(id, "job.exited").at("log_tail")), "late start\n");
}

}  // namespace
}  // namespace hwl::itest
