// config.json ingestion against the real configs and ground truth in shared/data/models.
#include "hwl/planner/hf_config.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "hwl/planner/json_text.hpp"
#include "hwl/planner/load_model.hpp"
#include "hwl/planner/plan.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::planner {
namespace {

namespace json = boost::json;

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json::object expectedJson() {
  return json::parse(readText(hwl::test_fixtures::find("models", "expected.json").string()))
      .as_object();
}

Plan planFor(const std::string& model, std::uint64_t context, const std::string& state = "auto") {
  auto spec = loadModel(hwl::test_fixtures::find("models", model + ".config.json").string());
  EXPECT_TRUE(spec.has_value()) << model << ": " << (spec ? "" : spec.error().message);
  PlanRequest req;
  req.model = *spec;
  req.context = context;
  req.kv = "bf16";
  req.state_dtype = state;
  auto plan = computePlan(req);
  EXPECT_TRUE(plan.has_value()) << (plan ? "" : plan.error().message);
  return *plan;
}

// Published "active" figures differ on the input embedding: DeepSeek's README states 36.6B
// "without the input embedding", and gpt-oss's model card counts the same way; Mixtral's 12.9B and
// Qwen3's A3B/A22B count it. The planner reports both (docs/planner.md).
const std::set<std::string> kActiveWithoutInputEmbedding = {"DeepSeek-V3", "gpt-oss-20b"};

TEST(HfConfigDataSet, EveryFigureOfExpectedJson) {
  HWL_NEEDS_SHARED_DATA();
  const json::object expected = expectedJson();
  int models = 0, figures = 0;
  for (const auto& [key, value] : expected) {
    const std::string name(key);
    if (name.rfind('_', 0) == 0) continue;
    SCOPED_TRACE(name);
    ++models;
    const json::object& e = value.as_object();
    const Plan p = planFor(name, 1024);
    if (const auto* kv = e.if_contains("kv_bytes_per_token")) {
      EXPECT_EQ(p.kv_bytes_per_token, kv->to_number<std::uint64_t>());
      ++figures;
    }
    if (const auto* at = e.if_contains("kv_bytes_at")) {
      for (const auto& [ctx, bytes] : at->as_object()) {
        const Plan pc = planFor(name, std::stoull(std::string(ctx)));
        EXPECT_EQ(pc.kv_bytes, bytes.to_number<std::uint64_t>()) << "context " << ctx;
        ++figures;
      }
    }
    if (const auto* st = e.if_contains("state_bytes_per_sequence")) {
      const Plan ps = planFor(name, 1024, "bf16");
      EXPECT_EQ(ps.state_bytes_per_sequence, st->to_number<std::uint64_t>());
      EXPECT_EQ(ps.state_bytes, st->to_number<std::uint64_t>());
      ++figures;
    }
    if (const auto* total = e.if_contains("params_total")) {
      const double want = total->to_number<double>();
      EXPECT_LE(std::abs(static_cast<double>(p.params_total) - want) / want, 0.005)
          << "params_total " << p.params_total << " vs " << want;
      ++figures;
    }
    if (const auto* active = e.if_contains("params_active")) {
      const double want = active->to_number<double>();
      const std::uint64_t got = kActiveWithoutInputEmbedding.count(name)
                                    ? p.params_active_excluding_input_embedding
                                    : p.params_active;
      EXPECT_LE(std::abs(static_cast<double>(got) - want) / want, 0.005)
          << "params_active " << got << " vs " << want;
      ++figures;
    }
  }
  EXPECT_EQ(models, 15);
  EXPECT_EQ(figures, 39);  // 15 KV rates, 4 windowed totals, 1 state, 14 totals, 5 active
}

TEST(HfConfigDataSet, ParamTotalsAreExactWhereTheFormulaIsKnown) {
  HWL_NEEDS_SHARED_DATA();
  EXPECT_EQ(planFor("Llama-3.1-8B", 1).params_total, 8030261248ULL);
  EXPECT_EQ(planFor("Mixtral-8x7B-v0.1", 1).params_active, 12879925248ULL);
  EXPECT_EQ(planFor("DeepSeek-V3", 1).params_total, 671026419200ULL);
  EXPECT_EQ(planFor("gpt-oss-20b", 1).params_total, 20914757184ULL);
}

TEST(HfConfigAttentionKinds, GqaUsesHeadDimFromConfig) {
  // Qwen3-30B-A3B: hidden/heads = 64 but head_dim = 128.
  const Plan p = planFor("Qwen3-30B-A3B", 1);
  EXPECT_EQ(p.kv_bytes_per_token, 48ULL * 2 * 4 * 128 * 2);
}

TEST(HfConfigAttentionKinds, MlaIsLatentPlusRopePerLayer) {
  HWL_NEEDS_SHARED_DATA();
  const Plan p = planFor("DeepSeek-V3", 1);
  EXPECT_EQ(p.kv_bytes_per_token, 61ULL * (512 + 64) * 2);
  EXPECT_GT(p.params_mtp, 11'000'000'000ULL);  // the MTP module is reported apart
}

TEST(HfConfigAttentionKinds, MlaQ8_0MatchesTheLlamaCppLog) {
  HWL_NEEDS_SHARED_DATA();
  auto spec = loadModel(hwl::test_fixtures::find("models", "DeepSeek-V3.config.json").string());
  ASSERT_TRUE(spec.has_value());
  PlanRequest req;
  req.model = *spec;
  req.context = 32768;
  req.kv = "q8_0";
  auto p = computePlan(req);
  ASSERT_TRUE(p.has_value());
  // llama.cpp: "KV self size = 1166.62 MiB" at n_ctx 32768 with q8_0.
  EXPECT_EQ(p->kv_bytes, 61ULL * 576 / 32 * 34 * 32768);
  EXPECT_NEAR(static_cast<double>(p->kv_bytes) / (1 << 20), 1166.62, 0.01);
}

TEST(HfConfigAttentionKinds, SlidingLayersAreCappedAtTheWindow) {
  HWL_NEEDS_SHARED_DATA();
  const Plan mistral = planFor("Mistral-7B-v0.1", 100000);
  EXPECT_EQ(mistral.kv_bytes, 131072ULL * 4096);
  const Plan oss = planFor("gpt-oss-20b", 100000);
  EXPECT_EQ(oss.kv_bytes, 24576ULL * 100000 + 12ULL * 2048 * 128);
  EXPECT_EQ(oss.kv_bytes_per_token_all_layers, 49152ULL);
}

TEST(HfConfigAttentionKinds, HybridPatternCountsOnlyAttentionLayers) {
  HWL_NEEDS_SHARED_DATA();
  auto spec =
      loadModel(hwl::test_fixtures::find("models", "Nemotron-H-56B-Base-8K.config.json").string());
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  int attn = 0, mamba = 0, mlp = 0;
  for (const auto& l : spec->layers) {
    attn += l.kind == LayerKind::kAttention;
    mamba += l.kind == LayerKind::kMamba2;
    mlp += l.kind == LayerKind::kMlpOnly;
  }
  EXPECT_EQ(attn, 10);
  EXPECT_EQ(mamba, 54);
  EXPECT_EQ(mlp, 54);
  // State is independent of context, and llama.cpp keeps it in fp32 (twice the bf16 figure).
  EXPECT_EQ(planFor("Nemotron-H-56B-Base-8K", 8192, "bf16").state_bytes, 459620352ULL);
  EXPECT_EQ(planFor("Nemotron-H-56B-Base-8K", 1, "fp32").state_bytes, 2ULL * 459620352);
}

TEST(HfConfigParse, InfinityLiteralIsAccepted) {
  EXPECT_EQ(replaceNonFiniteLiterals(
                R"({"a": [0.0, Infinity], "b": -Infinity, "c": NaN, "s": "Infinity NaN"})"),
            R"({"a": [0.0, null], "b": null, "c": null, "s": "Infinity NaN"})");
  EXPECT_EQ(replaceNonFiniteLiterals(R"({"xInfinity": "a\"Infinity", "NaNo": 1})"),
            R"({"xInfinity": "a\"Infinity", "NaNo": 1})");
}

