// The rules of the planner's second round on small configs written to exercise one rule each:
// chunked attention, MoE placement, KV-head spellings, refusals, dtypes as served, wrappers.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <string>

#include "hwl/planner/hf_config.hpp"
#include "hwl/planner/plan.hpp"
#include "hwl/planner/plan_json.hpp"

namespace hwl::planner {
namespace {

Result<ModelSpec> parse(const std::string& model_type, const std::string& fields) {
  return parseHfConfig("{\"model_type\": \"" + model_type + "\", " + fields + "}");
}

ModelSpec specOf(const std::string& model_type, const std::string& fields) {
  auto spec = parse(model_type, fields);
  EXPECT_TRUE(spec.has_value()) << model_type << ": " << (spec ? "" : spec.error().message);
  return spec ? *spec : ModelSpec{};
}

Plan planOf(const ModelSpec& spec, std::uint64_t context, const std::string& weights = "auto",
            const std::string& state = "auto") {
  PlanRequest req;
  req.model = spec;
  req.context = context;
  req.weights = weights;
  req.state_dtype = state;
  auto plan = computePlan(req);
  EXPECT_TRUE(plan.has_value()) << (plan ? "" : plan.error().message);
  return plan ? *plan : Plan{};
}

const std::string kLlama4Text = R"("hidden_size": 512, "num_hidden_layers": 8,
    "vocab_size": 1000, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64,
    "intermediate_size": 256, "intermediate_size_mlp": 1024, "num_local_experts": 4,
    "num_experts_per_tok": 1, "attention_chunk_size": 128, "torch_dtype": "bfloat16")";

// Llama 4 without no_rope_layers: Llama4TextConfig makes every 4th layer global (NoPE) and the
// others chunked; a chunked layer keeps at most one chunk of KV.
TEST(HfRules, ChunkedAttentionKeepsOneChunkAndEveryFourthLayerIsGlobal) {
  for (const std::string& extra : {std::string(), std::string(R"(, "no_rope_layers": [])")}) {
    const ModelSpec s = specOf("llama4_text", kLlama4Text + extra);
    ASSERT_EQ(s.layers.size(), 8U);
    for (std::size_t i = 0; i < 8; ++i) {
      EXPECT_EQ(s.layers[i].sliding_window, (i + 1) % 4 == 0 ? 0U : 128U) << "layer " << i;
    }
    // At 1000 tokens: 2 global layers keep 1000, 6 chunked keep 128; (K+V) x 2 heads x 64 x 2 B
    // = 512 B per token and layer.
    EXPECT_EQ(planOf(s, 1000).kv_bytes, 2ULL * 512 * 1000 + 6ULL * 512 * 128);
  }
  // An explicit list decides: 1 = RoPE (chunked), 0 = NoPE (global).
  const ModelSpec s =
      specOf("llama4_text", kLlama4Text + R"(, "no_rope_layers": [0, 1, 1, 1, 1, 1, 1, 0])");
  EXPECT_EQ(s.layers[0].sliding_window, 0U);
  EXPECT_EQ(s.layers[1].sliding_window, 128U);
  EXPECT_EQ(s.layers[7].sliding_window, 0U);
  // A list of the wrong length is refused.
  auto bad = parse("llama4_text", kLlama4Text + R"(, "no_rope_layers": [1, 0])");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message,
            "config.json: no_rope_layers has 2 entries but num_hidden_layers is 8");
}

