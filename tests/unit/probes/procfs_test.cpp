// /proc parsers on kernel-format text, and the host probe on this machine's real /proc.
#include "hwl/probes/procfs.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "test_support.hpp"

namespace hwl::probes {
namespace {

TEST(ProcStat, AggregateLineAndUtilization) {
  const char* a =
      "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0\n"
      "cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0\n"
      "intr 1462898\n";
  const char* b =
      "cpu  10132253 290696 3084819 46828683 16683 0 25195 0 175628 0\n"
      "cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0\n";
  auto t1 = parseProcStat(a);
  auto t2 = parseProcStat(b);
  ASSERT_TRUE(t1.has_value());
  ASSERT_TRUE(t2.has_value());
  EXPECT_EQ(t1->idle, 46828483u + 16683u);
  EXPECT_EQ(t1->busy, 10132153u + 290696u + 3084719u + 25195u);
  // +200 busy jiffies, +200 idle jiffies: 50 %.
  EXPECT_DOUBLE_EQ(*cpuUtilizationPct(*t1, *t2), 50.0);
  EXPECT_FALSE(cpuUtilizationPct(*t2, *t2).has_value());
  EXPECT_FALSE(parseProcStat("intr 1\n").has_value());
  EXPECT_FALSE(parseProcStat("cpu  1 2 x 4\n").has_value());
}

TEST(ProcMeminfo, TotalAndAvailable) {
  const auto m = parseMeminfo(
      "MemTotal:       16318256 kB\nMemFree:         1432144 kB\nMemAvailable:    9853204 kB\n");
  EXPECT_EQ(m.total_bytes, 16318256ULL * 1024);
  EXPECT_EQ(m.available_bytes, 9853204ULL * 1024);
  const auto old = parseMeminfo("MemTotal: 1024 kB\n");  // kernels before 3.14
  EXPECT_FALSE(old.available_bytes.has_value());
}

TEST(ProcCpuinfo, ModelAndLogicalCpus) {
  const auto x86 = parseCpuinfo(
      "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\n"
      "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n");
  EXPECT_EQ(x86.model, "Intel(R) Xeon(R) CPU @ 2.20GHz");
  EXPECT_EQ(x86.logical_cpus, 2u);
  const auto arm = parseCpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\n\nHardware\t: BCM2835\n");
  EXPECT_EQ(arm.model, "BCM2835");
  EXPECT_EQ(arm.logical_cpus, 1u);
}

TEST(ProcHostProbe, RealProcGivesHostMetrics) {
  ProcHostProbe probe("/proc");
  auto first = probe.sample();
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_TRUE(first->gpus.empty());
  EXPECT_GT(first->host.memory_total_bytes.value_or(0), 0u);
  EXPECT_GT(first->host.cpu_cores.value_or(0), 0u);
  EXPECT_FALSE(first->host.cpu_util_pct.has_value());  // needs two readings
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i) sink = sink + i;  // let some jiffies pass
  auto second = probe.sample();
  ASSERT_TRUE(second.has_value());
  if (second->host.cpu_util_pct) {
    EXPECT_GE(*second->host.cpu_util_pct, 0.0);
    EXPECT_LE(*second->host.cpu_util_pct, 100.0);
  }
}

TEST(ProcHostProbe, MissingProcRootIsAnError) {
  testing::TempDir dir;
  ProcHostProbe probe(dir.path().string());
  EXPECT_FALSE(probe.sample().has_value());
}

TEST(ProcessStats, OwnProcess) {
  auto s = readProcessStats();
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_GT(s->resident_memory_bytes.value_or(0), 1024u * 1024u);
  EXPECT_TRUE(s->cpu_seconds_total.has_value());
}

TEST(ProcessStats, CommandNameWithSpacesAndParens) {
  testing::TempDir dir;
  dir.write("42/stat",
            "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 "
            "1000000 300 18446744073709551615\n");
  auto s = readProcessStats(dir.path().string(), "42");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->resident_memory_bytes, 300u * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_DOUBLE_EQ(*s->cpu_seconds_total, 300.0 / static_cast<double>(::sysconf(_SC_CLK_TCK)));
}

}  // namespace
}  // namespace hwl::probes
