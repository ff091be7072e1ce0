#include "agentless/remote_probe.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hwl/files.hpp"

namespace hwl::agentless {
namespace {

namespace fs = std::filesystem;
const fs::path kTelemetry = HWL_TELEMETRY_FIXTURES;
constexpr const char* kNonce = "0123456789abcdef";

std::string fixture(const char* name) { return *files::readFile(kTelemetry / name); }

std::string section(const std::string& name, const std::string& body, int rc = 0) {
  const std::string m = std::string("@@hwl-") + kNonce;
  return m + " begin " + name + "\n" + body + "\n" + m + " end " + std::to_string(rc) + "\n";
}

// Runs a command line through /bin/sh, as the remote login shell would, and returns its stdout.
std::string runShell(const std::string& command, const std::string& path) {
  const std::string line = "PATH='" + path + "' " + command;
  FILE* p = ::popen(line.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(RemoteProbe, NvidiaSectionsGiveTheAgentsSample) {
  const std::string out = section("arch", "x86_64") + section("cpus", "96") +
                          section("meminfo",
                                  "MemTotal:       1056499012 kB\nMemAvailable:   "
                                  "1000000000 kB\n") +
                          section("stat", "cpu  100 0 100 800 0 0 0 0 0 0") +
                          section("nvidia", fixture("nvidia-h100-query-gpu.csv")) +
                          section("nvidia-apps", fixture("nvidia-h100-compute-apps.csv"));
  auto p = parseProbeOutput(out, kNonce, std::nullopt, 1000);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->arch, "x86_64");
  EXPECT_EQ(p->backend, "nvidia-smi");
  EXPECT_EQ(p->sample.host.cpu_cores, 96u);
  EXPECT_EQ(p->sample.host.memory_total_bytes, uint64_t{1056499012} * 1024);
  EXPECT_FALSE(p->sample.host.cpu_util_pct) << "one reading gives no CPU use";
  ASSERT_EQ(p->sample.gpus.size(), 1u);
  const auto& g = p->sample.gpus[0];
  EXPECT_EQ(g.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g.vendor, "nvidia");
  EXPECT_EQ(g.memory_used_bytes, uint64_t{19818} << 20);
  EXPECT_FALSE(g.processes.empty()) << "compute apps attached to their GPU";
  // With the previous poll's /proc/stat reading, CPU use: 100 of 200 busy jiffies more.
  auto again = parseProbeOutput(out, kNonce, probes::CpuTimes{}, 2000);
  ASSERT_TRUE(again);
  ASSERT_TRUE(again->sample.host.cpu_util_pct);
  EXPECT_NEAR(*again->sample.host.cpu_util_pct, 20.0, 0.01);
  auto inv = inventoryOf(again->sample);
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].at("uuid").as_string(), "GPU-00000000-0000-0000-0000-000000000000");
  auto plat = platformOf(*again);
  EXPECT_EQ(plat.at("gpu_backend").as_string(), "nvidia-smi");
}

TEST(RemoteProbe, FailedNvidiaSmiFallsBackAndLspciListsOnlyGpuVendors) {
  const std::string lspci =
      "01:00.0 \"VGA compatible controller [0300]\" \"NVIDIA Corporation [10de]\" \"GA102 "
      "[GeForce RTX 3090] [2204]\" -ra1 \"eVga.com. Corp. [3842]\" \"Device [3987]\"\n"
      "02:00.0 \"VGA compatible controller [0300]\" \"ASPEED Technology, Inc. [1a03]\" \"ASPEED "
      "Graphics Family [2000]\" -r41 \"ASPEED Technology, Inc. [1a03]\" \"ASPEED Graphics Family "
      "[2000]\"\n"
      "c1:00.0 \"Display controller [0380]\" \"Advanced Micro Devices, Inc. [AMD/ATI] [1002]\" "
      "\"Aldebaran/MI200 [Instinct MI210] [740f]\" -r02 \"Advanced Micro Devices, Inc. [AMD/ATI] "
      "[1002]\" \"Aldebaran/MI200 [Instinct MI210] [0c34]\"\n"
      "00:1f.3 \"Audio device [0403]\" \"Intel Corporation [8086]\" \"Device [7a50]\" -r11 \"\" "
      "\"\"\n";
  const std::string out = section("arch", "x86_64") +
                          section("nvidia",
                                  "NVIDIA-SMI has failed because it couldn't communicate "
                                  "with the NVIDIA driver.",
                                  9) +
                          section("lspci", lspci);
  auto p = parseProbeOutput(out, kNonce, std::nullopt, 1);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->backend, "lspci");
  ASSERT_EQ(p->sample.gpus.size(), 2u) << "the BMC's VGA and the audio device are not GPUs";
  EXPECT_EQ(p->sample.gpus[0].vendor, "nvidia");
  EXPECT_EQ(p->sample.gpus[0].uuid, "PCI-01:00.0");
  EXPECT_EQ(p->sample.gpus[0].name, "NVIDIA Corporation GA102 [GeForce RTX 3090]");
  EXPECT_EQ(p->sample.gpus[1].vendor, "amd");
  EXPECT_FALSE(p->sample.gpus[0].memory_used_bytes) << "lspci knows no telemetry";
}

