// The README's run command, as a user runs it: deploy/run-local.sh brings up a server and an
// enrolled agent replaying four H100s, prints how to reach them, takes a job through the CLI
// with the environment it printed, and stops cleanly on Ctrl-C.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <regex>
#include <sstream>

#include "fleet_support.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

// Processes whose command line or working directory lies under `dir`.
std::vector<std::string> processesUnder(const fs::path& dir) {
  std::vector<std::string> found;
  const std::string needle = dir.string();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::stoi(name) == ::getpid()) continue;
    std::string cmd = readFile(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    std::error_code lec;
    std::string cwd = fs::read_symlink(e.path() / "cwd", lec).string();
    if (!processAlive(std::stoi(name))) continue;
    if (cmd.find(needle) != std::string::npos || cwd.rfind(needle, 0) == 0)
      found.push_back(name + ": " + cmd + " (cwd " + cwd + ")");
  }
  return found;
}

TEST(FleetRunLocal, ReadmeRunCommandServesAJobAndStopsOnCtrlC) {
  FleetDir root;
  const fs::path home = root / "home";
  const uint16_t server_port = freeLoopbackPort();
  uint16_t agent_port = freeLoopbackPort();
  while (agent_port == server_port) agent_port = freeLoopbackPort();
  SpawnOptions so;
  so.stdout_file = root / "run-local.out";
  so.stderr_file = root / "run-local.err";
  so.env = {{"HWLEDGER_HOME", home.string()},
            {"HWLEDGER_LISTEN", "127.0.0.1:" + std::to_string(server_port)},
            {"HWLEDGER_AGENT_LISTEN", "127.0.0.1:" + std::to_string(agent_port)},
            // The CLI config and the PATH link it makes go here, not into this user's home.
            {"XDG_CONFIG_HOME", (root / "xdg").string()},
            {"HWLEDGER_BIN_DIR", (root / "bin").string()}};
  Process demo({"bash", (repoRoot() / "deploy" / "run-local.sh").string(), buildDir().string()},
               so);
  ASSERT_TRUE(demo.waitForOutput("hwLedger is running", 120s))
      << demo.out() << demo.err() << readFile(home / "agent.log");
  ASSERT_TRUE(demo.waitForOutput("Ctrl-C stops the agent and the server.", 30s)) << demo.out();
  const std::string out = demo.out();
  EXPECT_NE(out.find("local-demo"), std::string::npos) << out;

  // The environment it tells the user to export.
  std::smatch m;
  const std::regex exported(
      R"(export HWLEDGER_SERVER=(\S+) HWLEDGER_TOKEN=(\S+) HWLEDGER_CA=(\S+))");
  ASSERT_TRUE(std::regex_search(out, m, exported)) << out;
  const Env env{{"HWLEDGER_SERVER", m[1]}, {"HWLEDGER_TOKEN", m[2]}, {"HWLEDGER_CA", m[3]}};
  EXPECT_EQ(m[1].str(), "https://127.0.0.1:" + std::to_string(server_port));

  // One reachable host with the four replayed GPUs, asked with curl.
  auto hosts = run({"curl", "-sS", "--max-time", "30", "--cacert", m[3], "-H",
                    "Authorization: Bearer " + m[2].str(), m[1].str() + "/v1/hosts"});
  ASSERT_TRUE(hosts.status.success()) << hosts.err;
  auto list = bj::parse(hosts.out).at("hosts").as_array();
  ASSERT_EQ(list.size(), 1u) << hosts.out;
  EXPECT_EQ(str(list[0].at("name")), "local-demo");
  EXPECT_EQ(str(list[0].at("state")), "reachable");
  EXPECT_EQ(str(list[0].at("address")), "127.0.0.1:" + std::to_string(agent_port));
  EXPECT_EQ(list[0].at("gpus").as_array().size(), 4u) << hosts.out;
  // The dashboard it prints, served on the same listener.
  EXPECT_NE(out.find("dashboard https://" + m[1].str().substr(8) + "/"), std::string::npos) << out;
  auto page = run({"curl", "-sS", "--max-time", "30", "--cacert", m[3], m[1].str() + "/"});
  ASSERT_TRUE(page.status.success()) << page.err;
  EXPECT_NE(page.out.find("<title>hwLedger</title>"), std::string::npos) << page.out;

  // The printed job example, through the CLI.
  const std::string port = std::to_string(freeLoopbackPort());
  auto sub = cli({"jobs", "submit", "--name", "web", "--gpus", "1", "--port", port, "--ready-path",
                  "/", "--", "python3", "-m", "http.server", port, "--bind", "127.0.0.1"},
                 env);
  ASSERT_EQ(sub.code(), 0) << sub.out << sub.err;
  std::smatch jm;
  ASSERT_TRUE(std::regex_search(sub.out, jm, std::regex(R"(job (\S+) placed on local-demo)")))
      << sub.out;
  const std::string id = jm[1];
  auto state = [&] {
    auto r = cli({"--json", "jobs", "list"}, env);
    if (r.code() != 0) return std::string("cli failed: ") + r.err;
    const auto listed = bj::parse(r.out);
    for (const auto& j : listed.at("jobs").as_array())
      if (str(j.at("id")) == id) return str(j.at("state"));
    return std::string("missing");
  };
  EXPECT_TRUE(eventually([&] { return state() == "ready"; }, 60s)) << state();
  EXPECT_TRUE(portAccepts(static_cast<uint16_t>(std::stoi(port))));
  auto cancel = cli({"jobs", "cancel", id}, env);
  EXPECT_EQ(cancel.code(), 0) << cancel.err;
  EXPECT_TRUE(eventually([&] { return state() == "cancelled"; }, 60s)) << state();

  demo.signal(SIGINT);
  auto st = demo.wait(60s);
  ASSERT_TRUE(st.has_value()) << "run-local.sh still runs 60 s after SIGINT";
  EXPECT_TRUE(st->success()) << st->describe() << " " << demo.err();
  std::vector<std::string> left;
  eventually(
      [&] {
        left = processesUnder(root.path());
        return left.empty();
      },
      5s);
  for (const auto& p : left) {
    ADD_FAILURE() << "left running: " << p;
    ::kill(std::stoi(p), SIGKILL);
  }
}

}  // namespace
}  // namespace hwl::itest::fleet
