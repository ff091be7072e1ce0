// Start-up checks of the real binary: --version, --dev only on loopback, config file keys.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "agent_fixture.hpp"

namespace hwl::itest::agent {
namespace {

namespace bj = boost::json;

std::string h100Probe() {
  return "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string();
}

TEST(AgentStartup, VersionIsPrinted) {
  auto r = run({agentBin(), "--version"});
  EXPECT_TRUE(r.status.success()) << r.status.describe() << r.err;
  EXPECT_NE(r.out.find("0.1.0"), std::string::npos) << r.out;
}

TEST(AgentStartup, DevModeRefusesANonLoopbackListenAddress) {
  TempDir tmp("hwl-agent-it");
  ::chmod(tmp.path().c_str(),
          0755);  // the default jobs root beside the state dir is the job user's
  for (const std::string listen : {"0.0.0.0:0", "[::]:0", "192.0.2.10:0"}) {
    auto state = tmp / ("state-" + std::to_string(std::hash<std::string>{}(listen)));
    auto r = run({agentBin(), "run", "--dev", "--state-dir", state.string(), "--listen", listen,
                  "--probe", h100Probe(), "--job-user", "nobody"},
                 {.timeout = std::chrono::milliseconds(20'000)});
    EXPECT_FALSE(r.timed_out) << listen << ": the agent started serving";
    EXPECT_EQ(r.code(), 2) << listen << ": " << r.status.describe() << r.out << r.err;
    EXPECT_NE(r.err.find("loopback"), std::string::npos) << listen << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists(state / "listen.addr")) << listen;
  }
  // A loopback address is accepted (IPv6 included).
  auto state = tmp / "ok";
  Process p({agentBin(), "run", "--dev", "--state-dir", state.string(), "--listen", "[::1]:0",
             "--probe", h100Probe(), "--job-user", "nobody"},
            {.stdout_file = tmp / "ok.out", .stderr_file = tmp / "ok.err"});
  EXPECT_TRUE(p.waitForOutput("listening on http://[::1]:", std::chrono::seconds(20)))
      << readFile(tmp / "ok.err");
  p.kill();
  removeCgroups(state);
}

TEST(AgentStartup, UnknownConfigKeyIsAnErrorNamingIt) {
  TempDir tmp("hwl-agent-it");
  ::chmod(tmp.path().c_str(),
          0755);  // the default jobs root beside the state dir is the job user's
  const auto cfg = tmp / "agent.json";
  writeFile(cfg, bj::serialize(bj::object{{"state_dir", (tmp / "state").string()},
                                          {"listen", "127.0.0.1:0"},
                                          {"dev", true},
                                          {"probe", h100Probe()},
                                          {"job_user", "nobody"},
                                          {"sample_intervall_ms", 500}}));
  auto r = run({agentBin(), "run", "--config", cfg.string()},
               {.timeout = std::chrono::milliseconds(20'000)});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.code(), 0) << r.out;
  EXPECT_NE(r.err.find("sample_intervall_ms"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "state" / "listen.addr"));

  // A value out of range names its key too.
  writeFile(
      cfg, bj::serialize(bj::object{
               {"state_dir", (tmp / "state").string()}, {"dev", true}, {"sample_interval_ms", 5}}));
  auto range = run({agentBin(), "run", "--config", cfg.string()},
                   {.timeout = std::chrono::milliseconds(20'000)});
  EXPECT_NE(range.code(), 0);
  EXPECT_NE(range.err.find("sample_interval_ms"), std::string::npos) << range.err;

  // The same file without the misspelt key starts an agent that takes its settings from it.
  writeFile(cfg, bj::serialize(bj::object{{"state_dir", (tmp / "state").string()},
                                          {"listen", "127.0.0.1:0"},
                                          {"dev", true},
                                          {"probe", h100Probe()},
                                          {"job_user", "nobody"},
                                          {"sample_interval_ms", 500}}));
  Process p({agentBin(), "run", "--config", cfg.string()},
            {.stdout_file = tmp / "cfg.out", .stderr_file = tmp / "cfg.err"});
  EXPECT_TRUE(p.waitForOutput("listening on http://127.0.0.1:", std::chrono::seconds(20)))
      << readFile(tmp / "cfg.err");
  EXPECT_TRUE(eventually([&] { return std::filesystem::exists(tmp / "state" / "listen.addr"); },
                         std::chrono::seconds(5)));
  p.kill();
  removeCgroups(tmp / "state");
}

// A jobs root the job user cannot reach (its parent is 0700 and not the job user's) would fail
// every job with "create working_dir: Permission denied": the agent refuses to start instead,
// naming the path and the user.
TEST(AgentStartup, JobsRootTheJobUserCannotReachIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run jobs as nobody";
  TempDir tmp("hwl-agent-it");
  ::chmod(tmp.path().c_str(), 0755);
  const auto locked = tmp / "locked";
  std::filesystem::create_directories(locked / "jobs");
  ::chmod(locked.c_str(), 0700);
  ::chmod((locked / "jobs").c_str(), 0777);
  const auto jobs_root = (locked / "jobs").string();
  auto r =
      run({agentBin(), "run", "--dev", "--state-dir", (tmp / "state").string(), "--jobs-root",
           jobs_root, "--listen", "127.0.0.1:0", "--probe", h100Probe(), "--job-user", "nobody"},
          {.timeout = std::chrono::milliseconds(20'000)});
  EXPECT_FALSE(r.timed_out) << "the agent started serving";
  EXPECT_NE(r.code(), 0) << r.out << r.err;
  EXPECT_NE(r.err.find("jobs root " + jobs_root), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("job user nobody"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "state" / "listen.addr"));
  EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;

  // The same layout with the parent opened up starts.
  ::chmod(locked.c_str(), 0755);
  Process p({agentBin(), "run", "--dev", "--state-dir", (tmp / "state").string(), "--jobs-root",
             jobs_root, "--listen", "127.0.0.1:0", "--probe", h100Probe(), "--job-user", "nobody"},
            {.stdout_file = tmp / "ok.out", .stderr_file = tmp / "ok.err"});
  EXPECT_TRUE(p.waitForOutput("listening on http://127.0.0.1:", std::chrono::seconds(20)))
      << readFile(tmp / "ok.err");
  EXPECT_EQ(std::filesystem::directory_iterator(jobs_root) == std::filesystem::directory_iterator(),
            true)
      << "the access check left its probe behind";
  p.kill();
  removeCgroups(tmp / "state");
}

}  // namespace
}  // namespace hwl::itest::agent
