// The sampler thread, its latest() snapshot and the per-GPU rings.
#include "hwl/probes/sampler.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "hwl/probes/replay_probe.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Probe> h100Replay() {
  auto p = ReplayProbe::open(testing::capture("nvidia-h100-query-gpu.csv"));
  EXPECT_TRUE(p.has_value());
  return std::move(*p);
}

TEST(Sampler, RingKeepsTheLastReadingsPerGpu) {
  std::int64_t now = 1000;
  Sampler sampler(h100Replay(),
                  {.interval = 1000ms, .ring_size = 3, .now_ms = [&now] { return now += 1000; }});
  EXPECT_EQ(sampler.latest(), nullptr);
  for (int i = 0; i < 5; ++i) sampler.sampleOnce();
  const auto latest = sampler.latest();
  ASSERT_NE(latest, nullptr);
  EXPECT_EQ(latest->time_ms, 6000);
  const std::string uuid = "GPU-00000000-0000-0000-0000-000000000000";
  EXPECT_EQ(sampler.gpuUuids(), std::vector<std::string>{uuid});
  const auto h = sampler.history(uuid);
  ASSERT_EQ(h.size(), 3u);  // the two oldest dropped
  EXPECT_EQ(h[0].time_ms, 4000);
  EXPECT_EQ(h[2].time_ms, 6000);
  // Replay alternates load (step 0, 2, 4) and idle (1, 3).
  EXPECT_EQ(h[0].gpu.utilization_gpu_pct, 100.0);
  EXPECT_EQ(h[1].gpu.utilization_gpu_pct, 0.0);
  EXPECT_EQ(h[2].gpu.utilization_gpu_pct, 100.0);
  EXPECT_TRUE(sampler.history("GPU-unknown").empty());
  EXPECT_EQ(sampler.stats().samples_total, 5u);
}

TEST(Sampler, ThreadSamplesUntilStopped) {
  Sampler sampler(h100Replay(), {.interval = 10ms, .ring_size = 1000});
  sampler.start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sampler.stats().samples_total < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  // Readers on another thread while the sampler writes.
  std::atomic<int> reads{0};
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) {
      if (auto s = sampler.latest()) reads += static_cast<int>(s->gpus.size());
    }
  });
  reader.join();
  sampler.stop();
  const auto n = sampler.stats().samples_total;
  EXPECT_GE(n, 5u);
  EXPECT_EQ(reads.load(), 200);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(sampler.stats().samples_total, n);  // stopped means stopped
  sampler.stop();                               // idempotent
}

TEST(Sampler, StopDoesNotWaitForTheInterval) {
  Sampler sampler(h100Replay(), {.interval = 3600s});
  sampler.start();
  const auto start = std::chrono::steady_clock::now();
  while (sampler.latest() == nullptr) std::this_thread::sleep_for(1ms);
  sampler.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

class FailingProbe final : public Probe {
 public:
  [[nodiscard]] std::string name() const override { return "failing"; }
  Result<Sample> sample() override { return unavailable("device lost"); }
};

TEST(Sampler, ErrorsAreCountedAndKeepThePreviousSample) {
  Sampler sampler(std::make_unique<FailingProbe>());
  sampler.sampleOnce();
  sampler.sampleOnce();
  EXPECT_EQ(sampler.latest(), nullptr);
  const auto st = sampler.stats();
  EXPECT_EQ(st.sample_errors_total, 2u);
  EXPECT_EQ(st.samples_total, 0u);
  ASSERT_TRUE(st.last_error.has_value());
  EXPECT_EQ(st.last_error->message, "device lost");
}

}  // namespace
}  // namespace hwl::probes
