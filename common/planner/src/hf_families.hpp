// The config.json reader's internals: one reader per model family, picked by model_type; the key
// groups every family shares; the shapes they produce (HfModel) and the parameter formulas that
// turn those shapes into ModelSpec layers. Internal to hwl_planner.
//
// A family reader states what its model types imply and config.json does not say (Family), then
// reads the shared key groups in one fixed order. Detection by keys (hybrid_override_pattern,
// attn_layer_period, layer_types, kv_lora_rank, MoE and sliding keys) stays in the shared groups
// and works for every model_type, including unknown ones.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hf_reader.hpp"
#include "hwl/planner/model_spec.hpp"
#include "hwl/result.hpp"

namespace hwl::planner::hf {

// Which attention layers slide when config.json has no layer_types.
enum class SlidingRule : std::uint8_t {
  // sliding_window_pattern if given, else use_sliding_window (Qwen2), else sliding_window on
  // every layer (Mistral).
  kFromKeys,
  kAlternate,  // Gemma 2: even layers slide
  kPattern,    // Gemma 3, Cohere 2: every n-th layer is global, n = sliding_window_pattern
};

// What a family implies that config.json does not spell out. The defaults are those of a
// Llama-like decoder.
struct Family {
  // Pure state-space models: every layer is this kind, attention keys are not read, no MLP.
  std::optional<LayerKind> every_layer;
  // Mamba-1 inner width: MambaConfig.intermediate_size when given (others use expand x hidden).
  bool mamba_inner_from_intermediate_size = false;
  SlidingRule sliding = SlidingRule::kFromKeys;
  // n of the pattern rule when sliding_window_pattern is absent.
  std::uint64_t sliding_pattern_default = 6;

  // Weights that exist in the checkpoint without a key saying so.
  bool qkv_bias = false;         // Qwen2: q/k/v biases even without attention_bias
  bool qk_norm = false;          // Qwen3, Gemma 3: an RMSNorm over each q and k head
  bool attention_sinks = false;  // gpt-oss: one learned sink logit per head
  bool ungated_mlp = false;      // up and down projections only, no gate
  bool expert_biases = false;    // gpt-oss: biases on expert projections and on the router
  bool mamba_dt_norms = false;   // Jamba: RMSNorms over dt, B and C in each Mamba layer
  std::optional<std::uint64_t> norms_per_layer;  // unset: 1 in hybrid patterns, else 2
  bool tied_embeddings_default = false;          // when tie_word_embeddings is absent

  // GPT-2 lineage layouts.
  bool layernorm_bias = false;        // LayerNorms with a bias (2 x hidden each, final norm too)
  bool linear_biases = false;         // every attention and MLP projection has a bias
  bool mlp_biases = false;            // only the MLP projections have one (GPT-J)
  bool lm_head_bias = false;          // the output projection has a bias (GPT-J)
  std::uint64_t inner_mult = 0;       // MLP width = inner_mult x hidden when no key gives it
  bool learned_positions = false;     // a position table of max positions x hidden
  std::uint64_t position_offset = 0;  // OPT keeps two more positions than it uses
  bool embedding_norm = false;        // Bloom: a LayerNorm right after the embedding
  bool falcon_kv = false;             // KV heads by Falcon's new_decoder_architecture rule
  bool chatglm_kv = false;            // KV groups by multi_query_attention/multi_query_group_num
  bool mpt_attn_config = false;       // KV heads from attn_config.attn_type (MPT)

  bool gated_q = false;  // Qwen3-Next: q_proj also produces a per-head output gate (2x width)
  // Llama 4: the MLP of MoE layers is the shared expert (intermediate_size); dense layers use
  // intermediate_size_mlp.
  bool llama4_mlp = false;
  bool active_excludes_input_embedding =
      false;  // the model card's active count (DeepSeek, gpt-oss)
};

struct MoeShape {
  std::uint64_t n_experts = 0, top_k = 0, expert_inter = 0, shared_inter = 0;
  bool shared_gate = false;  // Qwen2-MoE gates its shared expert with one sigmoid unit
};

struct MlaShape {
  std::uint64_t kv_lora = 0, q_lora = 0, rope_dim = 0, nope_dim = 0, v_dim = 0;
};

struct MambaShape {
  std::uint64_t d_inner = 0, d_state = 0, conv_kernel = 0, n_groups = 0, n_heads = 0, head_dim = 0,
                dt_rank = 0;
  bool conv_bias = true, proj_bias = false;
};

struct LinearAttentionShape {
  std::uint64_t n_key_heads = 0, key_head_dim = 0, n_value_heads = 0, value_head_dim = 0,
                conv_kernel = 0;
};

// Everything a family reader takes from config.json before parameters are counted.
struct HfModel {
  std::string model_type;
  Family family;

