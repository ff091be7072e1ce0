// The plan arithmetic: KV formats, tensor parallelism, overrides and the inverse searches.
#include "hwl/planner/plan.hpp"

#include <gtest/gtest.h>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/load_model.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::planner {
namespace {

PlanRequest requestFor(const std::string& model, std::uint64_t context) {
  auto spec = loadModel(hwl::test_fixtures::find("models", model + ".config.json").string());
  EXPECT_TRUE(spec.has_value());
  PlanRequest req;
  req.model = *spec;
  req.context = context;
  return req;
}

Plan plan(const PlanRequest& req) {
  auto p = computePlan(req);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message);
  return *p;
}

TEST(Plan, KvFormatsIncludeBlockOverhead) {
  PlanRequest req = requestFor("Llama-3.1-8B", 1000);
  req.kv = "fp8";
  EXPECT_EQ(plan(req).kv_bytes_per_token, 65536U);
  req.kv = "q8_0";  // 1024 elements per row = 32 blocks of 34 bytes
  EXPECT_EQ(plan(req).kv_bytes_per_token, 32U * 2 * 32 * 34);
  req.kv = "q4_0";
  EXPECT_EQ(plan(req).kv_bytes_per_token, 32U * 2 * 32 * 18);
  req.kv = "fp32";
  EXPECT_EQ(plan(req).kv_bytes_per_token, 262144U);
  req.kv = "q3";
  EXPECT_EQ(computePlan(req).error().message,
            "unknown KV cache format 'q3' (use fp32, fp16, bf16, fp8, fp8_e4m3, fp8_e5m2, int8, "
            "q8_0, q4_0, "
            "q4_1, q5_0, q5_1, iq4_nl)");
}

TEST(Plan, TensorParallelSplitsAndReplicatesKvHeads) {
  HWL_NEEDS_SHARED_DATA();
  PlanRequest req = requestFor("Llama-3.1-70B", 8192);  // 8 KV heads
  req.kv = "bf16";
  const Plan one = plan(req);
  req.tp = 4;
  const Plan four = plan(req);
  EXPECT_EQ(four.kv_bytes_per_token * 4, one.kv_bytes_per_token);
  EXPECT_EQ(four.weights_bytes, (one.weights_bytes + 3) / 4);
  req.tp = 16;  // 16 ranks, 8 heads: every rank keeps one head
  const Plan sixteen = plan(req);
  EXPECT_EQ(sixteen.kv_bytes_per_token, 80U * 2 * 1 * 128 * 2);
  EXPECT_EQ(sixteen.kv_bytes_per_token * 8, one.kv_bytes_per_token);
  bool noted = false;
  for (const auto& n : sixteen.notes)
    noted |= n.find("replica of one KV head") != std::string::npos;
  EXPECT_TRUE(noted);
  // MLA's latent is not split: every rank holds it.
  PlanRequest ds = requestFor("DeepSeek-V3", 1);
  ds.kv = "bf16";
  ds.tp = 8;
  EXPECT_EQ(plan(ds).kv_bytes_per_token, 70272U);
}