TEST(HfConfigParse, NestedTextConfigIsUnwrapped) {
  auto spec = parseHfConfig(R"({
    "model_type": "gemma3", "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "num_hidden_layers": 34,
      "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 262208,
      "intermediate_size": 10240, "sliding_window": 1024, "sliding_window_pattern": 6}})");
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  EXPECT_EQ(spec->layers.size(), 34U);
  int sliding = 0;
  for (const auto& l : spec->layers) sliding += l.sliding_window == 1024;
  EXPECT_EQ(sliding, 34 - 5);  // layers 5, 11, 17, 23, 29 are global
  EXPECT_EQ(spec->layers[5].sliding_window, 0U);
  EXPECT_TRUE(spec->tied_embeddings);
}

TEST(HfConfigParse, Gemma2AlternatesAndQwen2FlagsSliding) {
  auto g = parseHfConfig(R"({"model_type": "gemma2", "hidden_size": 2304, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 256000,
    "intermediate_size": 9216, "sliding_window": 4096})");
  ASSERT_TRUE(g.has_value()) << g.error().message;
  EXPECT_EQ(g->layers[0].sliding_window, 4096U);
  EXPECT_EQ(g->layers[1].sliding_window, 0U);
  auto q = parseHfConfig(R"({"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24,
    "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
    "intermediate_size": 4864, "sliding_window": 4096, "use_sliding_window": true,
    "max_window_layers": 21})");
  ASSERT_TRUE(q.has_value()) << q.error().message;
  EXPECT_EQ(q->layers[20].sliding_window, 0U);
  EXPECT_EQ(q->layers[21].sliding_window, 4096U);
}

