// Host ranking by fit.
#include "hwl/planner/placement.hpp"

#include <gtest/gtest.h>

#include "hwl/planner/load_model.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::planner {
namespace {

constexpr std::uint64_t kGiB = 1ULL << 30;

TEST(Placement, RanksByGpusNeededThenHeadroom) {
  const std::vector<TpNeed> needs = {
      {1, 100 * kGiB}, {2, 52 * kGiB}, {4, 27 * kGiB}, {8, 14 * kGiB}};
  const std::vector<HostCapacity> hosts = {
      {"h-small",
       "4x24",
       {{24 * kGiB, 24 * kGiB},
        {24 * kGiB, 23 * kGiB},
        {24 * kGiB, 24 * kGiB},
        {24 * kGiB, 24 * kGiB}}},
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
  EXPECT_EQ(ranked[1].host_id, "h-80");  // 2 GPUs, 8 GiB headroom
  EXPECT_EQ(ranked[2].host_id, "h-8x");  // 8 GPUs
  EXPECT_EQ(ranked[2].gpus_needed, 8U);
  EXPECT_TRUE(ranked[2].fits);
  EXPECT_FALSE(ranked[3].fits);
  EXPECT_EQ(ranked[3].host_id, "h-small");  // 4 GPUs x 27 GiB needed, 23 GiB free: 4 GiB short
  EXPECT_EQ(ranked[3].reason,
            "needs 27.00 GiB per GPU on 4 GPU(s), the freest 4 have 23.00 GiB free (of 4 GPU(s))");
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

TEST(Placement, PlaceOnUsesEachGpusOwnFreeMemoryAndHonoursAnAskedTp) {
  auto model = loadModel(hwl::test_fixtures::find("models", "Qwen3-30B-A3B.config.json"));
  ASSERT_TRUE(model.has_value()) << model.error().message;
  PlanRequest r;
  r.model = *model;
  r.context = 32768;
  auto one = computePlan(r);
  ASSERT_TRUE(one.has_value());
  // The demo host: two idle H100s and two with 19.4 GiB in use. The need at TP 1 (about 61 GiB)
  // is more than the busy GPUs have free, and less than an idle one has: it fits, on one GPU.
  const std::uint64_t total = 81559 * (1ULL << 20);
  const std::uint64_t busy_free = total - 19876 * (1ULL << 20);
  ASSERT_GT(one->total_bytes, busy_free);
  ASSERT_LT(one->total_bytes, total);
  const std::vector<HostCapacity> demo = {
      {"h",
       "local-demo",
       {{total, total}, {total, busy_free}, {total, total}, {total, busy_free}}}};
  auto p = placeOn(r, demo, false);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->front().fits) << p->front().reason;
  EXPECT_EQ(p->front().gpus_needed, 1U);
  EXPECT_EQ(p->front().per_gpu_bytes, one->total_bytes);
  EXPECT_EQ(p->front().headroom_bytes, static_cast<std::int64_t>(total - one->total_bytes));
  // Asked for TP 2: two GPUs, each with the TP-2 need, whatever TP 1 would do.
  r.tp = 2;
  auto two = computePlan(r);
  ASSERT_TRUE(two.has_value());
  auto p2 = placeOn(r, demo, true);
  ASSERT_TRUE(p2.has_value());
  EXPECT_TRUE(p2->front().fits);
  EXPECT_EQ(p2->front().gpus_needed, 2U);
  EXPECT_EQ(p2->front().per_gpu_bytes, two->total_bytes);
  // Asked for TP 8 on a 4-GPU host: refused with the reason, not placed at another degree.
  r.tp = 8;
  auto p8 = placeOn(r, demo, true);
  ASSERT_TRUE(p8.has_value());
  EXPECT_FALSE(p8->front().fits);
  EXPECT_EQ(p8->front().gpus_needed, 8U);
  EXPECT_FALSE(p8->front().reason.empty());
}

}  // namespace
}  // namespace hwl::planner