TEST(RemoteProbe, OutputCannotForgeASectionWithoutTheNonce) {
  // A GPU name (or anything a tool prints) with marker lines of another nonce stays text.
  const std::string forged =
      "@@hwl-ffffffffffffffff end 0\n@@hwl-ffffffffffffffff begin arch\nevil";
  const std::string out = section("arch", "aarch64") + section("nvidia", forged, 3);
  auto p = parseProbeOutput(out, kNonce, std::nullopt, 1);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->arch, "aarch64");
  EXPECT_EQ(p->backend, "none");
  // A tool that knows the nonce (it can read the host's process list) and prints a section of
  // its own repeats or reorders the script's: the whole output is refused, not half believed.
  const std::string csv = fixture("nvidia-h100-query-gpu.csv");
  EXPECT_FALSE(parseProbeOutput(section("arch", "x86_64") + section("nvidia", csv) +
                                    section("nvidia-apps", "") + section("nvidia", csv),
                                kNonce, std::nullopt, 1));
  EXPECT_FALSE(parseProbeOutput(section("nvidia", csv) + section("arch", "x86_64"), kNonce,
                                std::nullopt, 1));
  EXPECT_FALSE(parseProbeOutput(section("arch", "x86_64") + "@@hwl-" + kNonce + " rm -rf\n", kNonce,
                                std::nullopt, 1));
  // Output that has none of our sections is an error, not an empty host.
  EXPECT_FALSE(parseProbeOutput("Welcome to fish!\n", kNonce, std::nullopt, 1));
  // A nonce that is not 16 hex digits is refused before any script is built.
  EXPECT_FALSE(probeScript("0123'; reboot; '"));
  EXPECT_FALSE(parseProbeOutput(out, "xyz", std::nullopt, 1));
}

TEST(RemoteProbe, WhatAHostReportsIsBounded) {
  // Control characters, invalid UTF-8 and huge names are cut to printable, valid, bounded text.
  std::string lspci;
  lspci += "01:00.0 \"3D controller [0302]\" \"NVIDIA Corporation [10de]\" \"" +
           std::string(5000, 'A') + "\x1b[2J\xff\xfe [2204]\" -ra1 \"\" \"\"\n";
  auto p = parseProbeOutput(
      section("arch", "x86_64\x1b[31m" + std::string(500, 'x')) + section("lspci", lspci), kNonce,
      std::nullopt, 1);
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->sample.gpus.size(), 1u);
  const std::string& name = p->sample.gpus[0].name;
  EXPECT_LE(name.size(), 256u);
  EXPECT_EQ(name.find('\x1b'), std::string::npos);
  EXPECT_LE(p->arch.size(), 64u);
  EXPECT_EQ(p->arch.find('\x1b'), std::string::npos);
  // More than 256 GPUs, or one uuid twice, is refused rather than recorded.
  std::string many;
  for (int i = 0; i < 300; ++i) {
    char slot[16];
    std::snprintf(slot, sizeof slot, "%02x:%02x.0", i / 256, i % 256);
    many +=
        std::string(slot) + " \"3D controller [0302]\" \"NVIDIA Corporation [10de]\" \"GPU [1]\"\n";
  }
  EXPECT_FALSE(
      parseProbeOutput(section("arch", "x") + section("lspci", many), kNonce, std::nullopt, 1));
  const std::string one =
      "01:00.0 \"3D controller [0302]\" \"NVIDIA Corporation [10de]\" \"G [1]\"\n";
  EXPECT_FALSE(parseProbeOutput(section("arch", "x") + section("lspci", one + one), kNonce,
                                std::nullopt, 1));
}

TEST(RemoteProbe, TheScriptRunsUnderShAndFindsAFakeNvidiaSmiOnPath) {
  // The script as the remote shell gets it, run by this machine's /bin/sh with a PATH holding a
  // fake nvidia-smi that prints the captures.
  const fs::path dir = fs::temp_directory_path() / ("hwl-probe-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "nvidia-smi");
    f << "#!/bin/sh\ncase \"$*\" in *--query-compute-apps*) cat '"
      << (kTelemetry / "nvidia-h100-compute-apps.csv").string() << "';; *) cat '"
      << (kTelemetry / "nvidia-h100-query-gpu.csv").string() << "';; esac\n";
  }
  fs::permissions(dir / "nvidia-smi", fs::perms::owner_all);
  auto script = probeScript(kNonce);
  ASSERT_TRUE(script);
  const std::string out = runShell(*script, dir.string() + ":/usr/bin:/bin");
  auto p = parseProbeOutput(out, kNonce, std::nullopt, 1);
  fs::remove_all(dir);
  ASSERT_TRUE(p) << p.error().message << "\n" << out;
  EXPECT_EQ(p->backend, "nvidia-smi");
  EXPECT_EQ(p->sample.gpus.size(), 1u);
  EXPECT_FALSE(p->arch.empty());
  EXPECT_TRUE(p->sample.host.memory_total_bytes);
  EXPECT_TRUE(p->cpu);
  // Without it, the script falls through to rocm-smi and lspci and still reports the host.
  auto bare = parseProbeOutput(runShell(*script, "/usr/bin:/bin"), kNonce, std::nullopt, 1);
  ASSERT_TRUE(bare);
  EXPECT_NE(bare->backend, "nvidia-smi");
}

}  // namespace
}  // namespace hwl::agentless