TEST(HfConfigParse, JambaPeriodsGiveMamba1AndMoeLayers) {
  auto j = parseHfConfig(R"({"model_type": "jamba", "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 65536,
    "intermediate_size": 14336, "attn_layer_period": 8, "attn_layer_offset": 4,
    "expert_layer_period": 2, "expert_layer_offset": 1, "num_experts": 16,
    "num_experts_per_tok": 2, "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2,
    "mamba_dt_rank": 256, "tie_word_embeddings": false, "torch_dtype": "bfloat16"})");
  ASSERT_TRUE(j.has_value()) << j.error().message;
  int attn = 0, moe = 0;
  for (const auto& l : j->layers) {
    attn += l.kind == LayerKind::kAttention;
    moe += l.moe;
  }
  EXPECT_EQ(attn, 4);
  EXPECT_EQ(moe, 16);
  EXPECT_EQ(j->layers[0].kind, LayerKind::kMamba1);
  EXPECT_EQ(j->layers[0].ssm_state_elems, 8192ULL * 16);
  EXPECT_EQ(j->layers[0].conv_state_elems, 3ULL * 8192);
  // Jamba v0.1 is published as 51.6B total, 12B active.
  EXPECT_NEAR(static_cast<double>(j->paramsTotal()) / 51.6e9, 1.0, 0.01);
}

TEST(HfConfigErrors, MalformedInputsNameTheProblem) {
  auto msg = [](std::string_view text) {
    auto r = parseHfConfig(text);
    return r ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(msg("{"), "config.json: invalid JSON: incomplete JSON");
  EXPECT_EQ(msg("[1]"), "config.json: top level must be an object, got an array");
  EXPECT_EQ(msg(R"({"num_hidden_layers": 2, "vocab_size": 10})"),
            "config.json: missing required key 'hidden_size'");
  EXPECT_EQ(msg(R"({"hidden_size": "4096", "num_hidden_layers": 2, "vocab_size": 10})"),
            "config.json: key 'hidden_size' must be a non-negative integer, got a string");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 10, "num_attention_heads": 6,
                   "num_key_value_heads": 4})"),
      "config.json: num_attention_heads (6) is not a multiple of num_key_value_heads (4)");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 10, "num_attention_heads": 3})"),
      "config.json: no 'head_dim' and hidden_size (64) is not a multiple of num_attention_heads "
      "(3)");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 3, "vocab_size": 10, "num_attention_heads": 4,
                   "layer_types": ["full_attention", "sliding_attention"]})"),
      "config.json: layer_types has 2 entries but num_hidden_layers is 3");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 10, "num_attention_heads": 4,
                   "layer_types": ["sliding_attention"]})"),
      "config.json: a sliding layer needs key 'sliding_window'");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 10, "num_attention_heads": 4,
                   "layer_types": ["banana"]})"),
      "config.json: layer_types[0] is 'banana', not one of full_attention, sliding_attention, "
      "chunked_attention, linear_attention, mamba");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 10, "num_attention_heads": 4,
                   "hybrid_override_pattern": "M"})"),
      "config.json: hybrid_override_pattern has 1 entries but num_hidden_layers is 2");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 10, "num_attention_heads": 4,
                   "num_local_experts": 8})"),
      "config.json: missing required key 'num_experts_per_tok'");
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 10, "num_attention_heads": 4,
                   "intermediate_size": 128, "torch_dtype": "int8"})"),
      "config.json: torch_dtype 'int8' is not a floating-point type");
  // A dense MLP's width is not guessed.
  EXPECT_EQ(
      msg(R"({"hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 10, "num_attention_heads": 4})"),
      "config.json: missing required key 'intermediate_size'");
}

TEST(HfConfigErrors, TruncatedRealConfigIsAnErrorAtEveryCut) {
  HWL_NEEDS_SHARED_DATA();
  const std::string text =
      readText(hwl::test_fixtures::find("models", "Nemotron-H-56B-Base-8K.config.json").string());
  ASSERT_GT(text.size(), 1000U);
  for (std::size_t cut = 0; cut < text.size() - 2; cut += 7) {
    auto r = parseHfConfig(std::string_view(text).substr(0, cut));
    EXPECT_FALSE(r.has_value()) << "cut " << cut;
  }
}

}  // namespace
}  // namespace hwl::planner