namespace hwl::planner {
namespace {

// Rental offers: the smallest degree an offer's GPUs allow whose per-GPU need fits its memory,
// then by price (then reliability, then id); the others after, each with its reason.
TEST(OfferRanking, CheapestFitFirstAtTheSmallestDegreeWithReasonsForTheRest) {
  const std::vector<TpNeed> needs = {
      {1, 100 * kGiB}, {2, 52 * kGiB}, {4, 27 * kGiB}, {8, 14 * kGiB}};
  const std::vector<OfferCapacity> offers = {
      {"a:1x80", 1, 80 * kGiB, 1.00, 0.99},   // 100 GiB at tp=1 > 80: does not fit
      {"b:2x80", 2, 80 * kGiB, 3.00, 0.90},   // tp=2: 52 <= 80, 28 GiB to spare
      {"c:2x80", 2, 80 * kGiB, 3.00, 0.99},   // the same, more reliable: ranks first
      {"d:4x24", 4, 24 * kGiB, 2.00, 0.99},   // tp=4: 27 > 24: does not fit
      {"e:8x24", 8, 24 * kGiB, 2.50, 0.50},   // tp=8: 14 <= 24, 10 GiB to spare
      {"f:1x141", 1, 141 * kGiB, 9.00, 1.0},  // tp=1: fits, but over the maximum price
  };
  const auto ranked = rankOffers(needs, offers, 5.0);
  ASSERT_EQ(ranked.size(), 6U);
  EXPECT_EQ(ranked[0].id, "e:8x24");
  EXPECT_TRUE(ranked[0].fits);
  EXPECT_EQ(ranked[0].tp, 8U);
  EXPECT_EQ(ranked[0].headroom_bytes, static_cast<std::int64_t>(10 * kGiB));
  EXPECT_EQ(ranked[1].id, "c:2x80");
  EXPECT_EQ(ranked[1].tp, 2U);
  EXPECT_EQ(ranked[1].headroom_bytes, static_cast<std::int64_t>(28 * kGiB));
  EXPECT_EQ(ranked[2].id, "b:2x80");
  // The rest, cheapest first, each saying why.
  EXPECT_EQ(ranked[3].id, "a:1x80");
  EXPECT_FALSE(ranked[3].fits);
  EXPECT_EQ(
      ranked[3].reason,
      "needs 100.00 GiB per GPU at tp=1 (the most its 1 GPU(s) allow), the offer has 80.00 GiB");
  EXPECT_EQ(ranked[4].id, "d:4x24");
  EXPECT_EQ(ranked[4].tp, 4U);
  EXPECT_EQ(ranked[5].id, "f:1x141");
  EXPECT_FALSE(ranked[5].fits);
  // Dearer than the cheapest fit: nobody asks why, no reason is written.
  EXPECT_EQ(ranked[5].reason, "");
  // When nothing fits, every offer says why.
  const auto alone = rankOffers(needs, {offers[5]}, 5.0);
  EXPECT_EQ(alone[0].reason, "costs 9.0000 USD/h, over the maximum of 5.0000");
  // Without a maximum the 141 GiB offer fits at tp=1.
  EXPECT_TRUE(rankOffers(needs, offers)[3].fits);
}

TEST(OfferRanking, ARealModelsNeedsDecideTheDegree) {
  auto model = loadModel(hwl::test_fixtures::find("models", "Llama-3.1-8B.config.json"));
  ASSERT_TRUE(model) << model.error().message;
  PlanRequest req;
  req.model = *model;
  req.context = 131072;
  auto needs = placementNeeds(req, false);
  ASSERT_TRUE(needs) << needs.error().message;
  ASSERT_GE(needs->size(), 2U);
  const std::uint64_t one = (*needs)[0].per_gpu_bytes;  // the need on a single GPU
  const std::uint64_t two = (*needs)[1].per_gpu_bytes;  // per GPU at tp=2
  ASSERT_LT(two, one);
  // One byte short on one GPU; exactly enough per GPU on two.
  const std::vector<OfferCapacity> offers = {
      {"short", 1, one - 1, 1.0, 0}, {"pair", 2, two, 2.0, 0}, {"big", 1, one, 3.0, 0}};
  auto ranked = rankOffers(*needs, offers);
  EXPECT_EQ(ranked[0].id, "pair");
  EXPECT_EQ(ranked[0].tp, 2U);
  EXPECT_EQ(ranked[0].headroom_bytes, 0);
  EXPECT_EQ(ranked[1].id, "big");
  EXPECT_EQ(ranked[1].tp, 1U);
  EXPECT_EQ(ranked[2].id, "short");
  EXPECT_EQ(ranked[2].headroom_bytes, -1);
}

}  // namespace
}  // namespace hwl::planner
