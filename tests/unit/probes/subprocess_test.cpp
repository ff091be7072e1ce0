// runCommand with real programs: output capture, exit codes, timeouts, missing programs.
#include "hwl/probes/subprocess.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "hwl/probes/nvidia_smi.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

using namespace std::chrono_literals;

TEST(RunCommand, CapturesStdoutAndExitCodeWithoutAShell) {
  auto r = runCommand({"printf", "%s|%s", "a b", "$HOME;"});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "a b|$HOME;");  // no shell: nothing expanded
  auto f = runCommand({"false"});
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->exit_code, 1);
}

TEST(RunCommand, MissingProgramIsNotFound) {
  auto r = runCommand({"hwl-no-such-program-xyz"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kNotFound);
}

TEST(RunCommand, TimeoutKillsTheChild) {
  const auto start = std::chrono::steady_clock::now();
  auto r = runCommand({"sleep", "10"}, {.timeout = 200ms});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kDeadlineExceeded);
  EXPECT_LT(took, 5s);
}

TEST(RunCommand, OutputLimit) {
  auto r = runCommand({"head", "-c", "100000", "/dev/zero"}, {.max_output_bytes = 1000});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kResourceExhausted);
}

TEST(RunCommand, FakeNvidiaSmiScriptFeedsTheProbe) {
  // An executable printing a recorded capture stands in for the tool itself.
  testing::TempDir dir;
  const auto script =
      dir.write("nvidia-smi",
                "#!/bin/sh\n"
                "case \"$1\" in\n"
                "  --query-gpu=*) echo '0, GPU-1, NVIDIA H100 80GB HBM3, 590.48.01, "
                "81559, 19818, 61263, 100, 11, 59, 631.95, 700.00, 1980, 2619' ;;\n"
                "  --query-compute-apps=*) echo 'GPU-1, 11345, ./gpu_burn, 15690' ;;\n"
                "esac\n");
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto found = findExecutable(script.string());
  ASSERT_TRUE(found.has_value());
  auto r = runCommand({script.string(), "--query-gpu=index"});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_NE(r->out.find("GPU-1"), std::string::npos);

  NvidiaSmiProbe probe({.executable = script.string(), .timeout = 5s});
  auto s = probe.sample();
  ASSERT_TRUE(s.has_value()) << s.error().message;
  ASSERT_EQ(s->gpus.size(), 1u);
  EXPECT_EQ(s->gpus[0].memory_used_bytes, 19818ULL * 1024 * 1024);
  ASSERT_EQ(s->gpus[0].processes.size(), 1u);
  EXPECT_EQ(s->gpus[0].processes[0].pid, 11345u);
  EXPECT_EQ(s->gpus[0].processes[0].memory_bytes, 15690ULL * 1024 * 1024);
}

TEST(NvidiaSmiProbe, FailingToolIsUnavailable) {
  NvidiaSmiProbe probe({.executable = "false", .timeout = 5s});
  auto s = probe.sample();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, Code::kUnavailable);
}

}  // namespace
}  // namespace hwl::probes
