// runCli end to end without a server: which command runs, whether it reads the config file, and
// the exit code and message of each kind of refusal.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace hwl::cli {
namespace {

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

// The environment of a person with no server configured: no HWLEDGER_* variables and a config
// file path that does not exist, unless a test writes it.
class RunCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hwl-run-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    for (const char* v : {"HWLEDGER_SERVER", "HWLEDGER_TOKEN", "HWLEDGER_CA"}) ::unsetenv(v);
    config_ = dir_ / "config.json";
    ::setenv("HWLEDGER_CONFIG", config_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("HWLEDGER_CONFIG");
    std::filesystem::remove_all(dir_);
  }

  void writeConfig(const std::string& text) { std::ofstream(config_) << text; }

  static Outcome run(std::vector<std::string> args) {
    args.insert(args.begin(), "hwledger");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::ostringstream out, err;
    const int code = runCli(static_cast<int>(args.size()), argv.data(), out, err);
    return {code, out.str(), err.str()};
  }

  std::filesystem::path dir_;
  std::filesystem::path config_;
};

TEST_F(RunCli, HelpListsEveryCommandInOrder) {
  auto r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  size_t at = r.out.find("Subcommands:");
  ASSERT_NE(at, std::string::npos) << r.out;
  for (const char* c : {"events", "tokens", "ledger", "hosts", "gpus", "jobs", "usage",
                        "enroll-token", "plan", "placements"}) {
    const size_t next = r.out.find(std::string("\n  ") + c + " ", at);
    ASSERT_NE(next, std::string::npos) << c << " missing or out of order in\n" << r.out;
    at = next;
  }
}

TEST_F(RunCli, EverySubcommandHasHelp) {
  for (std::vector<std::string> c : {std::vector<std::string>{"tokens", "create"},
                                     {"tokens", "list"},
                                     {"tokens", "revoke"},
                                     {"ledger", "verify"},
                                     {"hosts", "revoke"},
                                     {"jobs", "submit"},
                                     {"jobs", "list"},
                                     {"jobs", "logs"},
                                     {"jobs", "cancel"},
                                     {"enroll-token", "create"},
                                     {"events"},
                                     {"hosts"},
                                     {"gpus"},
                                     {"usage"},
                                     {"plan"},
                                     {"placements"}}) {
    c.push_back("--help");
    auto r = run(c);
    EXPECT_EQ(r.code, 0) << c.front();
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << c.front();
  }
}

TEST_F(RunCli, UnknownCommandNamesTheNearest) {
  auto r = run({"--server", "https://x", "evnts"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "error: unknown command \"evnts\"; did you mean \"events\"?\n"
            "Run 'hwledger --help' for the commands.\n");
  EXPECT_EQ(run({"tokens"}).code, 2);  // a group without its subcommand
}

TEST_F(RunCli, BadOutputFormatIsAUsageError) {
  auto r = run({"-o", "xml", "hosts"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "error: bad output format \"xml\": use json, table or csv\n");
}

TEST_F(RunCli, AServerCommandWithoutAServerFails) {
  auto r = run({"tokens", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: no server: pass --server URL or set HWLEDGER_SERVER\n");
}

TEST_F(RunCli, TypedValuesAreCheckedBeforeTheServerIsAsked) {
  auto mem = run({"--server", "https://127.0.0.1:1", "jobs", "submit", "--gpu-memory", "12", "--",
                  "/bin/true"});
  EXPECT_EQ(mem.code, 2);
  EXPECT_NE(mem.err.find("needs a unit"), std::string::npos) << mem.err;
  auto from = run({"--server", "https://127.0.0.1:1", "usage", "--from", "yesterday"});
  EXPECT_EQ(from.code, 2);
  EXPECT_NE(from.err.find("bad time \"yesterday\""), std::string::npos) << from.err;
}

TEST_F(RunCli, OnlyCommandsThatNeedTheServerReadTheConfigFile) {
  writeConfig(R"({"bogus": 1})");
  const std::string config_error = "unknown field \"bogus\"";
  auto hosts = run({"hosts"});
  EXPECT_EQ(hosts.code, 1);
  EXPECT_NE(hosts.err.find(config_error), std::string::npos) << hosts.err;
  // A broken config file wins over a bad value typed for a server command.
  auto usage = run({"usage", "--from", "yesterday"});
  EXPECT_EQ(usage.code, 1);
  EXPECT_NE(usage.err.find(config_error), std::string::npos) << usage.err;
  auto on_host = run({"plan", "/nonexistent", "--context", "10", "--host", "h"});
  EXPECT_EQ(on_host.code, 1);
  EXPECT_NE(on_host.err.find(config_error), std::string::npos) << on_host.err;

  auto verify = run({"ledger", "verify", "--db", (dir_ / "none.db").string()});
  EXPECT_EQ(verify.code, 1);
  EXPECT_EQ(verify.err.find(config_error), std::string::npos) << verify.err;
  EXPECT_NE(verify.err.find("no database at"), std::string::npos) << verify.err;
  auto plan = run({"plan", "/nonexistent", "--context", "10"});
  EXPECT_EQ(plan.code, 2);
  EXPECT_EQ(plan.err, "hwledger plan: model path /nonexistent does not exist\n");
}

}  // namespace
}  // namespace hwl::cli
