// The defaults of transformers' configuration classes, per model_type: what a config.json that
// leaves a key out means, because `PretrainedConfig.from_pretrained` fills the key from the
// class's __init__ signature (and vLLM reads the filled object). Only the keys the planner reads
// are listed. Values are those of transformers 4.57 (the remote-code configurations of ChatGLM
// and DeepSeek-V2 for the model types transformers does not ship); docs/planner.md names the
// classes.
//
// A key set to null is "not set" (Python's None) and takes no default: only absent keys do.
#include <boost/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "hf_families.hpp"

namespace hwl::planner::hf {
namespace json = boost::json;
namespace {

struct TypeDefaults {
  std::string_view model_type;
  std::string_view json;  // an object: key -> the __init__ default
};

constexpr TypeDefaults kDefaults[] = {
    // GemmaConfig
    {"gemma",
     R"({"vocab_size": 256000, "hidden_size": 3072, "intermediate_size": 24576,
         "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
         "head_dim": 256, "max_position_embeddings": 8192, "attention_bias": false,
         "tie_word_embeddings": true})"},
    // Gemma2Config
    {"gemma2",
     R"({"vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216,
         "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
         "head_dim": 256, "max_position_embeddings": 8192, "attention_bias": false,
         "sliding_window": 4096, "tie_word_embeddings": true})"},
    // Gemma3TextConfig: every sixth layer global (sliding_window_pattern, later layer_types).
    {"gemma3_text",
     R"({"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
         "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
         "head_dim": 256, "max_position_embeddings": 131072, "attention_bias": false,
         "sliding_window": 4096, "sliding_window_pattern": 6, "tie_word_embeddings": true})"},
    // LlamaConfig
    {"llama",
     R"({"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
         "num_hidden_layers": 32, "num_attention_heads": 32, "max_position_embeddings": 2048,
         "attention_bias": false, "mlp_bias": false, "tie_word_embeddings": false})"},
    // Llama4TextConfig: no_rope_layers and moe_layers are derived in __init__ (hf_families.cpp).
    {"llama4_text",
     R"({"vocab_size": 202048, "hidden_size": 5120, "intermediate_size": 8192,
         "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
         "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072,
         "num_experts_per_tok": 1, "num_local_experts": 16, "interleave_moe_layer_step": 1,
         "attention_chunk_size": 8192, "attention_bias": false, "tie_word_embeddings": false})"},
    // MistralConfig
    {"mistral",
     R"({"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
         "max_position_embeddings": 131072, "sliding_window": 4096,
         "tie_word_embeddings": false})"},
    // MixtralConfig (no sliding window by default)
    {"mixtral",
     R"({"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
         "max_position_embeddings": 131072, "num_experts_per_tok": 2, "num_local_experts": 8,
         "tie_word_embeddings": false})"},
    // Qwen2Config
    {"qwen2",
     R"({"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
         "max_position_embeddings": 32768, "use_sliding_window": false, "sliding_window": 4096,
         "max_window_layers": 28, "tie_word_embeddings": false})"},
    // Qwen2MoeConfig
    {"qwen2_moe",
     R"({"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632,
         "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16,
         "max_position_embeddings": 32768, "use_sliding_window": false, "sliding_window": 4096,
         "max_window_layers": 28, "decoder_sparse_step": 1, "moe_intermediate_size": 1408,
         "shared_expert_intermediate_size": 5632, "num_experts_per_tok": 4, "num_experts": 60,
         "tie_word_embeddings": false})"},
    // Qwen3Config
    {"qwen3",
     R"({"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
         "head_dim": 128, "max_position_embeddings": 32768, "use_sliding_window": false,
         "sliding_window": 4096, "max_window_layers": 28, "attention_bias": false,
         "tie_word_embeddings": false})"},
    // Qwen3MoeConfig
    {"qwen3_moe",
     R"({"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
         "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 4,
         "max_position_embeddings": 32768, "use_sliding_window": false, "sliding_window": 4096,
         "max_window_layers": 28, "decoder_sparse_step": 1, "moe_intermediate_size": 768,
         "num_experts_per_tok": 8, "num_experts": 128, "attention_bias": false,
         "tie_word_embeddings": false})"},
    // Qwen3NextConfig: every full_attention_interval-th layer is full attention, the rest
    // gated delta-net.
    {"qwen3_next",
     R"({"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632,
         "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2,
         "head_dim": 256, "max_position_embeddings": 32768, "attention_bias": false,
         "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
         "linear_num_key_heads": 16, "linear_num_value_heads": 32, "decoder_sparse_step": 1,
         "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
         "num_experts_per_tok": 10, "num_experts": 512, "full_attention_interval": 4,
         "tie_word_embeddings": false})"},
    // DeepseekV2Config (remote code configuration_deepseek.py): MoE only when n_routed_experts.
    {"deepseek_v2",
     R"({"vocab_size": 102400, "hidden_size": 4096, "intermediate_size": 11008,
         "moe_intermediate_size": 1407, "num_hidden_layers": 30, "num_attention_heads": 32,
         "num_key_value_heads": 32, "first_k_dense_replace": 0, "moe_layer_freq": 1,
         "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128,
         "qk_nope_head_dim": 128, "max_position_embeddings": 2048,
         "tie_word_embeddings": false})"},
    // DeepseekV3Config
    {"deepseek_v3",
     R"({"vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
         "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128,
         "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256,
         "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1,
         "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128,
         "qk_nope_head_dim": 128, "max_position_embeddings": 4096, "topk_method": "noaux_tc",
         "tie_word_embeddings": false})"},
    // GptOssConfig: layer_types alternates sliding and full (hf_families.cpp).
    {"gpt_oss",
     R"({"vocab_size": 201088, "hidden_size": 2880, "intermediate_size": 2880,
         "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8,
         "head_dim": 64, "sliding_window": 128, "max_position_embeddings": 131072,
         "num_local_experts": 128, "num_experts_per_tok": 4, "attention_bias": true,
         "tie_word_embeddings": false})"},
    // Phi3Config
    {"phi3",
     R"({"vocab_size": 32064, "hidden_size": 3072, "intermediate_size": 8192,
         "num_hidden_layers": 32, "num_attention_heads": 32, "max_position_embeddings": 4096,
         "tie_word_embeddings": false})"},
    // FalconConfig: MQA unless new_decoder_architecture (then num_kv_heads).
    {"falcon",
     R"({"vocab_size": 65024, "hidden_size": 4544, "num_hidden_layers": 32,
         "num_attention_heads": 71, "new_decoder_architecture": false, "multi_query": true,
         "parallel_attn": true, "bias": false, "alibi": false, "max_position_embeddings": 2048,
         "tie_word_embeddings": true})"},
    // MambaConfig (intermediate_size = expand x hidden_size when absent, hf_fields.cpp)
    {"mamba",
     R"({"vocab_size": 50280, "hidden_size": 768, "state_size": 16, "num_hidden_layers": 32,
         "expand": 2, "conv_kernel": 4, "use_bias": false, "use_conv_bias": true,
         "time_step_rank": "auto", "tie_word_embeddings": true})"},
    // Mamba2Config
    {"mamba2",
     R"({"vocab_size": 32768, "hidden_size": 4096, "num_heads": 128, "head_dim": 64,
         "state_size": 128, "num_hidden_layers": 64, "expand": 2, "conv_kernel": 4,
         "n_groups": 8, "use_bias": false, "use_conv_bias": true,
         "tie_word_embeddings": false})"},
    // JambaConfig
    {"jamba",
     R"({"vocab_size": 65536, "hidden_size": 4096, "intermediate_size": 14336,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
         "max_position_embeddings": 262144, "num_experts_per_tok": 2, "num_experts": 16,
         "expert_layer_period": 2, "expert_layer_offset": 1, "attn_layer_period": 8,
         "attn_layer_offset": 4, "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2,
         "mamba_dt_rank": "auto", "mamba_conv_bias": true, "mamba_proj_bias": false,
         "tie_word_embeddings": false})"},
    // NemotronHConfig (hybrid_override_pattern is required: hf_families.cpp)
    {"nemotron_h",
     R"({"vocab_size": 131072, "hidden_size": 4096, "intermediate_size": 21504,
         "num_hidden_layers": 52, "num_attention_heads": 32, "head_dim": 128, "num_key_value_heads": 8,
         "mlp_hidden_act": "relu2", "max_position_embeddings": 4096, "ssm_state_size": 128,
         "mamba_num_heads": 128, "mamba_n_groups": 8, "mamba_head_dim": 64, "mamba_d_conv": 4,
         "mamba_expand": 2, "use_conv_bias": true, "mamba_proj_bias": false,
         "tie_word_embeddings": false})"},
    // ChatGLMConfig (remote code configuration_chatglm.py)
    {"chatglm",
     R"({"num_layers": 28, "padded_vocab_size": 65024, "hidden_size": 4096,
         "ffn_hidden_size": 13696, "kv_channels": 128, "num_attention_heads": 32,
         "seq_length": 2048, "multi_query_attention": false, "multi_query_group_num": 1,
         "add_bias_linear": false, "add_qkv_bias": false, "tie_word_embeddings": false})"},
    // GPT2Config
    {"gpt2",
     R"({"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
         "tie_word_embeddings": true})"},
    // Cohere2Config
    {"cohere2",
     R"({"vocab_size": 256000, "hidden_size": 8192, "intermediate_size": 22528,
         "num_hidden_layers": 40, "num_attention_heads": 64, "max_position_embeddings": 8192,
         "sliding_window": 4096, "sliding_window_pattern": 4, "tie_word_embeddings": true})"},
};

}  // namespace

