// ModelSpec: what the planner needs to know about a model, whatever file it came from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hwl::planner {

// What a decoder layer keeps per sequence while generating.
enum class LayerKind : std::uint8_t {
  kAttention,        // K and V per token (MHA, GQA, MQA), possibly capped by a sliding window
  kMla,              // one compressed latent + the decoupled RoPE key per token (DeepSeek MLA)
  kMamba1,           // conv state + SSM state of size d_inner x d_state, independent of context
  kMamba2,           // conv state + per-head SSM state, independent of context
  kLinearAttention,  // gated delta-net style: conv state + a per-head k x v matrix
  kMlpOnly,          // no sequence state at all (Nemotron-H '-' and 'E' layers)
};

std::string_view layerKindName(LayerKind kind);

// The parameters of one layer, split by role so that a quantisation can apply to some roles only
// (FP8 checkpoints keep norms and routers in bf16; MXFP4 quantises the routed experts only).
struct LayerParams {
  std::uint64_t attention = 0;       // projections, biases, sinks, q/k norms of the mixer
  std::uint64_t mixer = 0;           // SSM / linear-attention mixer weights
  std::uint64_t dense_mlp = 0;       // dense MLP, or the shared experts of an MoE layer
  std::uint64_t experts = 0;         // all routed experts (resident)
  std::uint64_t experts_active = 0;  // the routed experts one token uses (top-k)
  std::uint64_t router = 0;          // router / gate, its bias and score-correction bias
  std::uint64_t norms = 0;           // layer norms kept in 16 bits by every runtime

  [[nodiscard]] std::uint64_t total() const {
    return attention + mixer + dense_mlp + experts + router + norms;
  }
  [[nodiscard]] std::uint64_t active() const {
    return attention + mixer + dense_mlp + experts_active + router + norms;
  }
};

struct LayerSpec {
  LayerKind kind = LayerKind::kAttention;
  bool moe = false;
  // Attention: KV heads and the K/V head sizes (they differ for MLA-less models rarely, e.g. when
  // a GGUF sets key_length != value_length).
  std::uint32_t n_kv_heads = 0;
  std::uint32_t head_dim_k = 0;
  std::uint32_t head_dim_v = 0;
  std::uint64_t sliding_window = 0;  // 0 = full attention; otherwise tokens kept per sequence
  // MLA
  std::uint32_t kv_lora_rank = 0;
  std::uint32_t qk_rope_head_dim = 0;
  // Recurrent state, in elements per sequence, before tensor-parallel sharding.
  std::uint64_t conv_state_elems = 0;
  std::uint64_t ssm_state_elems = 0;
  LayerParams params;
  std::uint64_t stored_bytes = 0;  // exact bytes of this layer's tensors when a file says so
};

// A value the planner used for a key the model file left out.
struct DefaultedValue {
  std::string key;
  std::string value;  // as JSON text
  std::string from;   // "<model_type> default" (the configuration class's), or "derived"
};

struct ModelSpec {
  std::string name;          // file stem or `_name_or_path`
  std::string architecture;  // model_type (HF) or general.architecture (GGUF)
  std::string source;        // "hf_config", "gguf", "safetensors"

  std::uint32_t hidden_size = 0;
  std::uint32_t num_attention_heads = 0;
  std::uint32_t intermediate_size = 0;  // largest per-token MLP width (used by the workspace term)
  std::uint32_t moe_intermediate_size = 0;
  std::uint32_t experts_per_token = 0;
  std::uint32_t num_experts = 0;
  std::uint64_t vocab_size = 0;
  std::uint64_t max_context = 0;  // max_position_embeddings / context_length; 0 = unknown
  std::vector<LayerSpec> layers;

  std::uint64_t params_input_embedding = 0;
  std::uint64_t params_output = 0;  // lm_head (0 when tied to the input embedding)
  std::uint64_t params_final_norm = 0;
  std::uint64_t params_mtp = 0;  // multi-token-prediction layers, not resident by default
  // Learned position embeddings, the embedding LayerNorm and an output bias (GPT-2, OPT, Bloom,
  // GPT-J): resident and used by every token.
  std::uint64_t params_embedding_extra = 0;
  // Vision tower and projector of a multimodal model: resident, not used by text tokens.
  std::uint64_t params_vision = 0;
  bool tied_embeddings = false;
  // The model card's convention for "active" parameters: DeepSeek and gpt-oss publish the count
  // without the input embedding (a lookup, not a matrix product); Mixtral, Qwen and Llama 4 count
  // it.
  bool active_excludes_input_embedding = false;

  // The checkpoint's own element type ("bf16", "fp16", "fp32") and quantisation method, if any
  // ("fp8", "mxfp4", "gguf:Q4_K" ...).
  std::string dtype = "bf16";
  std::string state_dtype;  // default dtype of recurrent state; empty = `dtype`
  std::string quantization;
  std::uint32_t fp8_block = 0;  // block size of FP8 block scales (128 for DeepSeek-V3); 0 = none

  // Exact bytes of the stored weights when the file tells us (GGUF tensor infos, safetensors
  // headers). Used for the "native" weights format instead of a per-parameter estimate.
  std::optional<std::uint64_t> exact_weight_bytes;
  std::optional<std::uint64_t> exact_params;

  std::vector<std::string> notes;        // conventions applied while reading, shown in the plan
  std::vector<DefaultedValue> defaults;  // keys absent from the file and the values used

  [[nodiscard]] std::uint64_t paramsTotal() const;
  [[nodiscard]] std::uint64_t paramsActive() const;  // counts the input embedding
  [[nodiscard]] std::uint64_t paramsActiveExcludingInputEmbedding() const;
  // paramsActive or paramsActiveExcludingInputEmbedding, as the model card counts.
  [[nodiscard]] std::uint64_t paramsActivePublished() const;
};

}  // namespace hwl::planner
