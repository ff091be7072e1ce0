// runCli end to end without a server: which command runs, whether it reads the config file, and
// the exit code and message of each kind of refusal.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "hwl/test_fixtures.hpp"

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
    argv.reserve(args.size() + 1);
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
    c.emplace_back("--help");
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

std::string llama8b() {
  return hwl::test_fixtures::find("models", "Llama-3.1-8B.config.json").string();
}

// Issue 14's reproduction: `hwledger plan FILE --context 4096 --json` failed with "The following
// argument was not expected: --json".
TEST_F(RunCli, PlanTakesJsonAfterTheSubcommand) {
  auto r = run({"plan", llama8b(), "--context", "4096", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto j = boost::json::parse(r.out).as_object();
  // 32 layers x 8 KV heads x 128 x (K+V) x 2 bytes = 131072 B per token.
  EXPECT_EQ(j.at("kv_bytes").to_number<std::uint64_t>(), 131072ULL * 4096);
}

TEST_F(RunCli, EveryGlobalOptionIsTakenAfterTheSubcommand) {
  for (const std::vector<std::string>& tail :
       {std::vector<std::string>{"-o", "json"},
        {"--output", "json"},
        {"--output=json"},
        {"--server", "https://127.0.0.1:1", "--token", "a.b", "--ca", "/nonexistent", "--json"}}) {
    std::vector<std::string> args = {"plan", llama8b(), "--context", "4096"};
    args.insert(args.end(), tail.begin(), tail.end());
    auto r = run(args);
    ASSERT_EQ(r.code, 0) << tail.front() << ": " << r.err;
    EXPECT_TRUE(boost::json::parse(r.out).is_object()) << tail.front();
  }
  auto csv = run({"plan", llama8b(), "--context", "4096", "-o", "table"});
  EXPECT_EQ(csv.code, 0) << csv.err;
  EXPECT_NE(csv.out.find("kv cache"), std::string::npos) << csv.out;
}

// Issue 14's reproduction: `--context -5` wrapped to 18446744073709551611 and exited 0.
TEST_F(RunCli, PlanRefusesZeroAndNegativeCounts) {
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"--context", "-5"},
            "--context: must be a whole number from 1 to 4294967296, got \"-5\""},
           {{"--context=-5"}, "--context"},
           {{"--context", "0"}, "--context"},
           {{"--context", "4k"}, "--context"},
           {{"--context", "4096", "--batch", "0"}, "--batch"},
           {{"--context", "4096", "--batch", "-1"}, "--batch"},
           {{"--context", "4096", "--tp", "-1"}, "--tp"},
           {{"--context", "4096", "--tp", "0"}, "--tp"},
           {{"--context", "4096", "--tp", "4294967297"}, "--tp"},
           {{"--context", "18446744073709551611"}, "--context"},
       }) {
    std::vector<std::string> args = {"plan", llama8b()};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto r = run(args);
    EXPECT_EQ(r.code, 2) << c.flags.back();
    EXPECT_EQ(r.out, "") << c.flags.back();
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.flags.back() << ": " << r.err;
  }
  for (const char* cmd : {"placements", "rent"}) {
    auto r = run({cmd, llama8b(), "--context", "-5"});
    EXPECT_EQ(r.code, 2) << cmd;
    EXPECT_NE(r.err.find("--context: must be a whole number"), std::string::npos) << r.err;
  }
}

// The largest counts the flags take: the KV cache of 2^32 tokens x 2^24 sequences does not fit 64
// bits, and the plan says so instead of printing a wrapped figure beside a total that omits it.
TEST_F(RunCli, PlanRefusesByteCountsBeyond64Bits) {
  auto r = run({"plan", llama8b(), "--context", "4294967296", "--batch", "16777216", "--json"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("more bytes than 64 bits can count"), std::string::npos) << r.err;
  // Below the limit the figures add up exactly: 2^32 tokens x 131072 B = 2^49 B of KV.
  auto big = run({"plan", llama8b(), "--context", "4294967296", "--json"});
  ASSERT_EQ(big.code, 0) << big.err;
  const auto j = boost::json::parse(big.out).as_object();
  const auto get = [&](const char* k) { return j.at(k).to_number<std::uint64_t>(); };
  EXPECT_EQ(get("kv_bytes"), 1ULL << 49);
  EXPECT_EQ(get("total_bytes"), get("weights_bytes") + get("kv_bytes") + get("state_bytes") +
                                    get("activations_bytes") + get("overhead_bytes"));
}

}  // namespace
}  // namespace hwl::cli
