// config.json decisions that depend on model_type rather than on keys: the same keys read under
// different model types give different layer kinds, windows and parameter counts.
#include <gtest/gtest.h>

#include <string>

#include "hwl/planner/hf_config.hpp"

namespace hwl::planner {
namespace {

// `fields` is a JSON object body without braces; model_type is put in front of it.
ModelSpec specOf(const std::string& model_type, const std::string& fields) {
  auto spec = parseHfConfig("{\"model_type\": \"" + model_type + "\", " + fields + "}");
  EXPECT_TRUE(spec.has_value()) << model_type << ": " << (spec ? "" : spec.error().message);
  return spec ? *spec : ModelSpec{};
}

bool hasNote(const ModelSpec& spec, const std::string& note) {
  for (const auto& n : spec.notes) {
    if (n == note) return true;
  }
  return false;
}

TEST(HfConfigFamilies, Mamba1NeedsNoAttentionKeysAndTiesByDefault) {
  const ModelSpec s = specOf("mamba", R"("hidden_size": 768, "num_hidden_layers": 2,
      "vocab_size": 50280, "intermediate_size": 2048, "state_size": 16, "conv_kernel": 4,
      "time_step_rank": 48)");
  ASSERT_EQ(s.layers.size(), 2U);
  for (const auto& l : s.layers) {
    EXPECT_EQ(l.kind, LayerKind::kMamba1);
    EXPECT_EQ(l.n_kv_heads, 0U);
    EXPECT_EQ(l.params.dense_mlp, 0U);           // a Mamba block has no MLP
    EXPECT_EQ(l.params.norms, 768U);             // one norm per block
    EXPECT_EQ(l.ssm_state_elems, 2048ULL * 16);  // d_inner is MambaConfig.intermediate_size
    EXPECT_EQ(l.conv_state_elems, 3ULL * 2048);
  }
  // in_proj, conv1d (+bias), x_proj, dt_proj (+bias), A_log, D, out_proj.
  EXPECT_EQ(s.layers[0].params.mixer, 768ULL * 2 * 2048 + 2048 * 4 + 2048 + 2048 * (48 + 2 * 16) +
                                          48 * 2048 + 2048 + 2048 * 16 + 2048 + 2048 * 768);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_TRUE(hasNote(s, "tie_word_embeddings absent: true (the mamba default)"));
}

TEST(HfConfigFamilies, Mamba2LayersKeepPerHeadState) {
  const ModelSpec s = specOf("mamba2", R"("hidden_size": 768, "num_hidden_layers": 2,
      "vocab_size": 50280, "num_heads": 24, "head_dim": 64, "state_size": 128, "n_groups": 1,
      "conv_kernel": 4)");
  ASSERT_EQ(s.layers.size(), 2U);
  EXPECT_EQ(s.layers[1].kind, LayerKind::kMamba2);
  EXPECT_EQ(s.layers[1].ssm_state_elems, 24ULL * 64 * 128);
  EXPECT_EQ(s.layers[1].conv_state_elems, 3ULL * (24 * 64 + 2 * 128));
  // Mamba2Config's tie_word_embeddings defaults to False (MambaConfig keeps PretrainedConfig's
  // True).
  EXPECT_FALSE(s.tied_embeddings);
  EXPECT_TRUE(hasNote(s, "tie_word_embeddings absent: false (the mamba2 default)"));
}

// Gemma 3 and Cohere 2 make every n-th layer global; n has a per-family default.
TEST(HfConfigFamilies, SlidingPatternDefaultsPerFamily) {
  const std::string fields = R"("hidden_size": 512, "num_hidden_layers": 8, "vocab_size": 1000,
      "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 1024,
      "sliding_window": 4096)";
  const ModelSpec cohere = specOf("cohere2", fields);
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(cohere.layers[i].sliding_window, i % 4 == 3 ? 0U : 4096U) << "layer " << i;
  }
  EXPECT_TRUE(hasNote(cohere, "sliding_window_pattern absent: 4 (the cohere2 default)"));

  const ModelSpec gemma3 = specOf("gemma3_text", fields);
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(gemma3.layers[i].sliding_window, i == 5 ? 0U : 4096U) << "layer " << i;
  }
  EXPECT_TRUE(hasNote(gemma3, "sliding_window_pattern absent: 6 (the gemma3_text default)"));

  // Other model types with a sliding_window slide every layer (Mistral).
  const ModelSpec llama = specOf("llama", fields);
  for (const auto& l : llama.layers) EXPECT_EQ(l.sliding_window, 4096U);
  for (const auto& n : llama.notes)
    EXPECT_EQ(n.rfind("sliding_window_pattern", 0), std::string::npos);
}

