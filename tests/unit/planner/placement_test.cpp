// Host ranking by fit.
#include <gtest/gtest.h>

#include "hwl/planner/load_model.hpp"
#include "hwl/planner/placement.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::planner {
namespace {

constexpr std::uint64_t kGiB = 1ULL << 30;

TEST(Placement, RanksByGpusNeededThenHeadroom) {
  const std::vector<TpNeed> needs = {{1, 100 * kGiB}, {2, 52 * kGiB}, {4, 27 * kGiB}, {8, 14 * kGiB}};
  const std::vector<HostCapacity> hosts = {
      {"h-small", "4x24", {{24 * kGiB, 24 * kGiB}, {24 * kGiB, 23 * kGiB}, {24 * kGiB, 24 * kGiB}, {24 * kGiB, 24 * kGiB}}},
      {"h-80", "2x80", {{80 * kGiB, 79 * kGiB}, {80 * kGiB, 60 * kGiB}}},
      {"h-busy", "2x80 busy", {{80 * kGiB, 79 * kGiB}, {80 * kGiB, 10 * kGiB}}},
      {"h-8x", "8x24", std::vector<GpuMemory>(8, {24 * kGiB, 20 * kGiB})},
      {"h-none", "no gpus", {}},
      {"h-80b", "2x80 freer", {{80 * kGiB, 79 * kGiB}, {80 * kGiB, 70 * kGiB}}},
  };
  const auto ranked = rankHosts(needs, hosts);
  ASSERT_EQ(ranked.size(), 6U);
  EXPECT_EQ(ranked[0].host_id, "h-80b");  // 2 GPUs, 18 GiB headroom
  EXPECT_EQ(ranked[0].gpus_needed, 2U);
  EXPECT_EQ(ranked[0].headroom_bytes, static_cast<std::int64_t>(18 * kGiB));
  EXPECT_EQ(ranked[1].host_id, "h-80");    // 2 GPUs, 8 GiB headroom
  EXPECT_EQ(ranked[2].host_id, "h-8x");    // 8 GPUs
  EXPECT_EQ(ranked[2].gpus_needed, 8U);
  EXPECT_TRUE(ranked[2].fits);
  EXPECT_FALSE(ranked[3].fits);
  EXPECT_EQ(ranked[3].host_id, "h-small");  // 4 GPUs x 27 GiB needed, 23 GiB free: 4 GiB short
  EXPECT_EQ(ranked[3].reason, "needs 27.00 GiB per GPU on 4 GPU(s), the freest 4 have 23.00 GiB free (of 4 GPU(s))");
  EXPECT_EQ(ranked[4].host_id, "h-busy");
  EXPECT_EQ(ranked[5].host_id, "h-none");
  EXPECT_EQ(ranked[5].reason, "host reports no GPUs");
}

TEST(Placement, NeedsComeFromThePlan) {
  HWL_NEEDS_SHARED_DATA();
  auto spec = loadModel(hwl::test_fixtures::find("models", "Llama-3.1-70B.config.json").string());
  ASSERT_TRUE(spec.has_value());
  PlanRequest req;
  req.model = *spec;
  req.context = 8192;
  auto needs = tpNeeds(req, 8);
  ASSERT_TRUE(needs.has_value());
  ASSERT_EQ(needs->size(), 4U);
  EXPECT_EQ((*needs)[2].tp, 4U);
  EXPECT_GT((*needs)[0].per_gpu_bytes, 141'000'000'000ULL);  // 70.55B x 2 bytes alone
  EXPECT_LT((*needs)[3].per_gpu_bytes, (*needs)[2].per_gpu_bytes);
}

}  // namespace
}  // namespace hwl::planner
