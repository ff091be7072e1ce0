// Throughput upper bounds and the GPU table: which GPU a reported name denotes, and the roofline
// figures of a plan on it.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "hwl/planner/gpus.hpp"
#include "hwl/planner/load_model.hpp"
#include "hwl/planner/plan.hpp"
#include "hwl/planner/plan_command.hpp"
#include "hwl/planner/plan_json.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::planner {
namespace {

std::string gpuOf(std::string_view reported) {
  auto g = gpuPeak(reported);
  return g ? g->name : "?";
}

TEST(GpuTable, ReportedNamesMapToTheirRows) {
  // What nvidia-smi --query-gpu=name and amd-smi print, and what people type.
  EXPECT_EQ(gpuOf("NVIDIA H100 80GB HBM3"), "H100 SXM");
  EXPECT_EQ(gpuOf("NVIDIA H100 PCIe"), "H100 PCIe");
  EXPECT_EQ(gpuOf("NVIDIA H100 NVL"), "H100 NVL");
  EXPECT_EQ(gpuOf("NVIDIA H200"), "H200");
  EXPECT_EQ(gpuOf("h100-sxm"), "H100 SXM");
  EXPECT_EQ(gpuOf("NVIDIA A100-SXM4-80GB"), "A100 80GB SXM");
  EXPECT_EQ(gpuOf("NVIDIA A100-SXM4-40GB"), "A100 40GB SXM");
  EXPECT_EQ(gpuOf("NVIDIA A100 80GB PCIe"), "A100 80GB PCIe");
  EXPECT_EQ(gpuOf("NVIDIA A100-PCIE-40GB"), "A100 40GB PCIe");
  EXPECT_EQ(gpuOf("a100-80gb"), "A100 80GB SXM");
  EXPECT_EQ(gpuOf("NVIDIA L40S"), "L40S");
  EXPECT_EQ(gpuOf("NVIDIA L40"), "L40");
  EXPECT_EQ(gpuOf("NVIDIA L4"), "L4");
  EXPECT_EQ(gpuOf("NVIDIA A10"), "A10");
  EXPECT_EQ(gpuOf("NVIDIA GeForce RTX 4090"), "RTX 4090");
  EXPECT_EQ(gpuOf("AMD Instinct MI300X"), "MI300X");
  EXPECT_EQ(gpuOf("AMD Instinct MI250X"), "MI250X");
  EXPECT_EQ(gpuOf("mi250"), "MI250");
  // Short names do not swallow longer model numbers, and unknown GPUs are unknown.
  EXPECT_EQ(gpuOf("NVIDIA A1000"), "?");
  EXPECT_EQ(gpuOf("NVIDIA L400"), "?");
  EXPECT_EQ(gpuOf("Radeon RX 7900"), "?");
  EXPECT_EQ(gpuOf(""), "?");
  EXPECT_NE(unknownGpuMessage("X1").find("known: H200, H100 NVL"), std::string::npos);
}

PlanRequest llama8b(std::uint64_t context, std::uint64_t batch) {
  auto spec = loadModel(hwl::test_fixtures::find("models", "Llama-3.1-8B.config.json").string());
  EXPECT_TRUE(spec.has_value());
  PlanRequest req;
  req.model = *spec;
  req.context = context;
  req.batch = batch;
  req.gpu = gpuPeak("H100 SXM");
  return req;
}

TEST(Throughput, DecodeIsTheBandwidthRooflineOfTheBytesAStepReads) {
  const PlanRequest req = llama8b(8192, 4);
  auto plan = computePlan(req);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ASSERT_TRUE(plan->throughput.has_value());
  const ThroughputEstimate& t = *plan->throughput;
  // Weights read: every bf16 weight but the input embedding (128256 x 4096 rows are gathered,
  // not read): 2 x (8030261248 - 525336576) = 15009849344 B.
  EXPECT_NEAR(static_cast<double>(t.weights_read_bytes), 15009849344.0, 2.0);
  // KV read: 4 sequences x 8192 tokens x 131072 B.
  EXPECT_EQ(t.kv_read_bytes, 4ULL * 8192 * 131072);
  // 3.35e12 B/s / (15009849344 + 4294967296) B = 173.5 steps/s, 4 tokens each.
  EXPECT_NEAR(t.decode_tokens_per_s_per_sequence, 3.35e12 / (15009849344.0 + 4294967296.0), 0.01);
  EXPECT_NEAR(t.decode_tokens_per_s, 4 * t.decode_tokens_per_s_per_sequence, 1e-6);
  // Prefill: 2 x 7504924672 active (no input embedding) + 32 layers x 2 x 32 heads x (128 + 128)
  // x 4096 (half the context) FLOPs per token, at 989.4 TFLOPS bf16.
  const double flops = 2.0 * 7504924672.0 + 32.0 * 2 * 32 * 256 * 4096;
  EXPECT_NEAR(t.prefill_flops_per_token, flops, 1.0);
  EXPECT_NEAR(t.prefill_tokens_per_s, 989.4e12 / flops, 0.01);
  EXPECT_EQ(t.flops_dtype, "bf16");
  // With no --gpu-mem the GPU's own memory decides the fit: 80 GB.
  EXPECT_EQ(plan->gpu_mem_bytes, 80ULL * 1000 * 1000 * 1000);
}

TEST(Throughput, TensorParallelGpusShareTheWork) {
  PlanRequest req = llama8b(8192, 1);
  const auto one = computePlan(req);
  req.tp = 2;
  const auto two = computePlan(req);
  ASSERT_TRUE(one && two);
  // Each GPU reads half the weights and half the KV heads, and does half the FLOPs.
  EXPECT_NEAR(two->throughput->prefill_tokens_per_s, 2 * one->throughput->prefill_tokens_per_s,
              1e-6 * one->throughput->prefill_tokens_per_s);
  EXPECT_GT(two->throughput->decode_tokens_per_s, 1.9 * one->throughput->decode_tokens_per_s);
}

TEST(Throughput, MoeDecodeReadsTheExpertsTheBatchTouches) {
  auto spec = loadModel(hwl::test_fixtures::find("models", "Qwen3-30B-A3B.config.json").string());
  ASSERT_TRUE(spec.has_value());
  PlanRequest req;
  req.model = *spec;
  req.context = 1;
  req.gpu = gpuPeak("H100 SXM");
  auto at = [&](std::uint64_t batch) {
    req.batch = batch;
    auto p = computePlan(req);
    EXPECT_TRUE(p.has_value());
    return p->throughput->weights_read_bytes;
  };
  // Batch 1 reads 8 of 128 experts per layer: close to the 3.35B active parameters x 2 bytes
  // less the embedding; a batch of 256 touches nearly every expert.
  const auto one = static_cast<double>(at(1));
  const double active_bytes = 2.0 * (3353032704.0 - 151936.0 * 2048);
  EXPECT_NEAR(one, active_bytes, 0.001 * active_bytes);
  EXPECT_GT(static_cast<double>(at(256)), 0.99 * 2.0 * (30532122624.0 - 151936.0 * 2048));
}

TEST(Throughput, PlanJsonLabelsTheFiguresAsUpperBounds) {
  PlanCliOptions o;
  o.model = hwl::test_fixtures::find("models", "Llama-3.1-8B.config.json").string();
  o.context = 4096;
  o.gpu = "NVIDIA A100-SXM4-80GB";
  auto req = planRequestFromCli(o);
  ASSERT_TRUE(req.has_value()) << req.error().message;
  auto plan = computePlan(*req);
  ASSERT_TRUE(plan.has_value());
  const auto j = planToJson(*plan);
  const auto& t = j.at("throughput").as_object();
  EXPECT_TRUE(t.at("upper_bound").as_bool());
  EXPECT_EQ(t.at("gpu").as_string(), "A100 80GB SXM");
  EXPECT_GT(t.at("decode_tokens_per_s_max").as_double(), 0);
  EXPECT_NE(planToTable(*plan).find("upper bounds on A100 80GB SXM"), std::string::npos);
  o.gpu = "Z9000";
  auto bad = planRequestFromCli(o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message.rfind("--gpu: unknown GPU 'Z9000' (known: ", 0), 0U);
  // From JSON too.
  auto from_json = planRequestFromJson(boost::json::parse(
      R"({"model": {"hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 10,
          "num_attention_heads": 1, "intermediate_size": 64}, "context": 8, "gpu": "L4"})"));
  ASSERT_TRUE(from_json.has_value()) << from_json.error().message;
  EXPECT_EQ(from_json->gpu->name, "L4");
}

}  // namespace
}  // namespace hwl::planner