// Llama 4's MLP layout: MoE layers hold the routed experts and a shared expert, both
// intermediate_size wide; the others are dense at intermediate_size_mlp. interleave_moe_layer_step
// 2 (Maverick) routes every second layer.
TEST(HfRules, Llama4SharedExpertAndInterleavedMoe) {
  const ModelSpec s = specOf("llama4_text", kLlama4Text + R"(, "interleave_moe_layer_step": 2)");
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(s.layers[i].moe, i % 2 == 1) << "layer " << i;
  }
  // Dense: 3 x 512 x 1024. MoE: 4 experts x 3 x 512 x 256, shared 3 x 512 x 256, router 512 x 4.
  EXPECT_EQ(s.layers[0].params.dense_mlp, 3ULL * 512 * 1024);
  EXPECT_EQ(s.layers[1].params.experts, 4ULL * 3 * 512 * 256);
  EXPECT_EQ(s.layers[1].params.experts_active, 1ULL * 3 * 512 * 256);
  EXPECT_EQ(s.layers[1].params.dense_mlp, 3ULL * 512 * 256);
  EXPECT_EQ(s.layers[1].params.router, 512ULL * 4);
  // moe_layers, when given, lists the MoE layers.
  const ModelSpec listed = specOf("llama4_text", kLlama4Text + R"(, "moe_layers": [2, 5])");
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(listed.layers[i].moe, i == 2 || i == 5);
}

// Dense prefixes and strides of the other MoE families.
TEST(HfRules, MoeLayerPlacement) {
  const std::string base = R"("hidden_size": 256, "num_hidden_layers": 6, "vocab_size": 100,
      "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 512,
      "moe_intermediate_size": 64, "num_experts_per_tok": 2, "torch_dtype": "bfloat16")";
  auto moeLayers = [](const ModelSpec& s) {
    std::string out;
    for (const auto& l : s.layers) out += l.moe ? 'E' : 'D';
    return out;
  };
  EXPECT_EQ(moeLayers(specOf("qwen2_moe", base + R"(, "num_experts": 8,
      "decoder_sparse_step": 2, "shared_expert_intermediate_size": 0)")),
            "DEDEDE");
  EXPECT_EQ(moeLayers(specOf("qwen3_moe", base + R"(, "num_experts": 8,
      "mlp_only_layers": [0, 4])")),
            "DEEEDE");
  EXPECT_EQ(moeLayers(specOf("custom", base + R"(, "n_routed_experts": 8,
      "first_k_dense_replace": 2, "moe_layer_freq": 2)")),
            "DDEDED");
}

// KV heads under every spelling, and the families' rules for them.
TEST(HfRules, KvHeadSpellings) {
  const std::string dims = R"("hidden_size": 1024, "num_hidden_layers": 2, "vocab_size": 100,
      "intermediate_size": 4096, "torch_dtype": "bfloat16")";
  auto kv = [&](const std::string& type, const std::string& extra) {
    return specOf(type, dims + ", " + extra).layers[0].n_kv_heads;
  };
  EXPECT_EQ(kv("llama", R"("num_attention_heads": 16, "num_key_value_heads": 4)"), 4U);
  EXPECT_EQ(kv("custom", R"("n_head": 16, "n_head_kv": 2)"), 2U);
  EXPECT_EQ(kv("custom", R"("num_attention_heads": 16, "num_kv_heads": 8)"), 8U);
  EXPECT_EQ(kv("custom", R"("num_attention_heads": 16, "multi_query": true)"), 1U);
  // Falcon: num_kv_heads with the new decoder architecture, one head with multi_query alone,
  // all heads when neither (Falcon-RW).
  EXPECT_EQ(kv("falcon", R"("num_attention_heads": 16, "new_decoder_architecture": true,
      "num_kv_heads": 4, "multi_query": true)"),
            4U);
  EXPECT_EQ(kv("falcon", R"("num_attention_heads": 16, "multi_query": true)"), 1U);
  EXPECT_EQ(kv("falcon", R"("num_attention_heads": 16, "multi_query": false)"), 16U);
  // ChatGLM: KV groups only with multi_query_attention.
  EXPECT_EQ(kv("chatglm", R"("num_attention_heads": 16, "multi_query_attention": true,
      "multi_query_group_num": 2, "kv_channels": 64)"),
            2U);
  EXPECT_EQ(kv("chatglm", R"("num_attention_heads": 16, "multi_query_attention": false,
      "multi_query_group_num": 2, "kv_channels": 64)"),
            16U);
  // MPT: attn_config.attn_type.
  EXPECT_EQ(kv("mpt", R"("n_heads": 16, "attn_config": {"attn_type": "multiquery_attention"})"),
            1U);
  EXPECT_EQ(kv("mpt", R"("n_heads": 16, "attn_config": {"attn_type": "grouped_query_attention",
      "kv_n_heads": 4})"),
            4U);
  EXPECT_EQ(kv("mpt", R"("n_heads": 16, "attn_config": {"alibi": true})"), 16U);
  auto odd = parse("mpt", dims + R"(, "n_heads": 16, "attn_config": {"attn_type": "ring"})");
  ASSERT_FALSE(odd.has_value());
  EXPECT_NE(odd.error().message.find("attn_config.attn_type 'ring'"), std::string::npos);
}