TEST(Plan, BreakdownAddsUpAndWeightsFollowTheFormat) {
  PlanRequest req = requestFor("Llama-3.1-8B", 8192);
  req.batch = 4;
  const Plan p = plan(req);
  EXPECT_EQ(p.kv_bytes, 131072ULL * 8192 * 4);
  EXPECT_EQ(p.weights_bytes, 8030261248ULL * 2);
  EXPECT_EQ(p.overhead_bytes, defaultOverheadBytes(1));
  EXPECT_EQ(p.total_bytes,
            p.weights_bytes + p.kv_bytes + p.state_bytes + p.activations_bytes + p.overhead_bytes);
  // Workspace: 2048-token chunk x (2*4096 + 3*14336) bf16 + fp32 logits and probabilities.
  EXPECT_EQ(p.activations_bytes, 2048ULL * (2 * 4096 + 3 * 14336) * 2 + 4ULL * 128256 * 4 * 2);
  req.weights = "fp8";  // linear layers at 1 byte, embeddings and norms stay 16-bit
  const Plan fp8 = plan(req);
  const std::uint64_t emb = 2ULL * 128256 * 4096;
  EXPECT_EQ(fp8.weights_bytes,
            (8030261248ULL - emb - 4096 - 32 * 8192) + 2 * emb + 2 * 4096 + 2 * 32 * 8192);
  req.weights = "q4_k_m";
  EXPECT_NEAR(static_cast<double>(plan(req).weights_bytes), 8030261248.0 * 4.89 / 8, 1e6);
  req.activation_bytes = 123;
  req.overhead_bytes = 456;
  const Plan o = plan(req);
  EXPECT_EQ(o.activations_bytes, 123U);
  EXPECT_EQ(o.overhead_bytes, 456U);
  req.weights = "q1";
  EXPECT_EQ(computePlan(req).error().message.substr(0, 36), "unknown weights format 'q1' (use aut");
}