  std::uint64_t hidden = 0, n_layers = 0, vocab = 0, intermediate = 0;
  std::uint64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;  // 0 in pure state-space models
  bool head_dim_from_hidden = false;  // no head_dim key: hidden_size / num_attention_heads

  // Per layer.
  std::vector<LayerKind> kinds;
  std::vector<std::uint64_t> windows;  // 0 = full attention
  std::vector<bool> has_mlp;
  std::vector<bool> moe_layer;

  bool hybrid_pattern = false;  // hybrid_override_pattern given (Nemotron-H)
  bool layer_types = false;     // layer_types given: it alone decides which layers slide
  bool mla = false;             // kv_lora_rank given (DeepSeek MLA)
  MoeShape moe;
  MlaShape mla_shape;
  MambaShape mamba1, mamba2;
  LinearAttentionShape linear;

  // Weight layout read from keys, combined with the family's.
  bool attention_bias = false;
  bool mlp_bias = false;
  bool gated_mlp = true;
  bool score_correction_bias = false;  // DeepSeek-V3 noaux_tc routing

  std::vector<std::string> notes;  // conventions applied while reading, in reading order
};

// ---- The whole read (hf_config.cpp) ----

// A config.json as read: the spec, the keys the readers looked up (the language-model config's,
// after unwrapping) and those that took a default.
struct HfRead {
  ModelSpec spec;
  std::vector<std::string> keys_read;
  std::vector<DefaultedKey> defaulted;
};

// hfConfigToSpec, with the reader's record.
Result<HfRead> readHfConfig(const boost::json::object& config);

// ---- transformers' defaults per model_type (hf_defaults.cpp) ----

// The __init__ defaults of the configuration class of `model_type`, or null if none are known.
const boost::json::object* modelTypeDefaults(std::string_view model_type);
// The model_type of a multimodal wrapper's text_config when it does not say ("gemma3" ->
// "gemma3_text"); empty when the wrapper is not known.
std::string_view textModelTypeOf(std::string_view wrapper_model_type);

// ---- Family readers (hf_families.cpp) ----
using FamilyReader = Status (*)(ConfigReader& r, HfModel& m);

// The reader for a model_type; model types with no reader of their own are read as Llama-like.
FamilyReader familyReaderFor(std::string_view model_type);

Status readLlamaLike(ConfigReader& r, HfModel& m);
Status readQwen(ConfigReader& r, HfModel& m);
Status readGemma(ConfigReader& r, HfModel& m);
Status readCohere2(ConfigReader& r, HfModel& m);
Status readGptOss(ConfigReader& r, HfModel& m);
Status readUngatedMlp(ConfigReader& r, HfModel& m);
Status readNemotronH(ConfigReader& r, HfModel& m);
Status readJamba(ConfigReader& r, HfModel& m);
Status readMamba(ConfigReader& r, HfModel& m);
Status readLlama4(ConfigReader& r, HfModel& m);
Status readDeepSeek(ConfigReader& r, HfModel& m);
Status readFalcon(ConfigReader& r, HfModel& m);
Status readChatGlm(ConfigReader& r, HfModel& m);
Status readGpt2Lineage(ConfigReader& r, HfModel& m);
Status readMpt(ConfigReader& r, HfModel& m);

// ---- Key groups shared by every family (hf_fields.cpp) ----

// Reads the decoder stack under m.family: dimensions, attention heads, layer kinds, sliding
// windows, MoE, MLA, SSM and linear-attention shapes, and the weight layout, in that order.
Status readDecoder(ConfigReader& r, HfModel& m);

// Context length, tying, multi-token-prediction layers, dtype and quantisation; needs the layers
// in `spec` (an MTP module is counted as one more decoder layer).
Status readModelLevel(ConfigReader& r, const HfModel& m, ModelSpec& spec);

// The vision tower and projector of a multimodal config (its vision_config), counted into
// spec.params_vision (hf_vision.cpp).
Status addVisionTower(const boost::json::object& top, std::uint64_t text_hidden, ModelSpec& spec);

// Refuses a config that sets a key naming KV heads, head sizes, windows or attention kinds that
// no reader looked at: the planner would otherwise guess the KV cache.
Status refuseUnreadKvKeys(const boost::json::object& cfg, const std::vector<std::string>& keys_read,
                          std::string_view model_type);

// ---- Parameter formulas (hf_params.cpp) ----

// The layers and model-wide shapes of `m`, with parameters counted per role.
void addLayers(const HfModel& m, ModelSpec& spec);

}  // namespace hwl::planner::hf