const json::object* modelTypeDefaults(std::string_view model_type) {
  // FalconMambaConfig keeps MambaConfig's defaults.
  if (model_type == "falcon_mamba") model_type = "mamba";
  // Falcon's first configs (RWConfig) read as FalconConfig does them.
  if (model_type == "RefinedWebModel" || model_type == "RefinedWeb") model_type = "falcon";
  // Parsed once, on first use, in table order.
  static const std::vector<std::pair<std::string_view, json::object>> parsed = [] {
    std::vector<std::pair<std::string_view, json::object>> out;
    for (const TypeDefaults& d : kDefaults)
      out.emplace_back(d.model_type, json::parse(d.json).as_object());
    return out;
  }();
  for (const auto& [type, defaults] : parsed) {
    if (type == model_type) return &defaults;
  }
  return nullptr;
}

std::string_view textModelTypeOf(std::string_view wrapper_model_type) {
  // Multimodal wrappers whose text_config may leave out its own model_type.
  constexpr std::pair<std::string_view, std::string_view> kText[] = {
      {"gemma3", "gemma3_text"}, {"llama4", "llama4_text"}, {"mistral3", "mistral"},
      {"llava", "llama"},        {"qwen3_vl", "qwen3"},     {"qwen3_vl_moe", "qwen3_moe"},
  };
  for (const auto& [wrapper, text] : kText) {
    if (wrapper == wrapper_model_type) return text;
  }
  return {};
}

}  // namespace hwl::planner::hf