TEST(HfConfigFamilies, AttentionWeightsFollowTheFamily) {
  // One layer, 8 query heads and 2 KV heads of 64 on a 512 residual.
  const std::string fields = R"("hidden_size": 512, "num_hidden_layers": 1, "vocab_size": 1000,
      "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64,
      "intermediate_size": 1024, "sliding_window": 4096, "sliding_window_pattern": 6,
      "tie_word_embeddings": false, "torch_dtype": "bfloat16")";
  const std::uint64_t qkvo = 512ULL * 8 * 64 + 2 * 512ULL * 2 * 64 + 8ULL * 64 * 512;
  const std::uint64_t qkv_bias = 8 * 64 + 2 * 2 * 64;
  const std::uint64_t qk_norm = 2 * 64;
  struct Case {
    std::string model_type;
    std::uint64_t attention;
    std::uint64_t norms;
  };
  for (const Case& c : {Case{"llama", qkvo, 2 * 512}, Case{"qwen2", qkvo + qkv_bias, 2 * 512},
                        Case{"qwen2_moe", qkvo + qkv_bias, 2 * 512},
                        Case{"qwen3", qkvo + qk_norm, 2 * 512}, Case{"gemma", qkvo, 2 * 512},
                        Case{"gemma2", qkvo, 4 * 512}, Case{"gemma3_text", qkvo + qk_norm, 4 * 512},
                        // GptOssConfig's attention_bias defaults to True: q/k/v and output biases,
                        // and a sink per head.
                        Case{"gpt_oss", qkvo + qkv_bias + 512 + 8, 2 * 512}}) {
    const ModelSpec s = specOf(c.model_type, fields);
    ASSERT_EQ(s.layers.size(), 1U) << c.model_type;
    EXPECT_EQ(s.layers[0].params.attention, c.attention) << c.model_type;
    EXPECT_EQ(s.layers[0].params.norms, c.norms) << c.model_type;
  }
  // attention_bias adds q/k/v and output biases to any family.
  EXPECT_EQ(specOf("llama", fields + R"(, "attention_bias": true)").layers[0].params.attention,
            qkvo + qkv_bias + 512);
}

TEST(HfConfigFamilies, UngatedMlpFamilies) {
  const std::string fields = R"("hidden_size": 512, "num_hidden_layers": 1, "vocab_size": 1000,
      "num_attention_heads": 8, "intermediate_size": 2048, "tie_word_embeddings": false,
      "torch_dtype": "bfloat16")";
  // Falcon (bias: false), Phi and StarCoder2: up and down only. GPT-2, GPT-BigCode and GPT-NeoX
  // also bias both projections (2048 + 512).
  for (const char* mt : {"falcon", "phi", "starcoder2"}) {
    EXPECT_EQ(specOf(mt, fields).layers[0].params.dense_mlp, 2ULL * 512 * 2048) << mt;
  }
  for (const char* mt : {"gpt2", "gpt_bigcode", "gpt_neox"}) {
    EXPECT_EQ(specOf(mt, fields + R"(, "n_positions": 1024)").layers[0].params.dense_mlp,
              2ULL * 512 * 2048 + 2048 + 512)
        << mt;
  }
  for (const char* mt : {"llama", "phi3", "falcon_h1", "mistral"}) {
    EXPECT_EQ(specOf(mt, fields).layers[0].params.dense_mlp, 3ULL * 512 * 2048) << mt;
  }
  EXPECT_EQ(specOf("llama", fields + R"(, "hidden_act": "relu2")").layers[0].params.dense_mlp,
            2ULL * 512 * 2048);
  EXPECT_EQ(specOf("llama", fields + R"(, "mlp_bias": true)").layers[0].params.dense_mlp,
            3ULL * 512 * 2048 + 2 * 2048 + 512);
}

TEST(HfConfigFamilies, GptOssExpertsAndRouterCarryBiases) {
  const std::string fields = R"("hidden_size": 512, "num_hidden_layers": 1, "vocab_size": 1000,
      "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64,
      "intermediate_size": 256, "num_local_experts": 4, "num_experts_per_tok": 2,
      "tie_word_embeddings": false, "torch_dtype": "bfloat16")";
  const LayerParams oss = specOf("gpt_oss", fields).layers[0].params;
  EXPECT_EQ(oss.experts, 4ULL * (3 * 512 * 256 + 2 * 256 + 512));
  EXPECT_EQ(oss.experts_active, 2ULL * (3 * 512 * 256 + 2 * 256 + 512));
  EXPECT_EQ(oss.router, 512ULL * 4 + 4);
  const LayerParams mixtral = specOf("mixtral", fields).layers[0].params;
  EXPECT_EQ(mixtral.experts, 4ULL * 3 * 512 * 256);
  EXPECT_EQ(mixtral.router, 512ULL * 4);
}

TEST(HfConfigFamilies, JambaNormalisesDtBAndC) {
  const std::string fields = R"("hidden_size": 1024, "num_hidden_layers": 2, "vocab_size": 1000,
      "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 2048,
      "attn_layer_period": 2, "attn_layer_offset": 1, "mamba_d_state": 16, "mamba_d_conv": 4,
      "mamba_expand": 2, "mamba_dt_rank": 64)";
  const ModelSpec jamba = specOf("jamba", fields);
  const ModelSpec other = specOf("jamba_like", fields);
  ASSERT_EQ(jamba.layers[0].kind, LayerKind::kMamba1);
  EXPECT_EQ(jamba.layers[1].kind, LayerKind::kAttention);
  EXPECT_EQ(jamba.layers[0].params.mixer, other.layers[0].params.mixer + 64 + 2 * 16);
  EXPECT_FALSE(jamba.tied_embeddings);
}

}  // namespace
}  // namespace hwl::planner