TEST(Plan, NativeQuantisedCheckpoints) {
  HWL_NEEDS_SHARED_DATA();
  // gpt-oss: MXFP4 experts (4.25 bits), everything else bf16.
  const Plan oss = plan(requestFor("gpt-oss-20b", 1));
  EXPECT_GT(oss.weights_bytes, 12'000'000'000ULL);
  EXPECT_LT(oss.weights_bytes, 14'000'000'000ULL);
  // DeepSeek-V3 FP8 with 128x128 block scales: about 1 byte per parameter.
  const Plan ds = plan(requestFor("DeepSeek-V3", 1));
  EXPECT_GT(ds.weights_bytes, 671'000'000'000ULL);
  EXPECT_LT(ds.weights_bytes, 690'000'000'000ULL);
}

TEST(Plan, InverseFindsTheLargestContextAndBatch) {
  HWL_NEEDS_SHARED_DATA();
  PlanRequest req = requestFor("Llama-3.1-8B", 8192);
  req.kv = "bf16";
  const std::uint64_t mem = 24ULL << 30;
  auto ctx = maxContextFor(req, mem, 1ULL << 32);
  ASSERT_TRUE(ctx.has_value());
  PlanRequest at = req;
  at.context = *ctx;
  EXPECT_LE(plan(at).total_bytes, mem);
  at.context = *ctx + 1;
  EXPECT_GT(plan(at).total_bytes, mem);
  // 24 GiB - 16.06 GB weights - 1 GiB - 0.21 GB workspace leaves 8.43 GB: 64k tokens at 128 KiB.
  EXPECT_EQ(
      *ctx,
      (mem - 2 * 8030261248ULL - defaultOverheadBytes(1) - plan(req).activations_bytes) / 131072);

  auto batch = maxBatchFor(req, mem);
  ASSERT_TRUE(batch.has_value());
  at = req;
  at.batch = *batch;
  EXPECT_LE(plan(at).total_bytes, mem);
  at.batch = *batch + 1;
  EXPECT_GT(plan(at).total_bytes, mem);
  EXPECT_EQ(*batch, 7U);  // 8.43 GB / (8192 x 128 KiB)

  // Too little memory for the weights: nothing fits.
  EXPECT_EQ(*maxContextFor(req, 8ULL << 30, 1ULL << 32), 0U);
  EXPECT_EQ(*maxBatchFor(req, 8ULL << 30), 0U);

  // computePlan fills them when GPU memory is given; all-sliding Mistral is bounded by the model.
  req.gpu_mem_bytes = mem;
  const Plan p = plan(req);
  EXPECT_EQ(p.max_context, *ctx);
  EXPECT_EQ(p.max_context_limited_by, "memory");
  EXPECT_EQ(p.max_batch, 7U);
  EXPECT_TRUE(*p.fits);
  PlanRequest mistral = requestFor("Mistral-7B-v0.1", 8192);
  mistral.gpu_mem_bytes = 80ULL << 30;
  const Plan mp = plan(mistral);
  EXPECT_EQ(mp.max_context, 32768U);
  EXPECT_EQ(mp.max_context_limited_by, "model");
}

TEST(Plan, StateDtypeAndBadRequests) {
  HWL_NEEDS_SHARED_DATA();
  PlanRequest req = requestFor("Nemotron-H-56B-Base-8K", 1000);
  req.batch = 3;
  EXPECT_EQ(plan(req).state_bytes, 3ULL * 459620352);  // model dtype (bf16), as vLLM
  req.state_dtype = "fp32";
  EXPECT_EQ(plan(req).state_bytes, 6ULL * 459620352);  // as llama.cpp keeps it
  req.state_dtype = "int3";
  EXPECT_EQ(computePlan(req).error().message,
            "state_dtype: unknown dtype 'int3' (use fp32, fp16, bf16, fp8, int8)");
  req.state_dtype = "auto";
  req.tp = 0;
  EXPECT_EQ(computePlan(req).error().message, "tp must be at least 1");
  req.tp = 1;
  req.batch = 0;
  EXPECT_EQ(computePlan(req).error().message, "batch must be at least 1");
}

// POST /v1/plan has no flag limits: a context and batch whose bytes pass 64 bits are an error,
// and the inverse searches count such a point as not fitting rather than wrapping around.
TEST(Plan, ByteCountsBeyond64BitsAreErrors) {
  PlanRequest req = requestFor("Llama-3.1-8B", 1ULL << 40);
  req.batch = 1ULL << 20;  // 2^40 x 2^20 x 131072 B = 2^77 B
  auto p = computePlan(req);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().message,
            "context 1099511627776 x batch 1048576 needs more bytes than 64 "
            "bits can count; no GPU holds that");
  req.batch = 1;
  req.context = 8192;
  auto mc = maxContextFor(req, 80ULL << 30, 1ULL << 62);
  ASSERT_TRUE(mc.has_value());
  // The largest context that fits: one token more does not (about 80 GiB less 14.96 GiB of
  // weights, the workspace and 1 GiB of overhead, at 131072 B per token).
  req.context = *mc;
  EXPECT_LE(computePlan(req)->total_bytes, 80ULL << 30);
  req.context = *mc + 1;
  EXPECT_GT(computePlan(req)->total_bytes, 80ULL << 30);
  EXPECT_GT(*mc, 500000U);
  req.context = 8192;
  auto mb = maxBatchFor(req, 80ULL << 30, 1ULL << 60);
  ASSERT_TRUE(mb.has_value());
  EXPECT_GT(*mb, 50U);
  EXPECT_LT(*mb, 70U);
}

TEST(Formats, ByteSizes) {
  EXPECT_EQ(*parseByteSize("80GiB"), 80ULL << 30);
  EXPECT_EQ(*parseByteSize("24GB"), 24'000'000'000ULL);
  EXPECT_EQ(*parseByteSize("1e9"), 1'000'000'000ULL);
  EXPECT_EQ(*parseByteSize(" 512 MiB "), 512ULL << 20);
  EXPECT_EQ(*parseByteSize("1.5KiB"), 1536U);
  EXPECT_EQ(*parseByteSize("123"), 123U);
  EXPECT_EQ(parseByteSize("80XB").error().message,
            "invalid size '80XB': unknown unit 'XB' (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
  EXPECT_EQ(parseByteSize("GiB").error().message, "invalid size 'GiB': no number");
  EXPECT_EQ(parseByteSize("").error().message, "invalid size '': empty");
  EXPECT_EQ(parseByteSize("-5GB").error().message, "invalid size '-5GB': no number");
  EXPECT_EQ(parseByteSize("1.3B").error().message,
            "invalid size '1.3B': not a whole number of bytes");
  EXPECT_EQ(formatBytes(80ULL << 30), "80.00 GiB");
}

}  // namespace
}  // namespace hwl::planner