// A key that could change the KV cache and that no reader looks at is refused by name, never
// guessed around; keys that only look similar are not.
TEST(HfRules, UnknownKvKeysAreRefusedByName) {
  const std::string base = R"("hidden_size": 1024, "num_hidden_layers": 2, "vocab_size": 100,
      "num_attention_heads": 16, "intermediate_size": 4096, "torch_dtype": "bfloat16")";
  for (const char* key : {"num_kv_groups", "attention_window", "local_attn_window", "kv_lora_dim",
                          "global_attn_chunk", "qk_head_dim"}) {
    auto r = parse("llama", base + ", \"" + key + "\": 4");
    ASSERT_FALSE(r.has_value()) << key;
    EXPECT_EQ(r.error().message, "config.json: key '" + std::string(key) +
                                     "' may change the KV cache and the planner does not read "
                                     "it for model_type 'llama'; refusing to guess");
  }
  // multi_query_group_num outside ChatGLM: refused rather than read as MHA.
  EXPECT_FALSE(parse("llama", base + R"(, "multi_query_group_num": 2)").has_value());
  // null means "not set"; use_cache and Mamba-2's chunk_size are not KV keys.
  EXPECT_TRUE(parse("llama", base + R"(, "attention_window": null, "use_cache": true,
      "chunk_size": 256)")
                  .has_value());
}

// Float32 checkpoints as vLLM's --dtype auto serves them: bf16 weights, KV and state; --weights
// native keeps float32 and --state-dtype fp32 asks for float32 state alone.
TEST(HfRules, Float32CheckpointsAreServedInBf16ByDefault) {
  const ModelSpec s = specOf("mamba", R"("hidden_size": 256, "num_hidden_layers": 2,
      "vocab_size": 1000, "state_size": 16, "conv_kernel": 4, "intermediate_size": 512,
      "torch_dtype": "float32")");
  const std::uint64_t params = s.paramsTotal();
  // State per sequence and layer: (4-1) x 512 conv + 512 x 16 SSM = 9728 elements.
  const Plan served = planOf(s, 100);
  EXPECT_EQ(served.weights_format, "auto (bf16)");
  EXPECT_EQ(served.weights_bytes, 2 * params);
  EXPECT_EQ(served.state_bytes, 2ULL * 9728 * 2);
  EXPECT_EQ(served.state_dtype, "bf16");
  const Plan native = planOf(s, 100, "native");
  EXPECT_EQ(native.weights_format, "native (fp32)");
  EXPECT_EQ(native.weights_bytes, 4 * params);
  EXPECT_EQ(native.state_bytes, 2ULL * 9728 * 4);
  const Plan fp32_state = planOf(s, 100, "auto", "fp32");
  EXPECT_EQ(fp32_state.weights_bytes, 2 * params);
  EXPECT_EQ(fp32_state.state_bytes, 2ULL * 9728 * 4);
  // A bf16 checkpoint is unchanged by either.
  const ModelSpec b = specOf("llama", R"("hidden_size": 256, "num_hidden_layers": 1,
      "vocab_size": 100, "num_attention_heads": 4, "intermediate_size": 512,
      "torch_dtype": "bfloat16")");
  EXPECT_EQ(planOf(b, 10).weights_bytes, planOf(b, 10, "native").weights_bytes);
}

