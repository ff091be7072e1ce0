// The config.json key groups every model family shares: dimensions, attention heads, layer kinds
// (hybrid patterns, Jamba periods, layer_types), sliding windows, MoE placement, MLA ranks, SSM
// and linear-attention shapes, weight-layout flags, and the model-level keys (context, tying,
// multi-token prediction, dtype, quantisation). Family readers (hf_families.cpp) run them through
// readDecoder after setting what their family implies.
//
// The order of reads is part of the behaviour: a config with several problems reports the first
// key read, so every family reads the groups in the same order.
#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "hf_families.hpp"

namespace hwl::planner::hf {
namespace json = boost::json;

namespace {

std::string dtypeName(std::string_view torch_dtype) {
  if (torch_dtype == "bfloat16") return "bf16";
  if (torch_dtype == "float16" || torch_dtype == "half") return "fp16";
  if (torch_dtype == "float32" || torch_dtype == "float") return "fp32";
  return {};
}

// sliding_window, for a layer that slides; its absence is an error only then.
std::uint64_t slidingWindowValue(ConfigReader& r) {
  auto w = r.uintOpt("sliding_window");
  if (!w && !r.failed()) r.fail("a sliding layer needs key 'sliding_window'");
  return w.value_or(0);
}

Status readDimensions(ConfigReader& r, HfModel& m) {
  m.hidden = r.uintReq({"hidden_size", "n_embd", "d_model"});
  m.n_layers = r.uintReq({"num_hidden_layers", "n_layer", "num_layers"});
  m.vocab = r.uintReq({"vocab_size", "padded_vocab_size"});
  if (r.failed()) return r.error();
  // Per-layer vectors are sized by this number before anything else checks it.
  if (m.n_layers > 100000) {
    return invalidArgument("config.json: num_hidden_layers is implausibly large");
  }
  return {};
}

// Query heads, KV heads (GQA, or MQA through multi_query) and the head size.
Status readAttentionHeads(ConfigReader& r, HfModel& m) {
  m.n_heads = r.uintReq({"num_attention_heads", "n_head", "num_heads"});
  if (r.failed()) return r.error();
  if (auto kv = r.uintAny({"num_key_value_heads", "num_kv_heads", "n_head_kv"})) {
    m.n_kv_heads = *kv;
  } else if (r.boolOpt("multi_query").value_or(false)) {
    m.n_kv_heads = 1;
  } else if (!r.failed()) {
    m.n_kv_heads = m.n_heads;
    r.recordDefault("num_key_value_heads", m.n_heads);
    m.notes.emplace_back("num_key_value_heads absent: taken equal to num_attention_heads (MHA)");
  }
  if (r.failed()) return r.error();
  if (m.n_kv_heads == 0) {
    return invalidArgument("config.json: key 'num_key_value_heads' must be positive, got 0");
  }
  if (m.n_heads % m.n_kv_heads != 0) {
    return invalidArgument("config.json: num_attention_heads (" + std::to_string(m.n_heads) +
                           ") is not a multiple of num_key_value_heads (" +
                           std::to_string(m.n_kv_heads) + ")");
  }
  if (auto hd = r.uintAny({"head_dim", "attention_head_dim"})) {
    m.head_dim = *hd;
  } else if (!r.failed()) {
    if (m.hidden % m.n_heads != 0) {
      return invalidArgument(
          "config.json: no 'head_dim' and hidden_size (" + std::to_string(m.hidden) +
          ") is not a multiple of num_attention_heads (" + std::to_string(m.n_heads) + ")");
    }
    m.head_dim = m.hidden / m.n_heads;
    m.head_dim_from_hidden = true;
  }
  if (r.failed()) return r.error();
  if (m.head_dim == 0)
    return invalidArgument("config.json: key 'head_dim' must be positive, got 0");
  return {};
}

// Nemotron-H: one symbol per layer. Mamba and attention layers carry no MLP; '-' and 'E' are
// MLP-only layers, dense and MoE.
Status applyHybridPattern(const std::string& pattern, HfModel& m) {
  if (pattern.size() != m.n_layers) {
    return invalidArgument("config.json: hybrid_override_pattern has " +
                           std::to_string(pattern.size()) + " entries but num_hidden_layers is " +
                           std::to_string(m.n_layers));
  }
  for (std::size_t i = 0; i < m.n_layers; ++i) {
    switch (pattern[i]) {
      case 'M':
        m.kinds[i] = LayerKind::kMamba2;
        m.has_mlp[i] = false;
        break;
      case '*':
        m.kinds[i] = LayerKind::kAttention;
        m.has_mlp[i] = false;
        break;
      case '-':
        m.kinds[i] = LayerKind::kMlpOnly;
        break;
      case 'E':
        m.kinds[i] = LayerKind::kMlpOnly;
        m.moe_layer[i] = true;
        break;
      default:
        return invalidArgument("config.json: hybrid_override_pattern has unknown layer symbol '" +
                               std::string(1, pattern[i]) + "' at position " + std::to_string(i) +
                               " (expected M, *, - or E)");
    }
  }
  return {};
}

// Jamba: attention on every period-th layer (at the offset), Mamba-1 elsewhere.
Status applyAttentionPeriod(ConfigReader& r, HfModel& m) {
  const std::uint64_t period = r.uintReq({"attn_layer_period"});
  const std::uint64_t offset = r.uintOr({"attn_layer_offset"}, 0);
  if (r.failed()) return r.error();
  if (offset >= period) {
    return invalidArgument("config.json: attn_layer_offset must be below attn_layer_period");
  }
  for (std::size_t i = 0; i < m.n_layers; ++i) {
    m.kinds[i] = (i % period == offset) ? LayerKind::kAttention : LayerKind::kMamba1;
  }
  return {};
}

// transformers' per-layer list (gpt-oss, Gemma 3 and Qwen3-Next in recent releases, Llama 4).
Status applyLayerTypes(ConfigReader& r, const json::array& layer_types, HfModel& m) {
  if (layer_types.size() != m.n_layers) {
    return invalidArgument("config.json: layer_types has " + std::to_string(layer_types.size()) +
                           " entries but num_hidden_layers is " + std::to_string(m.n_layers));
  }
  for (std::size_t i = 0; i < m.n_layers; ++i) {
    const json::value& t = layer_types[i];
    if (!t.is_string()) {
      return invalidArgument("config.json: layer_types[" + std::to_string(i) +
                             "] must be a string");
    }
    const std::string_view s = t.as_string();
    if (s == "full_attention" || s == "attention") {
      m.kinds[i] = m.mla ? LayerKind::kMla : LayerKind::kAttention;
    } else if (s == "sliding_attention") {
      m.windows[i] = slidingWindowValue(r);
    } else if (s == "chunked_attention") {
      // Chunked attention (Llama 4) keeps at most one chunk of keys per sequence.
      auto c = r.uintOpt("attention_chunk_size");
      if (!c && !r.failed()) r.fail("a chunked_attention layer needs key 'attention_chunk_size'");
      m.windows[i] = c.value_or(0);
    } else if (s == "linear_attention") {
      m.kinds[i] = LayerKind::kLinearAttention;
    } else if (s == "mamba") {
      m.kinds[i] = LayerKind::kMamba2;
    } else {
      return invalidArgument("config.json: layer_types[" + std::to_string(i) + "] is '" +
                             std::string(s) +
                             "', not one of full_attention, sliding_attention, chunked_attention, "
                             "linear_attention, mamba");
    }
    if (r.failed()) return r.error();
  }
  return {};
}

// Layer kinds, in order of precedence: hybrid_override_pattern, the family's single kind,
// attn_layer_period, layer_types; otherwise every layer is attention (MLA with kv_lora_rank).
Status readLayerKinds(ConfigReader& r, HfModel& m) {
  m.kinds.assign(m.n_layers, LayerKind::kAttention);
  m.windows.assign(m.n_layers, 0);
  m.has_mlp.assign(m.n_layers, true);
  m.moe_layer.assign(m.n_layers, false);
  m.mla = r.has("kv_lora_rank");
  if (m.mla) std::fill(m.kinds.begin(), m.kinds.end(), LayerKind::kMla);

  const std::optional<std::string> hybrid = r.stringOpt("hybrid_override_pattern");
  const json::array* layer_types = r.arrayOpt("layer_types");
  if (r.failed()) return r.error();
  m.hybrid_pattern = hybrid.has_value();
  m.layer_types = layer_types != nullptr;

  if (hybrid) return applyHybridPattern(*hybrid, m);
  if (m.family.every_layer) {
    std::fill(m.kinds.begin(), m.kinds.end(), *m.family.every_layer);
    std::fill(m.has_mlp.begin(), m.has_mlp.end(), false);
    return {};
  }
  if (r.has("attn_layer_period")) return applyAttentionPeriod(r, m);
  if (layer_types != nullptr) return applyLayerTypes(r, *layer_types, m);
  return {};
}

// Which attention layers slide, for configs without layer_types.
Status applySlidingRule(ConfigReader& r, HfModel& m) {
  auto set_sliding = [&](auto predicate) {
    const std::uint64_t w = slidingWindowValue(r);
    for (std::size_t i = 0; i < m.n_layers; ++i) {
      if (m.kinds[i] == LayerKind::kAttention && predicate(i)) m.windows[i] = w;
    }
  };
  const Family& f = m.family;
  if (f.sliding == SlidingRule::kAlternate) {
    // Even layers slide (HF Gemma2DecoderLayer: not layer_idx % 2).
    set_sliding([](std::size_t i) { return i % 2 == 0; });
  } else if (f.sliding == SlidingRule::kPattern || r.has("sliding_window_pattern")) {
    std::uint64_t pattern = r.uintOpt("sliding_window_pattern").value_or(f.sliding_pattern_default);
    if (!r.has("sliding_window_pattern")) {
      r.recordDefault("sliding_window_pattern", pattern);
      m.notes.push_back("sliding_window_pattern absent: " + std::to_string(pattern) + " (the " +
                        m.model_type + " default)");
    }
    if (pattern == 0) {
      return invalidArgument("config.json: key 'sliding_window_pattern' must be positive, got 0");
    }
    set_sliding([pattern](std::size_t i) { return (i + 1) % pattern != 0; });
  } else if (r.present("use_sliding_window")) {
    // Qwen2 family: sliding only when enabled, and only from max_window_layers on.
    if (r.boolOpt("use_sliding_window").value_or(false)) {
      const std::uint64_t from = r.uintOr({"max_window_layers"}, 0);
      set_sliding([from](std::size_t i) { return i >= from; });
    }
  } else if (r.has("sliding_window") && !m.mla) {
    // Mistral style: one window for every layer.
    set_sliding([](std::size_t) { return true; });
  }
  if (r.failed()) return r.error();
  return {};
}

// Expert count, top-k and widths, and which layers route (first_k_dense_replace,
// moe_layer_freq, decoder_sparse_step, mlp_only_layers or Jamba's expert period; a hybrid
// pattern names its MoE layers itself).
Status readMoe(ConfigReader& r, HfModel& m) {
  MoeShape& e = m.moe;
  e.n_experts =
      r.uintAny({"num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"})
          .value_or(0);
  if (r.failed()) return r.error();
  if (e.n_experts == 0) return {};
  e.top_k =
      r.uintReq({"num_experts_per_tok", "experts_per_token", "num_experts_per_token", "moe_topk"});
  e.expert_inter =
      r.uintAny({"moe_intermediate_size", "expert_intermediate_size"}).value_or(m.intermediate);
  if (auto ns = r.uintOpt("n_shared_experts")) e.shared_inter = *ns * e.expert_inter;
  if (auto si = r.uintOpt("shared_expert_intermediate_size"); si && *si > 0) {
    e.shared_inter = *si;
    e.shared_gate = true;
  }
  if (r.failed()) return r.error();
  if (e.top_k > e.n_experts) {
    return invalidArgument("config.json: num_experts_per_tok (" + std::to_string(e.top_k) +
                           ") exceeds the number of experts (" + std::to_string(e.n_experts) + ")");
  }
  if (e.expert_inter == 0) {
    return invalidArgument("config.json: missing required key 'moe_intermediate_size'");
  }
  if (m.hybrid_pattern) return {};

  std::set<std::uint64_t> mlp_only;
  if (const json::array* a = r.arrayOpt("mlp_only_layers")) {
    for (const auto& v : *a) {
      if (v.is_uint64()) {
        mlp_only.insert(v.as_uint64());
      } else if (v.is_int64() && v.as_int64() >= 0) {
        mlp_only.insert(static_cast<std::uint64_t>(v.as_int64()));
      } else {
        return invalidArgument("config.json: mlp_only_layers must hold non-negative integers");
      }
    }
  }
  const std::uint64_t first_dense = r.uintOpt("first_k_dense_replace").value_or(0);
  const std::uint64_t freq = r.uintOpt("moe_layer_freq").value_or(1);
  const std::uint64_t step = r.uintOpt("decoder_sparse_step").value_or(1);
  const std::optional<std::uint64_t> e_period = r.uintOpt("expert_layer_period");
  const std::uint64_t e_offset = r.uintOpt("expert_layer_offset").value_or(0);
  if (r.failed()) return r.error();
  if (e_period && !r.has("expert_layer_offset")) r.recordDefault("expert_layer_offset", e_offset);
  if (freq == 0 || step == 0 || (e_period && *e_period == 0)) {
    return invalidArgument("config.json: MoE layer period must be positive");
  }
  for (std::size_t i = 0; i < m.n_layers; ++i) {
    if (!m.has_mlp[i]) continue;
    bool moe = i >= first_dense && i % freq == 0 && (i + 1) % step == 0 && !mlp_only.count(i);
    if (e_period) moe = i % *e_period == e_offset;
    m.moe_layer[i] = moe;
  }
  return {};
}

Status readMla(ConfigReader& r, HfModel& m) {
  MlaShape& a = m.mla_shape;
  a.kv_lora = r.uintReq({"kv_lora_rank"});
  a.q_lora = r.uintOpt("q_lora_rank").value_or(0);  // 0: q projected without a low-rank step
  a.rope_dim = r.uintReq({"qk_rope_head_dim"});
  a.nope_dim = r.uintReq({"qk_nope_head_dim"});
  a.v_dim = r.uintReq({"v_head_dim"});
  if (r.failed()) return r.error();
  return {};
}

// Mamba-1 (MambaConfig, and Jamba's mamba_* keys).
Status readMamba1Shape(ConfigReader& r, HfModel& m) {
  MambaShape& s = m.mamba1;
  const std::uint64_t expand = r.uintOr({"mamba_expand", "expand"}, 2);
  s.d_inner = m.family.mamba_inner_from_intermediate_size
                  ? r.uintOr({"intermediate_size"}, expand * m.hidden)
                  : expand * m.hidden;
  s.d_state = r.uintAny({"mamba_d_state", "state_size"}).value_or(0);
  s.conv_kernel = r.uintAny({"mamba_d_conv", "conv_kernel"}).value_or(0);
  if (r.failed()) return r.error();
  if (s.d_state == 0) {
    return invalidArgument("config.json: missing required key 'mamba_d_state' (SSM state size)");
  }
  if (s.conv_kernel == 0) {
    return invalidArgument("config.json: missing required key 'mamba_d_conv' (conv kernel)");
  }
  // "auto" is ceil(hidden / 16), as in MambaConfig.
  const json::value* dt =
      r.find("mamba_dt_rank") ? r.find("mamba_dt_rank") : r.find("time_step_rank");
  if (dt != nullptr && dt->is_string() && dt->as_string() == "auto") {
    s.dt_rank = (m.hidden + 15) / 16;
  } else {
    s.dt_rank = r.uintOr({"mamba_dt_rank", "time_step_rank"}, (m.hidden + 15) / 16);
  }
  s.conv_bias = r.boolEither("mamba_conv_bias", "use_conv_bias", true);
  s.proj_bias = r.boolEither("mamba_proj_bias", "use_bias", false);
  if (r.failed()) return r.error();
  return {};
}

// Mamba-2 (Mamba2Config, and Nemotron-H's mamba_* keys).
Status readMamba2Shape(ConfigReader& r, HfModel& m) {
  MambaShape& s = m.mamba2;
  s.n_heads = r.uintAny({"mamba_num_heads", "num_heads", "mamba_n_heads"}).value_or(0);
  s.head_dim = r.uintAny({"mamba_head_dim", "head_dim", "mamba_d_head"}).value_or(0);
  s.d_state = r.uintAny({"ssm_state_size", "state_size", "mamba_d_state"}).value_or(0);
  s.n_groups = r.uintOr({"n_groups", "mamba_n_groups"}, 1);
  s.conv_kernel = r.uintAny({"conv_kernel", "mamba_d_conv"}).value_or(0);
  s.conv_bias = r.boolOr("use_conv_bias", true);
  s.proj_bias = r.boolOr("use_bias", false);
  if (r.failed()) return r.error();
  if (s.n_heads == 0) {
    return invalidArgument("config.json: missing required key 'mamba_num_heads' (Mamba-2 heads)");
  }
  if (s.head_dim == 0) return invalidArgument("config.json: missing required key 'mamba_head_dim'");
  if (s.d_state == 0) return invalidArgument("config.json: missing required key 'ssm_state_size'");
  if (s.conv_kernel == 0) return invalidArgument("config.json: missing required key 'conv_kernel'");
  s.d_inner = s.n_heads * s.head_dim;
  return {};
}

// Gated delta-net layers (Qwen3-Next's linear_attention).
Status readLinearAttentionShape(ConfigReader& r, HfModel& m) {
  LinearAttentionShape& s = m.linear;
  s.n_key_heads = r.uintReq({"linear_num_key_heads"});
  s.key_head_dim = r.uintReq({"linear_key_head_dim"});
  s.n_value_heads = r.uintReq({"linear_num_value_heads"});
  s.value_head_dim = r.uintReq({"linear_value_head_dim"});
  s.conv_kernel = r.uintReq({"linear_conv_kernel_dim"});
  if (r.failed()) return r.error();
  return {};
}

// Biases, MLP gating and router score correction, as far as keys tell.
Status readWeightLayout(ConfigReader& r, HfModel& m) {
  m.attention_bias = r.boolOpt("attention_bias").value_or(false);
  m.mlp_bias = r.boolOpt("mlp_bias").value_or(false);
  // Both spellings are read (and checked) even when the first is present.
  const std::string act =
      r.stringOpt("mlp_hidden_act").value_or(r.stringOpt("hidden_act").value_or("silu"));
  if (r.failed()) return r.error();
  // Gated (SwiGLU/GeGLU) MLPs have gate, up and down; relu2/GPT-style MLPs only up and down.
  m.gated_mlp = !(act == "relu2" || m.family.ungated_mlp);
  m.score_correction_bias = r.stringOpt("topk_method").value_or("") == "noaux_tc";
  if (r.failed()) return r.error();
  return {};
}

bool anyLayer(const HfModel& m, LayerKind kind) {
  return std::count(m.kinds.begin(), m.kinds.end(), kind) > 0;
}

}  // namespace

Status readDecoder(ConfigReader& r, HfModel& m) {
  if (auto s = readDimensions(r, m); !s) return s;
  if (!m.family.every_layer) {
    if (auto s = readAttentionHeads(r, m); !s) return s;
  }
  m.intermediate = r.uintAny({"intermediate_size", "n_inner", "ffn_hidden_size"}).value_or(0);
  if (r.failed()) return r.error();
  if (auto s = readLayerKinds(r, m); !s) return s;
  // A default only where an attention layer uses it (MLA layers have head sizes of their own).
  if (m.head_dim_from_hidden && anyLayer(m, LayerKind::kAttention)) {
    r.recordDefault("head_dim", m.head_dim);
  }
  if (!m.layer_types && !m.family.every_layer) {
    if (auto s = applySlidingRule(r, m); !s) return s;
  }
  if (auto s = readMoe(r, m); !s) return s;
  if (m.mla) {
    if (auto s = readMla(r, m); !s) return s;
  }
  if (anyLayer(m, LayerKind::kMamba1)) {
    if (auto s = readMamba1Shape(r, m); !s) return s;
  }
  if (anyLayer(m, LayerKind::kMamba2)) {
    if (auto s = readMamba2Shape(r, m); !s) return s;
  }
  if (anyLayer(m, LayerKind::kLinearAttention)) {
    if (auto s = readLinearAttentionShape(r, m); !s) return s;
  }
  return readWeightLayout(r, m);
}

Status readModelLevel(ConfigReader& r, const HfModel& m, ModelSpec& spec) {
  spec.max_context =
      r.uintAny({"max_position_embeddings", "n_positions", "seq_length"}).value_or(0);

  std::optional<bool> tied = r.boolOpt("tie_word_embeddings");
  if (r.failed()) return r.error();
  if (!tied) {
    tied = m.family.tied_embeddings_default;
    r.recordDefault("tie_word_embeddings", *tied);
    const std::string& mt = m.model_type;
    spec.notes.push_back(std::string("tie_word_embeddings absent: ") + (*tied ? "true" : "false") +
                         " (the " + (mt.empty() ? std::string("transformers") : mt) + " default)");
  }
  spec.tied_embeddings = *tied;
  spec.params_input_embedding = m.vocab * m.hidden;
  spec.params_output = spec.tied_embeddings ? 0 : m.vocab * m.hidden;
  spec.params_final_norm = m.hidden;

  if (auto n = r.uintOpt("num_nextn_predict_layers"); n && *n > 0 && !spec.layers.empty()) {
    // Each MTP module is one more decoder layer plus eh_proj (2H x H) and three norms; runtimes
    // load it only for speculative decoding, so it is reported apart from the resident total.
    const LayerSpec& last = spec.layers.back();
    spec.params_mtp = *n * (last.params.total() + 2 * m.hidden * m.hidden + 3 * m.hidden);
    spec.notes.push_back(std::to_string(*n) + " multi-token-prediction layer(s) (" +
                         std::to_string(spec.params_mtp) + " parameters) not counted as resident");
  }

  // Both spellings are read (and checked) even when the first is present.
  std::string dt = r.stringOpt("torch_dtype").value_or(r.stringOpt("dtype").value_or(""));
  if (r.failed()) return r.error();
  if (dt.empty()) {
    spec.dtype = "bf16";
    r.recordDefault("torch_dtype", "bfloat16");
    spec.notes.emplace_back("torch_dtype absent: bf16 assumed");
  } else {
    spec.dtype = dtypeName(dt);
    if (spec.dtype.empty()) {
      return invalidArgument("config.json: torch_dtype '" + dt + "' is not a floating-point type");
    }
  }

  if (const json::value* q = r.find("quantization_config")) {
    if (!q->is_object()) {
      return invalidArgument("config.json: key 'quantization_config' must be an object, got " +
                             jsonKindName(*q));
    }
    ConfigReader qr(q->as_object());
    const std::string method = qr.stringOpt("quant_method").value_or("");
    if (qr.failed()) return qr.error();
    if (method.empty()) {
      return invalidArgument("config.json: quantization_config has no 'quant_method'");
    }
    spec.quantization = method;
    if (method == "fp8") {
      spec.fp8_block = 0;
      if (const json::array* b = qr.arrayOpt("weight_block_size"); b && !b->empty()) {
        if (!(*b)[0].is_int64() || (*b)[0].as_int64() <= 0 || (*b)[0].as_int64() > 65536) {
          return invalidArgument(
              "config.json: quantization_config.weight_block_size must hold positive integers");
        }
        spec.fp8_block = static_cast<std::uint32_t>((*b)[0].as_int64());
      }
      if (qr.failed()) return qr.error();
    } else if (method == "awq" || method == "gptq") {
      const std::uint64_t bits = qr.uintOpt("bits").value_or(4);
      if (qr.failed()) return qr.error();
      spec.quantization = bits == 8 ? "int8" : "int4";
    }
  }
  if (r.failed()) return r.error();
  return {};
}

}  // namespace hwl::planner::hf
