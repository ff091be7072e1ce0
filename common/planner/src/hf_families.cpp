// One config.json reader per model family, picked by model_type. A reader states what its
// family's checkpoints contain without a key saying so (Family), then reads the shared key groups
// (hf_fields.cpp). Model types without a reader of their own are read as Llama-like decoders,
// which covers every family that config keys describe fully: Llama, Mistral, Mixtral, DeepSeek
// (MLA from kv_lora_rank), ChatGLM (its key spellings are aliases in the shared groups) and more.
#include "hf_families.hpp"

#include <string_view>

namespace hwl::planner::hf {
namespace {

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

struct FamilyEntry {
  std::string_view model_type;
  bool prefix;  // also matches model types that extend it (qwen2 -> qwen2_moe, qwen2_vl ...)
  FamilyReader read;
};

// First match wins.
constexpr FamilyEntry kFamilies[] = {
    {"mamba", false, readMamba},
    {"falcon_mamba", false, readMamba},
    {"mamba2", false, readMamba},
    {"jamba", false, readJamba},
    {"nemotron_h", false, readNemotronH},
    {"gpt_oss", false, readGptOss},
    {"cohere2", false, readCohere2},
    {"llama4", true, readLlama4},
    {"deepseek", true, readDeepSeek},
    {"falcon", false, readFalcon},
    {"RefinedWebModel", false, readFalcon},  // Falcon-7B's first configs (RWConfig)
    {"RefinedWeb", false, readFalcon},       // Falcon-40B's
    {"chatglm", false, readChatGlm},
    {"glm", false, readChatGlm},
    {"mpt", false, readMpt},
    {"gpt2", false, readGpt2Lineage},
    {"gpt_bigcode", false, readGpt2Lineage},
    {"gptj", false, readGpt2Lineage},
    {"gpt_neox", false, readGpt2Lineage},
    {"bloom", false, readGpt2Lineage},
    {"opt", false, readGpt2Lineage},
    {"phi", false, readUngatedMlp},
    {"starcoder2", false, readUngatedMlp},
    {"gemma", true, readGemma},
    {"qwen2", true, readQwen},
    {"qwen3", true, readQwen},
};

}  // namespace

FamilyReader familyReaderFor(std::string_view model_type) {
  for (const FamilyEntry& e : kFamilies) {
    if (e.prefix ? startsWith(model_type, e.model_type) : model_type == e.model_type) {
      return e.read;
    }
  }
  return readLlamaLike;
}

// Everything the keys say; nothing implied.
Status readLlamaLike(ConfigReader& r, HfModel& m) { return readDecoder(r, m); }

// Qwen2 (and Qwen2-MoE, Qwen2-VL ...) keep q/k/v biases without an attention_bias key; Qwen3
// drops them and normalises each q and k head instead.
Status readQwen(ConfigReader& r, HfModel& m) {
  m.family.qkv_bias = startsWith(m.model_type, "qwen2");
  m.family.qk_norm = startsWith(m.model_type, "qwen3");
  // Qwen3-Next's gated attention: q_proj doubles to carry a sigmoid gate per head and channel.
  m.family.gated_q = m.model_type == "qwen3_next";
  return readDecoder(r, m);
}

// Gemma ties the output projection to the embedding by default. Gemma 2 and 3 add norms after
// attention and after the MLP (four per layer) and interleave sliding and global layers: Gemma 2
// alternates, Gemma 3 keeps one global layer in sliding_window_pattern (6 by default). Gemma 3
// also normalises each q and k head.
Status readGemma(ConfigReader& r, HfModel& m) {
  const std::string& mt = m.model_type;
  Family& f = m.family;
  f.tied_embeddings_default = true;
  if (startsWith(mt, "gemma2") || startsWith(mt, "gemma3")) f.norms_per_layer = 4;
  f.qk_norm = startsWith(mt, "gemma3");
  if (mt == "gemma2") {
    f.sliding = SlidingRule::kAlternate;
  } else if (mt == "gemma3" || mt == "gemma3_text") {
    f.sliding = SlidingRule::kPattern;
    f.sliding_pattern_default = 6;
  }
  return readDecoder(r, m);
}

// Cohere 2 keeps one global layer in four unless sliding_window_pattern says otherwise.
Status readCohere2(ConfigReader& r, HfModel& m) {
  m.family.sliding = SlidingRule::kPattern;
  m.family.sliding_pattern_default = 4;
  return readDecoder(r, m);
}

// gpt-oss: a learned sink logit per attention head, and biases on every expert projection and
// on the router. Without layer_types, even layers slide (GptOssConfig). The model card's active
// counts (3.6B, 5.1B) leave out the input embedding.
Status readGptOss(ConfigReader& r, HfModel& m) {
  m.family.attention_sinks = true;
  m.family.expert_biases = true;
  m.family.sliding = SlidingRule::kAlternate;
  m.family.active_excludes_input_embedding = true;
  return readDecoder(r, m);
}

// Llama 4: chunked local attention on the RoPE layers, a global NoPE layer every fourth
// (no_rope_layers); MoE layers (interleave_moe_layer_step, moe_layers) pair the routed experts
// with a shared expert of the same width; dense layers use intermediate_size_mlp.
Status readLlama4(ConfigReader& r, HfModel& m) {
  m.family.llama4_mlp = true;
  return readDecoder(r, m);
}

// DeepSeek V2/V3 (MLA, MoE after first_k_dense_replace): the README's active count leaves out
// the input embedding.
Status readDeepSeek(ConfigReader& r, HfModel& m) {
  m.family.active_excludes_input_embedding = true;
  return readDecoder(r, m);
}

// Falcon: fused QKV, MQA unless new_decoder_architecture, an ungated 4x MLP, LayerNorms with bias
// (one per layer with parallel attention, two with the new decoder architecture or sequential
// blocks), biases everywhere when `bias`.
Status readFalcon(ConfigReader& r, HfModel& m) {
  Family& f = m.family;
  f.ungated_mlp = true;
  f.falcon_kv = true;
  f.layernorm_bias = true;
  f.inner_mult = 4;
  f.tied_embeddings_default = true;
  const bool new_arch = r.boolOpt("new_decoder_architecture").value_or(false);
  const bool parallel = r.boolOpt("parallel_attn").value_or(true);
  f.linear_biases = r.boolOpt("bias").value_or(false);
  if (new_arch) {
    f.norms_per_layer = r.uintOpt("num_ln_in_parallel_attn").value_or(2);
  } else {
    f.norms_per_layer = parallel ? 1 : 2;
  }
  if (r.failed()) return r.error();
  return readDecoder(r, m);
}

// ChatGLM / GLM-4 (THUDM remote code): multi_query_group_num KV groups when
// multi_query_attention, head size kv_channels, a SwiGLU MLP of ffn_hidden_size, q/k/v biases
// with add_qkv_bias, biases on the other projections with add_bias_linear.
Status readChatGlm(ConfigReader& r, HfModel& m) {
  m.family.chatglm_kv = true;
  m.family.qkv_bias = r.boolOpt("add_qkv_bias").value_or(false);
  if (r.boolOpt("add_bias_linear").value_or(false)) m.family.linear_biases = true;
  if (r.failed()) return r.error();
  return readDecoder(r, m);
}

// GPT-2 and the models that kept its layout: LayerNorms with bias, an ungated MLP of 4 x hidden
// unless a key says, and per model type: GPT-2 and GPT-BigCode learn a position table and bias
// every projection; GPT-J biases the MLP and the output head only and has one LayerNorm per layer;
// GPT-NeoX biases every projection (attention_bias); Bloom normalises the embedding and biases
// every projection; OPT learns max_position_embeddings + 2 positions and biases everything.
Status readGpt2Lineage(ConfigReader& r, HfModel& m) {
  Family& f = m.family;
  const std::string& t = m.model_type;
  f.ungated_mlp = true;
  f.layernorm_bias = true;
  f.inner_mult = 4;
  if (t == "gpt2" || t == "gpt_bigcode") {
    f.learned_positions = true;
    f.linear_biases = true;
    f.tied_embeddings_default = true;
  } else if (t == "gptj") {
    f.mlp_biases = true;
    f.lm_head_bias = true;
    f.norms_per_layer = 1;
  } else if (t == "gpt_neox") {
    f.linear_biases = r.boolOpt("attention_bias").value_or(true);
    f.mlp_biases = true;
  } else if (t == "bloom") {
    f.embedding_norm = true;
    f.linear_biases = true;
    f.tied_embeddings_default = true;
  } else if (t == "opt") {
    f.learned_positions = true;
    f.position_offset = 2;
    f.linear_biases = r.boolOpt("enable_bias").value_or(true);
    f.tied_embeddings_default = true;
  }
  if (r.failed()) return r.error();
  return readDecoder(r, m);
}

// MPT: KV heads from attn_config.attn_type, an ungated MLP of expansion_ratio x d_model, no
// biases and bias-free LayerNorms when no_bias, embeddings always tied.
Status readMpt(ConfigReader& r, HfModel& m) {
  Family& f = m.family;
  f.ungated_mlp = true;
  f.mpt_attn_config = true;
  f.tied_embeddings_default = true;
  const bool no_bias = r.boolOpt("no_bias").value_or(false);
  f.linear_biases = !no_bias;
  f.layernorm_bias = !no_bias;
  f.inner_mult = r.uintOpt("expansion_ratio").value_or(4);
  if (r.failed()) return r.error();
  return readDecoder(r, m);
}

// Phi-1/2 and StarCoder2: up and down projections without a gate, whatever hidden_act says
// (the GPT-2 lineage and Falcon have readers of their own).
Status readUngatedMlp(ConfigReader& r, HfModel& m) {
  m.family.ungated_mlp = true;
  return readDecoder(r, m);
}

// Nemotron-H: layers from hybrid_override_pattern (a shared key group, required here); its MLP
// layers are squared-ReLU up/down projections without a gate.
Status readNemotronH(ConfigReader& r, HfModel& m) {
  m.family.ungated_mlp = true;
  if (!r.has("hybrid_override_pattern")) {
    return invalidArgument("config.json: missing required key 'hybrid_override_pattern'");
  }
  return readDecoder(r, m);
}

// Jamba: Mamba-1 layers between attention layers (attn_layer_period, a shared key group), with
// RMSNorms over dt, B and C inside each Mamba layer.
Status readJamba(ConfigReader& r, HfModel& m) {
  m.family.mamba_dt_norms = true;
  return readDecoder(r, m);
}

// Pure state-space models (Mamba, Falcon-Mamba: Mamba-1; Mamba-2): no attention keys, every
// block is one norm and one mixer without an MLP, embeddings tied by default.
Status readMamba(ConfigReader& r, HfModel& m) {
  Family& f = m.family;
  const bool mamba2 = m.model_type == "mamba2";
  f.every_layer = mamba2 ? LayerKind::kMamba2 : LayerKind::kMamba1;
  f.mamba_inner_from_intermediate_size = !mamba2;
  f.norms_per_layer = 1;
  f.tied_embeddings_default = true;
  return readDecoder(r, m);
}

}  // namespace hwl::planner::hf