// A Gemma 3 wrapper whose text_config names no model_type reads as gemma3_text, with its class
// defaults, and says so.
TEST(HfRules, WrapperTextConfigWithoutModelType) {
  auto spec = parseHfConfig(R"({"model_type": "gemma3", "torch_dtype": "bfloat16",
      "text_config": {"hidden_size": 640, "num_hidden_layers": 6, "intermediate_size": 2048}})");
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  EXPECT_EQ(spec->architecture, "gemma3_text");
  EXPECT_EQ(spec->vocab_size, 262208U);  // Gemma3TextConfig's vocabulary
  EXPECT_EQ(spec->layers[5].sliding_window, 0U);
  EXPECT_EQ(spec->layers[0].sliding_window, 4096U);
  bool noted = false;
  for (const auto& n : spec->notes) {
    noted = noted || n == "text_config has no model_type: gemma3_text (from the gemma3 wrapper)";
  }
  EXPECT_TRUE(noted);
}

// defaults_applied in the plan's JSON names each value and where it came from.
TEST(HfRules, PlanJsonListsTheDefaultsApplied) {
  const ModelSpec s = specOf("qwen3", R"("hidden_size": 1024, "num_hidden_layers": 2,
      "num_attention_heads": 16, "num_key_value_heads": 8, "intermediate_size": 3072,
      "torch_dtype": "bfloat16")");
  const auto j = planToJson(planOf(s, 10));
  bool vocab = false;
  for (const auto& d : j.at("defaults_applied").as_array()) {
    const auto& o = d.as_object();
    if (o.at("key").as_string() == "vocab_size") {
      vocab = true;
      EXPECT_EQ(o.at("value").to_number<std::uint64_t>(), 151936U);
      EXPECT_EQ(o.at("from").as_string(), "qwen3 default");
    }
  }
  EXPECT_TRUE(vocab);
}

// Sizes beyond any published model are refused, which keeps every count inside 64 bits.
TEST(HfRules, ImplausibleSizesAreRefused) {
  auto r = parse("llama", R"("hidden_size": 4294967296, "num_hidden_layers": 2,
      "vocab_size": 100, "num_attention_heads": 16, "intermediate_size": 4096)");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "config.json: hidden_size 4294967296 is implausibly large (the planner takes up to "
            "262144)");
  EXPECT_FALSE(parse("llama", R"("hidden_size": 1024, "num_hidden_layers": 2, "vocab_size": 100,
      "num_attention_heads": 16, "intermediate_size": 4096, "num_local_experts": 1000000,
      "num_experts_per_tok": 2)")
                   .has_value());
}

// gpt-oss without layer_types alternates sliding and full layers, as GptOssConfig's default does.
TEST(HfRules, GptOssWithoutLayerTypesAlternates) {
  const ModelSpec s = specOf("gpt_oss", R"("hidden_size": 512, "num_hidden_layers": 4,
      "vocab_size": 1000, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64,
      "intermediate_size": 256, "num_local_experts": 4, "num_experts_per_tok": 2,
      "sliding_window": 128, "torch_dtype": "bfloat16")");
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(s.layers[i].sliding_window, i % 2 == 0 ? 128U : 0U) << "layer " << i;
  }
  EXPECT_TRUE(s.active_excludes_input_embedding);
}

