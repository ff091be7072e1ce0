// Model families of the planner's second round, on real configs (tests/fixtures/models, with
// their provenance in tests/fixtures/SOURCES.md). Every figure is derived in the comment from the
// formula and, where a published count exists, checked against it.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <string>

#include "hwl/planner/hf_config.hpp"
#include "hwl/planner/load_model.hpp"
#include "hwl/planner/plan.hpp"
#include "hwl/planner/plan_json.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::planner {
namespace {

ModelSpec load(const std::string& name) {
  auto spec = loadModel(hwl::test_fixtures::find("models", name + ".config.json").string());
  EXPECT_TRUE(spec.has_value()) << name << ": " << (spec ? "" : spec.error().message);
  return spec ? *spec : ModelSpec{};
}

Plan planOf(const ModelSpec& spec, std::uint64_t context, const std::string& weights = "auto") {
  PlanRequest req;
  req.model = spec;
  req.context = context;
  req.kv = "bf16";
  req.weights = weights;
  auto plan = computePlan(req);
  EXPECT_TRUE(plan.has_value()) << (plan ? "" : plan.error().message);
  return plan ? *plan : Plan{};
}

bool hasDefault(const ModelSpec& s, const std::string& key) {
  for (const auto& d : s.defaults) {
    if (d.key == key) return true;
  }
  return false;
}

double relErr(std::uint64_t got, double want) {
  return std::abs(static_cast<double>(got) - want) / want;
}

// Qwen3-Next-80B-A3B (aiconfigurator, verbatim): no layer_types, so full_attention_interval 4
// makes layers 3, 7, ..., 47 full attention (12) and the other 36 gated delta-net.
TEST(HfRealConfigs, Qwen3NextKeepsKvOnFullLayersAndStateOnLinearOnes) {
  const ModelSpec s = load("Qwen3-Next-80B-A3B-Thinking");
  ASSERT_EQ(s.layers.size(), 48U);
  int full = 0;
  for (std::size_t i = 0; i < 48; ++i) {
    const bool is_full = (i + 1) % 4 == 0;
    EXPECT_EQ(s.layers[i].kind, is_full ? LayerKind::kAttention : LayerKind::kLinearAttention);
    full += is_full ? 1 : 0;
  }
  EXPECT_EQ(full, 12);
  const Plan p = planOf(s, 1024);
  // KV: 12 layers x (K+V) x 2 KV heads x 256 x 2 B = 24576 B per token.
  EXPECT_EQ(p.kv_bytes_per_token, 12ULL * 2 * 2 * 256 * 2);
  // State per sequence, 36 delta-net layers: conv (4-1) x (2 x 16 x 128 + 32 x 128) = 24576
  // elements + delta rule 32 x 128 x 128 = 524288, x 2 B (bf16 as vLLM keeps it).
  EXPECT_EQ(p.state_bytes_per_sequence, 36ULL * (3 * 8192 + 32 * 128 * 128) * 2);
  EXPECT_EQ(p.state_bytes_per_sequence, 39518208U);
  // Gated attention: q_proj is 2048 x (16 x 256 x 2), k and v 2048 x 512, o 4096 x 2048, q/k norms
  // 2 x 256.
  EXPECT_EQ(s.layers[3].params.attention,
            2048ULL * 8192 + 2 * 2048ULL * 512 + 4096ULL * 2048 + 2 * 256);
  // Routed experts 512 x 3 x 2048 x 512, the shared expert 3 x 2048 x 512 plus its 2048 x 1 gate.
  EXPECT_EQ(s.layers[0].params.experts, 512ULL * 3 * 2048 * 512);
  EXPECT_EQ(s.layers[0].params.dense_mlp, 3ULL * 2048 * 512 + 2048);
  // The model card: 80B total (79,674,391,296 here; the checkpoint adds an MTP layer the config
  // does not describe), 3B activated.
  EXPECT_LT(relErr(p.params_total, 80e9), 0.005);
  EXPECT_EQ(p.params_total, 79674391296ULL);
}

// Gemma 3 1B (mlc-llm preset): a text-only gemma3_text with every 6th layer global. keras-hub's
// preset gives 999,885,952 parameters for the same model.
TEST(HfRealConfigs, Gemma3OneBillionMatchesThePublishedCount) {
  const ModelSpec s = load("gemma-3-1b-it");
  const Plan p = planOf(s, 4096);
  // 26 layers x (q 1152x1024 + k,v 1152x256 + o 1024x1152 + q/k norms 512 + MLP 3 x 1152 x 6912 +
  // 4 norms x 1152) + embedding 262144 x 1152 (tied) + final norm 1152.
  const std::uint64_t layer =
      1152ULL * 1024 + 2 * 1152ULL * 256 + 1024ULL * 1152 + 512 + 3ULL * 1152 * 6912 + 4 * 1152;
  EXPECT_EQ(p.params_total, 26 * layer + 262144ULL * 1152 + 1152);
  EXPECT_EQ(p.params_total, 999885952ULL);
  // Global layers 5, 11, 17, 23 (4) keep 4096 tokens, the 22 others 512: (K+V) x 1 head x 256 x
  // 2 B = 1024 B per token and layer.
  EXPECT_EQ(p.kv_bytes_per_token, 4ULL * 1024);
  EXPECT_EQ(p.kv_bytes, 4ULL * 1024 * 4096 + 22ULL * 1024 * 512);
  EXPECT_TRUE(hasDefault(s, "tie_word_embeddings"));  // Gemma3TextConfig ties by default
}

// Gemma 2 9B (mlc-llm preset): even layers slide; the early config also spells the window
// sliding_window_size. Published: 9,241,705,984 parameters.
TEST(HfRealConfigs, Gemma2AlternatesAndReadsBothWindowSpellings) {
  const ModelSpec s = load("gemma-2-9b");
  const Plan p = planOf(s, 8192);
  EXPECT_EQ(p.params_total, 9241705984ULL);
  // 21 global layers x (K+V) x 8 heads x 256 x 2 B = 172032 B per token; 21 sliding layers keep
  // 4096 tokens.
  EXPECT_EQ(p.kv_bytes_per_token, 21ULL * 8192);
  EXPECT_EQ(p.kv_bytes, 21ULL * 8192 * 8192 + 21ULL * 8192 * 4096);
  EXPECT_EQ(s.layers[0].sliding_window, 4096U);
  EXPECT_EQ(s.layers[1].sliding_window, 0U);
}

// ChatGLM3-6B (mlc-llm preset): 2 KV groups (multi_query_group_num), head size kv_channels,
// q/k/v biases (add_qkv_bias), a SwiGLU MLP of ffn_hidden_size, padded_vocab_size rows.
// Published: 6,243,584,000 parameters.
TEST(HfRealConfigs, ChatGlmLegacySpellings) {
  const ModelSpec s = load("chatglm3-6b");
  ASSERT_EQ(s.layers.size(), 28U);
  EXPECT_EQ(s.layers[0].n_kv_heads, 2U);
  EXPECT_EQ(s.layers[0].head_dim_k, 128U);
  const Plan p = planOf(s, 8192);
  // QKV 4096 x (4096 + 2 x 256) + bias 4608, dense 4096 x 4096, MLP 3 x 4096 x 13696, 2 norms.
  const std::uint64_t layer =
      4096ULL * 4608 + 4608 + 4096ULL * 4096 + 3ULL * 4096 * 13696 + 2 * 4096;
  EXPECT_EQ(p.params_total, 28 * layer + 2 * 65024ULL * 4096 + 4096);
  EXPECT_EQ(p.params_total, 6243584000ULL);
  // 28 layers x (K+V) x 2 groups x 128 x 2 B = 28672 B per token (MHA would be 16x that).
  EXPECT_EQ(p.kv_bytes_per_token, 28672U);
  // torch_dtype float16: served as fp16.
  EXPECT_EQ(p.weights_format, "auto (fp16)");
}

// Qwen1.5-MoE-A2.7B (mlc-llm preset qwen2moe): 60 experts, top 4, a shared expert of 5632 with a
// sigmoid gate, q/k/v biases. Published: 14.3B total, 2.7B activated.
TEST(HfRealConfigs, Qwen2MoeSharedExpert) {
  const ModelSpec s = load("Qwen1.5-MoE-A2.7B");
  const Plan p = planOf(s, 4096);
  EXPECT_EQ(s.layers[0].params.dense_mlp, 3ULL * 2048 * 5632 + 2048);
  EXPECT_EQ(s.layers[0].params.experts, 60ULL * 3 * 2048 * 1408);
  EXPECT_LT(relErr(p.params_total, 14.3e9), 0.005);
  EXPECT_EQ(p.params_total, 14315784192ULL);
  EXPECT_LT(relErr(p.params_active, 2.7e9), 0.005);
  // No head_dim key: hidden / heads = 128, recorded as derived.
  ASSERT_FALSE(s.defaults.empty());
  EXPECT_EQ(s.defaults.front().key, "head_dim");
  EXPECT_EQ(s.defaults.front().from, "derived");
}

// GPT-2 (mlc-llm preset): n_embd / n_head / n_layer, a learned table of n_positions positions,
// biases on every projection, LayerNorms with bias, tied output. Published: 124,439,808.
TEST(HfRealConfigs, Gpt2Spellings) {
  const ModelSpec s = load("gpt2");
  const Plan p = planOf(s, 1024);
  // Per layer: c_attn 768 x 2304 + 2304, c_proj 768 x 768 + 768, c_fc 768 x 3072 + 3072,
  // c_proj 3072 x 768 + 768, 2 LayerNorms x 2 x 768; plus wte 50257 x 768, wpe 1024 x 768, ln_f.
  const std::uint64_t layer = 768ULL * 2304 + 2304 + 768ULL * 768 + 768 + 768ULL * 3072 + 3072 +
                              3072ULL * 768 + 768 + 4 * 768;
  EXPECT_EQ(p.params_total, 12 * layer + 50257ULL * 768 + 1024ULL * 768 + 2 * 768);
  EXPECT_EQ(p.params_total, 124439808ULL);
  EXPECT_EQ(p.kv_bytes_per_token, 12ULL * 2 * 768 * 2);  // MHA: 12 heads x 64
  // The n_inner default (4 x n_embd) is recorded.
  EXPECT_TRUE(hasDefault(s, "intermediate_size"));
}

// SantaCoder (GPT-BigCode, mlc-llm preset): multi_query means one KV head.
TEST(HfRealConfigs, GptBigCodeMultiQuery) {
  const ModelSpec s = load("gpt_bigcode-santacoder");
  EXPECT_EQ(s.layers[0].n_kv_heads, 1U);
  const Plan p = planOf(s, 2048);
  // 24 layers x (K+V) x 1 head x 128 x 2 B.
  EXPECT_EQ(p.kv_bytes_per_token, 24ULL * 2 * 128 * 2);
  // c_attn 2048 x (2048 + 2 x 128) + bias, c_proj, MLP 2048 x 8192 with biases, 2 LayerNorms;
  // wte 49280 x 2048, wpe 2048 x 2048, ln_f. Published as 1.1B.
  const std::uint64_t layer = 2048ULL * 2304 + 2304 + 2048ULL * 2048 + 2048 + 2048ULL * 8192 +
                              8192 + 8192ULL * 2048 + 2048 + 4 * 2048;
  EXPECT_EQ(p.params_total, 24 * layer + 49280ULL * 2048 + 2048ULL * 2048 + 2 * 2048);
}

// LLaVA 1.5 7B (mlc-llm preset): a text_config of seven keys, the rest LlamaConfig's defaults;
// a CLIP ViT-L/14-336 tower and a two-layer projector. Published: 7,063,427,072 parameters.
TEST(HfRealConfigs, LlavaTakesLlamaDefaultsAndCountsItsVisionTower) {
  const ModelSpec s = load("llava-1.5-7b-hf");
  for (const char* k :
       {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"}) {
    EXPECT_TRUE(hasDefault(s, k)) << k;
  }
  const Plan p = planOf(s, 4096);
  // CLIP: patch 3 x 14 x 14 x 1024 (no bias), class token 1024, 577 positions x 1024, pre and
  // post LayerNorm, 24 layers x (4 x 1024^2 + 4 x 1024 + 2 x 1024 x 4096 + 4096 + 1024 +
  // 4 x 1024); projector 1024 x 4096 + 4096 + 4096 x 4096 + 4096.
  const std::uint64_t clip =
      3ULL * 14 * 14 * 1024 + 1024 + 577ULL * 1024 + 4 * 1024 +
      24 * (4ULL * 1024 * 1024 + 4 * 1024 + 2ULL * 1024 * 4096 + 4096 + 1024 + 4 * 1024);
  const std::uint64_t projector = 1024ULL * 4096 + 4096 + 4096ULL * 4096 + 4096;
  EXPECT_EQ(p.params_vision, clip + projector);
  EXPECT_EQ(p.params_total, 7063427072ULL);
  // Vision weights are resident (fp16 here) but not active for text tokens.
  EXPECT_EQ(p.params_active, p.params_total - p.params_vision);
  EXPECT_EQ(p.weights_bytes, 2 * p.params_total);
}

// Qwen2.5-VL 7B (tt-metal, verbatim): the language model's keys at the top level, a vision
// tower of `depth` blocks with RMSNorms and a gated MLP, and a patch merger. Published:
// 8,292,166,656 parameters.
TEST(HfRealConfigs, Qwen25VlVisionTowerIsResident) {
  const ModelSpec s = load("Qwen2.5-VL-7B-Instruct");
  const Plan p = planOf(s, 4096);
  // Patch embedding 3 x 2 x 14 x 14 x 1280 (no bias); 32 blocks x (2 RMSNorms 2 x 1280, qkv
  // 1280 x 3840 + 3840, proj 1280^2 + 1280, gate and up 1280 x 3420 + 3420 each, down
  // 3420 x 1280 + 1280); merger: RMSNorm 1280, 5120 x 5120 + 5120, 5120 x 3584 + 3584.
  const std::uint64_t block = 2 * 1280 + 1280ULL * 3840 + 3840 + 1280ULL * 1280 + 1280 +
                              2 * (1280ULL * 3420 + 3420) + 3420ULL * 1280 + 1280;
  const std::uint64_t vision =
      3ULL * 2 * 14 * 14 * 1280 + 32 * block + 1280 + 5120ULL * 5120 + 5120 + 5120ULL * 3584 + 3584;
  EXPECT_EQ(p.params_vision, vision);
  EXPECT_EQ(p.params_total, 8292166656ULL);
  // The text model's KV: 28 layers x (K+V) x 4 heads x 128 x 2 B ("sliding_window": null).
  EXPECT_EQ(p.kv_bytes_per_token, 28ULL * 2 * 4 * 128 * 2);
}

// Devstral Small 2 (tt-metal, verbatim): a mistral3 wrapper, an FP8 language model whose
// lm_head, vision tower and projector stay in bf16 (modules_to_not_convert), a Pixtral tower.
// Its architecture is Mistral Small 3.1's, published with 24,011,361,280 parameters.
TEST(HfRealConfigs, Mistral3PixtralTowerAndFp8Text) {
  const ModelSpec s = load("Devstral-Small-2-24B-Instruct");
  const Plan p = planOf(s, 4096);
  // Pixtral: patch conv 3 x 14 x 14 x 1024, ln_pre 1024, 24 x (2 RMSNorms + q/k/v/o 4 x 1024^2 +
  // gated MLP 3 x 1024 x 4096); projector: RMSNorm 1024, merger 4096 x 1024, 1024 x 5120,
  // 5120 x 5120.
  const std::uint64_t vision = 3ULL * 14 * 14 * 1024 + 1024 +
                               24 * (2 * 1024 + 4ULL * 1024 * 1024 + 3ULL * 1024 * 4096) + 1024 +
                               4096ULL * 1024 + 1024ULL * 5120 + 5120ULL * 5120;
  EXPECT_EQ(p.params_vision, vision);
  EXPECT_EQ(p.params_total, 24011361280ULL);
  // Weights: the 40 layers' linear weights at 1 byte, norms, both embeddings and the vision tower
  // at 2 bytes.
  const std::uint64_t linear = 40 * (5120ULL * 4096 * 2 + 2 * 5120ULL * 1024 + 3ULL * 5120 * 32768);
  const std::uint64_t sixteen_bit = p.params_total - linear;
  EXPECT_EQ(p.weights_bytes, linear + 2 * sixteen_bit);
  EXPECT_EQ(p.weights_format, "auto (fp8)");
}

// Verbatim copies of the published configs of Gemma 3 4B/27B (minimal text_config + SigLIP),
// Llama 4 Scout (chunked attention, shared expert, Llama 4 vision), gpt-oss-120b (the model
// card's active convention), Falcon-7B's first RefinedWebModel config, Mamba 2.8B and
// GPT-NeoX-20B: each equal to its published parameter count.
TEST(HfRealConfigs, PublishedConfigsEqualTheirPublishedCounts) {
  struct Case {
    const char* file;
    std::uint64_t total;
  };
  for (const Case& c :
       {Case{"gemma-3-4b-it", 4300079472ULL}, Case{"gemma-3-27b-it", 27432406640ULL},
        Case{"Llama-4-Scout-17B-16E-Instruct", 108641793536ULL},
        Case{"gpt-oss-120b", 116829156672ULL}, Case{"falcon-7b", 6921720704ULL},
        Case{"mamba-2.8b-hf", 2768345600ULL}, Case{"gpt-neox-20b", 20554567680ULL}}) {
    EXPECT_EQ(planOf(load(c.file), 8192).params_total, c.total) << c.file;
  }
  // gpt-oss-120b's card counts active parameters without the input embedding.
  EXPECT_EQ(planOf(load("gpt-oss-120b"), 8192).params_active, 5132849472ULL);
  // Llama 4 Scout: 12 global layers of the 48 keep the context, the others one 8192 chunk.
  EXPECT_EQ(planOf(load("Llama-4-Scout-17B-16E-Instruct"), 131072).kv_bytes,
            12ULL * 4096 * 131072 + 36ULL * 4096 * 8192);
  // Falcon-7B (RefinedWebModel): one KV head, 32 layers x (K+V) x 64 x 2 B.
  EXPECT_EQ(planOf(load("falcon-7b"), 8192).kv_bytes_per_token, 8192U);
  // Mamba 2.8B: 64 layers x ((4-1) x 5120 + 5120 x 16) x 2 B of state per sequence.
  EXPECT_EQ(planOf(load("mamba-2.8b-hf"), 8192).state_bytes_per_sequence,
            64ULL * (3 * 5120 + 5120 * 16) * 2);
}

// The first round's configs keep their figures (a shortened form of EveryFigureOfExpectedJson
// that needs no ../shared): Llama 3.1 8B and Qwen3-30B-A3B as fetched in round one.
TEST(HfRealConfigs, FirstRoundFixturesUnchanged) {
  EXPECT_EQ(planOf(load("Llama-3.1-8B"), 1024).params_total, 8030261248ULL);
  EXPECT_EQ(planOf(load("Qwen3-30B-A3B"), 1024).params_total, 30532122624ULL);
  // Llama 3.1 8B sets every key the planner reads but head_dim (4096 / 32 = 128).
  const ModelSpec llama = load("Llama-3.1-8B");
  ASSERT_EQ(llama.defaults.size(), 1U);
  EXPECT_EQ(llama.defaults[0].key, "head_dim");
  EXPECT_EQ(llama.defaults[0].value, "128");
}

}  // namespace
}  // namespace hwl::planner
