// The real agent under job output floods and escaping processes: logs stay within their bound
// while a job writes as fast as it can, the agent's memory does not follow the log, other jobs
// are still supervised on time, and a job's setsid children die with it under each containment.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <thread>

#include "agent_fixture.hpp"

namespace hwl::itest::agent {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string h100() { return "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string(); }

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

uint64_t rssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// Processes whose argv holds `marker`.
int countProcesses(const std::string& marker) {
  int n = 0;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/proc", ec)) {
    const auto name = d.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const std::string cmdline = readFileOrEmpty(d.path() / "cmdline");
    if (cmdline.find(std::string(1, '\0') + marker + '\0') != std::string::npos) ++n;
  }
  return n;
}

std::string state(const bj::object& job) { return std::string(job.at("state").as_string()); }

// --log-max-bytes 1048576 --log-keep 2 and a job writing 300 MB: the job's log directory never
// holds more than (keep + 1) × max plus a pipe buffer, sampled throughout; the agent's RSS stays
// flat; a 2 s max_runtime job submitted alongside is stopped on time; log_tail is at most 4 KiB.
TEST(AgentJobContainment, LogFloodStaysBoundedAndOtherJobsStaySupervised) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(),
              {.probe = h100(), .extra = {"--log-max-bytes", "1048576", "--log-keep", "2"}});
  agent.start();
  const uint64_t rss_start = rssBytes(agent.pid());
  ASSERT_GT(rss_start, 0U);
  ASSERT_EQ(agent
                .submit({{"id", "flood"},
                         {"command", bj::array{"sh", "-c",
                                               "head -c 300000000 /dev/zero | tr '\\0' x; "
                                               "echo; echo end"}}})
                .status,
            201);
  ASSERT_EQ(agent
                .submit({{"id", "timed"},
                         {"command", bj::array{"sleep", "60"}},
                         {"max_runtime_s", 2},
                         {"grace_s", 1}})
                .status,
            201);
  const fs::path dir = agent.stateDir() / "jobs" / "flood";
  uint64_t peak_disk = 0, peak_rss = 0;
  int samples = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    for (int i = 0; i < 20; ++i) {
      peak_disk = std::max(peak_disk, dirBytes(dir));
      peak_rss = std::max(peak_rss, rssBytes(agent.pid()));
      ++samples;
      std::this_thread::sleep_for(2ms);
    }
    const auto f = agent.job("flood");
    const auto t = agent.job("timed");
    if (state(f) == "exited" && state(t) != "running") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << bj::serialize(f) << bj::serialize(t);
  }
  EXPECT_LE(peak_disk, 3U * 1048576 + 65536 + 4096) << samples << " samples";
  EXPECT_LT(peak_rss, rss_start + (64U << 20)) << "RSS went from " << rss_start;
  const auto timed = agent.job("timed");
  EXPECT_EQ(state(timed), "failed") << bj::serialize(timed);
  EXPECT_LT(timed.at("runtime_ms").as_int64(), 4000) << bj::serialize(timed);
  const auto events = agent.jobEvents("flood");
  ASSERT_EQ(types(events), (std::vector<std::string>{"job.started", "job.exited"}));
  const std::string tail(events[1].at("data").at("log_tail").as_string());
  EXPECT_LE(tail.size(), 4096U);
  EXPECT_EQ(tail.substr(tail.size() - 4), "end\n");
  // The API still answers, and a tail of a 300 MB line is capped.
  auto logs = agent.get("/v1/jobs/flood/logs?tail=3");
  EXPECT_EQ(logs.status, 200);
  EXPECT_LE(logs.body.size(), (1U << 20) + 16);
  EXPECT_NE(logs.body.find("end"), std::string::npos);
}

class AgentContainment : public ::testing::TestWithParam<std::string> {};

TEST_P(AgentContainment, SetsidChildrenDieOnCancelAndOnExit) {
  if (::geteuid() != 0 && GetParam() != "subreaper") GTEST_SKIP() << "cgroups need root here";
  if (GetParam() == "cgroup-v1" && ::access("/sys/fs/cgroup/pids", W_OK) != 0)
    GTEST_SKIP() << "no writable cgroup v1 pids hierarchy";
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(), {.probe = h100(), .extra = {"--job-containment", GetParam()}});
  agent.start();
  const auto info = agent.get("/v1/info").obj();
  EXPECT_EQ(info.at("job_containment").at("kind"), bj::value(GetParam())) << bj::serialize(info);

  const std::string m1 = "777." + std::to_string(::getpid()) + "1";
  ASSERT_EQ(agent
                .submit({{"id", "escape"},
                         {"command", bj::array{"sh", "-c", "setsid sleep " + m1 + " & sleep 600"}},
                         {"grace_s", 2}})
                .status,
            201);
  agent.waitForState("escape", "running", 10s);
  ASSERT_TRUE(eventually([&] { return countProcesses(m1) == 1; }, 5s));
  ASSERT_EQ(agent.request("DELETE", "/v1/jobs/escape").status, 202);
  agent.waitForState("escape", "cancelled", 10s);
  EXPECT_EQ(countProcesses(m1), 0) << "the setsid child outlived the cancel";

  const std::string m2 = "777." + std::to_string(::getpid()) + "2";
  ASSERT_EQ(agent
                .submit({{"id", "leaver"},
                         {"command", bj::array{"sh", "-c", "setsid sleep " + m2 + " & sleep 0.5"}}})
                .status,
            201);
  ASSERT_TRUE(eventually([&] { return countProcesses(m2) == 1; }, 5s));
  agent.waitForState("leaver", "exited", 10s);
  EXPECT_EQ(countProcesses(m2), 0) << "the setsid child outlived its job";

  // A limit this containment cannot enforce is refused before anything is recorded.
  const bool pids = info.at("job_containment").at("pids_limit").as_bool();
  const size_t before = agent.outbox().size();
  auto r = agent.submit({{"id", "bomb"}, {"command", bj::array{"true"}}, {"pids_max", 16}});
  if (pids) {
    EXPECT_EQ(r.status, 201) << r.body;
    agent.waitForState("bomb", "exited", 10s);
  } else {
    EXPECT_EQ(r.status, 412) << r.body;
    EXPECT_NE(r.body.find("pids_max"), std::string::npos) << r.body;
    EXPECT_EQ(agent.outbox().size(), before);
    EXPECT_EQ(agent.get("/v1/jobs/bomb").status, 404);
  }
  EXPECT_TRUE(agent.stop().success());
  // A stopped agent leaves no cgroup behind once its jobs are gone.
  EXPECT_EQ(cgroupDirsNamed(cgroupGroupOf(agent.stateDir())), std::vector<fs::path>{});
}

INSTANTIATE_TEST_SUITE_P(Kinds, AgentContainment, ::testing::Values("cgroup-v1", "subreaper"),
                         [](const auto& info) {
                           std::string n = info.param;
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

}  // namespace
}  // namespace hwl::itest::agent