// The GPT-2 lineage, Falcon and MPT layouts on configs holding only the dimensions of published
// models (their model types' defaults fill the rest). Each expected count is the sum over the
// modules transformers builds for the model (named in the comment); where the model's paper or
// card publishes an exact count, that count is checked too.
TEST(HfRules, LegacyLayoutsCountEveryTensor) {
  struct Case {
    const char* name;
    const char* type;
    const char* fields;
    std::uint64_t expected;
    std::uint64_t kv_per_token;
  };
  constexpr std::uint64_t kFalcon7bLayer =
      4544ULL * (71 + 2) * 64 + 4544ULL * 4544 + 2 * 4544ULL * 18176 + 2 * 4544;
  constexpr std::uint64_t kFalcon40bLayer =
      8192ULL * (128 + 16) * 64 + 8192ULL * 8192 + 2 * 8192ULL * 32768 + 2 * 2 * 8192;
  constexpr std::uint64_t kMptLayer =
      3 * 4096ULL * 4096 + 4096ULL * 4096 + 2 * 4096ULL * 16384 + 2 * 4096;
  constexpr std::uint64_t kGptjLayer =
      2 * 4096 + 4 * 4096ULL * 4096 + 4096ULL * 16384 + 16384 + 16384ULL * 4096 + 4096;
  constexpr std::uint64_t kNeoxLayer = 2 * 2 * 6144 + 6144ULL * 3 * 6144 + 3 * 6144 +
                                       6144ULL * 6144 + 6144 + 6144ULL * 24576 + 24576 +
                                       24576ULL * 6144 + 6144;
  constexpr std::uint64_t kBloomLayer = 2 * 2 * 1024 + 1024ULL * 3072 + 3072 + 1024ULL * 1024 +
                                        1024 + 1024ULL * 4096 + 4096 + 4096ULL * 1024 + 1024;
  constexpr std::uint64_t kOptLayer =
      4 * (4096ULL * 4096 + 4096) + 2 * 2 * 4096 + 4096ULL * 16384 + 16384 + 16384ULL * 4096 + 4096;
  const Case cases[] = {
      // FalconDecoderLayer: query_key_value 4544 x (71 + 2 x 1) x 64, dense, an ungated 4x MLP,
      // one LayerNorm (parallel attention); word_embeddings tied to lm_head, ln_f.
      {"falcon-7b", "falcon",
       R"("hidden_size": 4544, "num_hidden_layers": 32, "num_attention_heads": 71,
          "multi_query": true, "new_decoder_architecture": false, "parallel_attn": true,
          "bias": false, "vocab_size": 65024)",
       32 * kFalcon7bLayer + 65024ULL * 4544 + 2 * 4544, 32ULL * 2 * 64 * 2},
      // New decoder architecture: 8 KV heads, ln_attn and ln_mlp.
      {"falcon-40b", "falcon",
       R"("hidden_size": 8192, "num_hidden_layers": 60, "num_attention_heads": 128,
          "num_kv_heads": 8, "new_decoder_architecture": true, "parallel_attn": true,
          "bias": false, "vocab_size": 65024)",
       60 * kFalcon40bLayer + 65024ULL * 8192 + 2 * 8192, 60ULL * 2 * 8 * 64 * 2},
      // MPTBlock with no_bias: Wqkv, out_proj, up/down at expansion_ratio 4, two bias-free
      // LayerNorms; wte tied, norm_f.
      {"mpt-7b", "mpt",
       R"("d_model": 4096, "n_heads": 32, "n_layers": 32, "expansion_ratio": 4,
          "max_seq_len": 2048, "vocab_size": 50432, "no_bias": true,
          "attn_config": {"attn_type": "multihead_attention", "alibi": true})",
       32 * kMptLayer + 50432ULL * 4096 + 4096, 32ULL * 2 * 4096 * 2},
      // GPTJBlock: ln_1, unbiased q/k/v/out, fc_in and fc_out with bias; wte, ln_f, lm_head with
      // its bias.
      {"gpt-j-6b", "gptj",
       R"("n_embd": 4096, "n_head": 16, "n_layer": 28, "n_positions": 2048, "rotary_dim": 64,
          "tie_word_embeddings": false, "vocab_size": 50400)",
       28 * kGptjLayer + 2 * 50400ULL * 4096 + 50400 + 2 * 4096, 28ULL * 2 * 4096 * 2},
      // GPTNeoXLayer: two LayerNorms, query_key_value and dense with bias, an ungated MLP with
      // bias; embed_in, final_layer_norm, embed_out.
      {"gpt-neox-20b", "gpt_neox",
       R"("hidden_size": 6144, "intermediate_size": 24576, "num_attention_heads": 64,
          "num_hidden_layers": 44, "max_position_embeddings": 2048, "rotary_pct": 0.25,
          "tie_word_embeddings": false, "vocab_size": 50432)",
       44 * kNeoxLayer + 2 * 50432ULL * 6144 + 2 * 6144, 44ULL * 2 * 6144 * 2},
      // BloomBlock: two LayerNorms, query_key_value and dense with bias, a 4x MLP with bias;
      // word_embeddings (tied), word_embeddings_layernorm, ln_f; ALiBi has no table.
      {"bloom-560m", "bloom",
       R"("hidden_size": 1024, "n_head": 16, "n_layer": 24, "vocab_size": 250880)",
       24 * kBloomLayer + 250880ULL * 1024 + 2 * 1024 + 2 * 1024, 24ULL * 2 * 1024 * 2},
      // OPTDecoderLayer: q/k/v/out with bias, two LayerNorms, fc1/fc2 with bias; embed_tokens
      // (tied), 2048 + 2 learned positions, the final LayerNorm.
      {"opt-6.7b", "opt",
       R"("hidden_size": 4096, "ffn_dim": 16384, "num_attention_heads": 32,
          "num_hidden_layers": 32, "max_position_embeddings": 2048, "vocab_size": 50272,
          "word_embed_proj_dim": 4096, "do_layer_norm_before": true)",
       32 * kOptLayer + 50272ULL * 4096 + 2050ULL * 4096 + 2 * 4096, 32ULL * 2 * 4096 * 2},
  };
  for (const Case& c : cases) {
    const Plan p = planOf(specOf(c.type, c.fields), 2048);
    EXPECT_EQ(p.params_total, c.expected) << c.name;
    EXPECT_EQ(p.kv_bytes_per_token, c.kv_per_token) << c.name;
  }
  // Exact published counts: GPT-NeoX-20B's paper (Black et al. 2022, table 1) 20,554,567,680;
  // the BLOOM-560m model card 559,214,592.
  EXPECT_EQ(cases[4].expected, 20554567680ULL);
  EXPECT_EQ(cases[5].expected, 559214592ULL);
}

