// NVML loading: this machine has no NVIDIA driver, so open() must fail cleanly.
#include "hwl/probes/nvml_probe.hpp"

#include <gtest/gtest.h>

#include "hwl/probes/probe.hpp"

namespace hwl::probes {
namespace {

TEST(NvmlProbe, AbsentLibraryIsNotAvailable) {
  auto p = NvmlProbe::open({.library = "libnvidia-ml-absent-for-test.so.1"});
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, Code::kUnavailable);
  EXPECT_NE(p.error().message.find("NVML not available"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("libnvidia-ml-absent-for-test.so.1"), std::string::npos);
}

TEST(NvmlProbe, DefaultLibraryOnThisHost) {
  auto p = NvmlProbe::open();
  if (p.has_value()) GTEST_SKIP() << "an NVIDIA driver is installed here";
  EXPECT_EQ(p.error().code, Code::kUnavailable);
  EXPECT_NE(p.error().message.find("NVML not available"), std::string::npos);
}

TEST(NvmlProbe, LibraryWithoutNvmlSymbolsIsNotAvailable) {
  // libm loads but exports no NVML function.
  auto p = NvmlProbe::open({.library = "libm.so.6"});
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, Code::kUnavailable);
  EXPECT_NE(p.error().message.find("lacks a required symbol"), std::string::npos);
}

TEST(DetectProbes, ForcedNvmlWithoutDriverFails) {
  ProbeConfig c;
  c.gpu_source = "nvml";
  c.nvml_library = "libnvidia-ml-absent-for-test.so.1";
  auto probes = detectProbes(c);
  ASSERT_FALSE(probes.has_value());
  EXPECT_EQ(probes.error().code, Code::kUnavailable);
}

TEST(DetectProbes, AutoWithoutGpusStillReportsTheHost) {
  ProbeConfig c;
  c.nvml_library = "libnvidia-ml-absent-for-test.so.1";
  c.nvidia_smi = "/nonexistent/nvidia-smi";
  c.rocm_smi = "/nonexistent/rocm-smi";
  c.sys_root = "/nonexistent-sys";
  auto probes = detectProbes(c);
  ASSERT_TRUE(probes.has_value()) << probes.error().message;
  EXPECT_EQ((*probes)->backends(), std::vector<std::string>{"proc"});
  auto s = (*probes)->sample();
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->gpus.empty());
  EXPECT_GT(s->host.memory_total_bytes.value_or(0), 0u);
}

TEST(DetectProbes, UnknownSourceIsRejected) {
  ProbeConfig c;
  c.gpu_source = "cuda-magic";
  auto probes = detectProbes(c);
  ASSERT_FALSE(probes.has_value());
  EXPECT_EQ(probes.error().code, Code::kInvalidArgument);
}

}  // namespace
}  // namespace hwl::probes
