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
    {"gpt2", false, readUngatedMlp},
    {"gpt_bigcode", false, readUngatedMlp},
    {"gpt_neox", false, readUngatedMlp},
    {"falcon", false, readUngatedMlp},
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
// on the router.
Status readGptOss(ConfigReader& r, HfModel& m) {
  m.family.attention_sinks = true;
  m.family.expert_biases = true;
  return readDecoder(r, m);
}

// GPT-2 and its descendants (GPT-BigCode, GPT-NeoX, Falcon, Phi-1/2, StarCoder2): up and down
// projections without a gate, whatever hidden_act says.
Status readUngatedMlp(ConfigReader& r, HfModel& m) {
  m.family.ungated_mlp = true;
  return readDecoder(r, m);
}

// Nemotron-H: layers from hybrid_override_pattern (a shared key group); its MLP layers are
// squared-ReLU up/down projections without a gate.
Status readNemotronH(ConfigReader& r, HfModel& m) {
  m.family.ungated_mlp = true;
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