// Configs shaped as Google, Meta and OpenAI publish them (the keys and values of the published
// config.json that the planner reads): the counts equal the published ones to the parameter.
TEST(HfRules, PublishedShapesOfGemma3Llama4AndGptOss) {
  // google/gemma-3-4b-it: a text_config of five keys; Gemma3TextConfig supplies vocabulary
  // 262208, 8 heads, 4 KV heads, head_dim 256, tying. Published: 4,300,079,472.
  auto gemma = parseHfConfig(R"({"architectures": ["Gemma3ForConditionalGeneration"],
      "model_type": "gemma3", "mm_tokens_per_image": 256, "torch_dtype": "bfloat16",
      "text_config": {"hidden_size": 2560, "intermediate_size": 10240,
        "model_type": "gemma3_text", "num_hidden_layers": 34,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
      "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
        "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
        "patch_size": 14, "vision_use_head": false}})");
  ASSERT_TRUE(gemma.has_value()) << gemma.error().message;
  const Plan g = planOf(*gemma, 8192);
  EXPECT_EQ(g.params_total, 4300079472ULL);
  // SigLIP: 27 x (4 x 1152^2 + 4 x 1152 + 2 x 1152 x 4304 + 4304 + 1152 + 4 x 1152), patch
  // 3 x 14 x 14 x 1152 + 1152, 4096 positions x 1152, post LayerNorm; projector 1152 x 2560 + 1152.
  EXPECT_EQ(g.params_vision,
            27 * (4ULL * 1152 * 1152 + 4 * 1152 + 2ULL * 1152 * 4304 + 4304 + 1152 + 4 * 1152) +
                3ULL * 14 * 14 * 1152 + 1152 + 4096ULL * 1152 + 2 * 1152 + 1152ULL * 2560 + 1152);
  // Layers 5, 11, 17, 23, 29 global (5 x 4096 B per token), 29 sliding at 1024.
  EXPECT_EQ(g.kv_bytes, 5ULL * 4096 * 8192 + 29ULL * 4096 * 1024);

  // meta-llama/Llama-4-Scout-17B-16E-Instruct: "no_rope_layers": [] takes the every-4th default;
  // 16 routed experts + a shared expert on every layer. Published: 109B total, 17B active.
  auto scout = parseHfConfig(R"({"model_type": "llama4", "tie_word_embeddings": false,
      "torch_dtype": "bfloat16",
      "text_config": {"attention_bias": false, "attention_chunk_size": 8192, "head_dim": 128,
        "hidden_size": 5120, "interleave_moe_layer_step": 1, "intermediate_size": 8192,
        "intermediate_size_mlp": 16384, "max_position_embeddings": 10485760,
        "model_type": "llama4_text", "no_rope_layers": [], "num_attention_heads": 40,
        "num_experts_per_tok": 1, "num_hidden_layers": 48, "num_key_value_heads": 8,
        "num_local_experts": 16, "use_qk_norm": true, "vocab_size": 202048},
      "vision_config": {"hidden_size": 1408, "image_size": 336, "intermediate_size": 5632,
        "model_type": "llama4_vision_model", "num_attention_heads": 16, "num_channels": 3,
        "num_hidden_layers": 34, "patch_size": 14, "pixel_shuffle_ratio": 0.5,
        "projector_input_dim": 4096, "projector_output_dim": 4096,
        "vision_output_dim": 4096}})");
  ASSERT_TRUE(scout.has_value()) << scout.error().message;
  const Plan l = planOf(*scout, 131072);
  EXPECT_EQ(l.params_total, 108641793536ULL);
  EXPECT_LT(std::abs(static_cast<double>(l.params_active) - 17e9) / 17e9, 0.02);
  // 12 global layers keep the context, 36 chunked layers one chunk of 8192; 4096 B per token.
  EXPECT_EQ(l.kv_bytes, 12ULL * 4096 * 131072 + 36ULL * 4096 * 8192);

  // openai/gpt-oss-120b: 36 layers alternating sliding (128) and full, 128 experts top 4, MXFP4
  // experts. Model card: 116.83B total, 5.13B active (without the input embedding).
  std::string types;
  for (int i = 0; i < 36; ++i) {
    types += std::string(i == 0 ? "" : ", ") +
             (i % 2 == 0 ? R"("sliding_attention")" : R"("full_attention")");
  }
  auto oss = parseHfConfig(R"({"attention_bias": true, "experts_per_token": 4, "head_dim": 64,
      "hidden_size": 2880, "intermediate_size": 2880, "layer_types": [)" +
                           types + R"(], "max_position_embeddings": 131072,
      "model_type": "gpt_oss", "num_attention_heads": 64, "num_experts_per_tok": 4,
      "num_hidden_layers": 36, "num_key_value_heads": 8, "num_local_experts": 128,
      "quantization_config": {"quant_method": "mxfp4"}, "sliding_window": 128,
      "tie_word_embeddings": false, "vocab_size": 201088})");
  ASSERT_TRUE(oss.has_value()) << oss.error().message;
  const Plan o = planOf(*oss, 8192);
  EXPECT_EQ(o.params_total, 116829156672ULL);
  EXPECT_EQ(o.params_active, 5132849472ULL);
  EXPECT_EQ(o.params_active, o.params_active_excluding_input_embedding);
  // 18 full layers x (K+V) x 8 x 64 x 2 B = 36864 B per token.
  EXPECT_EQ(o.kv_bytes_per_token, 36864U);
}

// With layer_types, transformers (4.53 and later) still saves the keys of the older rules; the
// list decides and those keys are not refused as unread.
TEST(HfRules, LayerTypesOverrideTheOlderRulesKeys) {
  const ModelSpec s = specOf("qwen3", R"("hidden_size": 1024, "num_hidden_layers": 2,
      "vocab_size": 100, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
      "intermediate_size": 3072, "torch_dtype": "bfloat16", "use_sliding_window": false,
      "sliding_window": 4096, "max_window_layers": 28,
      "layer_types": ["full_attention", "full_attention"])");
  EXPECT_EQ(s.layers[0].sliding_window, 0U);
  const ModelSpec g = specOf("gemma3_text", R"("hidden_size": 640, "num_hidden_layers": 3,
      "_sliding_window_pattern": 6, "sliding_window": 512,
      "layer_types": ["sliding_attention", "sliding_attention", "full_attention"])");
  EXPECT_EQ(g.layers[0].sliding_window, 512U);
  EXPECT_EQ(g.layers[2].sliding_window, 0U);
}

}  // namespace
}  // namespace hwl::planner
