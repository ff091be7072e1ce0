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
  // Gemma 2's first configs also wrote the window as sliding_window_size.
  auto w = r.uintAny({"sliding_window", "sliding_window_size"});
  if (!w && !r.failed()) r.fail("a sliding layer needs key 'sliding_window'");
  return w.value_or(0);
}

// Bounds that keep every parameter and byte count inside 64 bits (the largest published models
// are far below them: 126 layers, hidden 16384, vocabulary 262k, 512 experts).
constexpr std::uint64_t kMaxLayers = 2048, kMaxHidden = 1U << 18, kMaxVocab = 1U << 24,
                        kMaxWidth = 1U << 20, kMaxHeads = 1U << 14, kMaxExperts = 1U << 12;

Status tooLarge(std::string_view what, std::uint64_t v, std::uint64_t max) {
  return invalidArgument("config.json: " + std::string(what) + " " + std::to_string(v) +
                         " is implausibly large (the planner takes up to " + std::to_string(max) +
                         ")");
}

Status readDimensions(ConfigReader& r, HfModel& m) {
  // ChatGLM pads its vocabulary (padded_vocab_size is the embedding's row count).
  m.hidden = r.uintReq({"hidden_size", "n_embd", "n_embed", "d_model"});
  m.n_layers = r.uintReq({"num_hidden_layers", "n_layer", "num_layers", "n_layers"});
  m.vocab = r.uintReq({"padded_vocab_size", "vocab_size"});
  if (r.failed()) return r.error();
  // Per-layer vectors are sized by this number before anything else checks it.
  if (m.n_layers > kMaxLayers) return tooLarge("num_hidden_layers", m.n_layers, kMaxLayers);
  if (m.hidden > kMaxHidden) return tooLarge("hidden_size", m.hidden, kMaxHidden);
  if (m.vocab > kMaxVocab) return tooLarge("vocab_size", m.vocab, kMaxVocab);
  return {};
}

// KV heads when the model type has its own rule for them.
std::optional<std::uint64_t> familyKvHeads(ConfigReader& r, const HfModel& m) {
  const Family& f = m.family;
  if (f.falcon_kv) {
    // FalconAttention: num_kv_heads if new_decoder_architecture or not multi_query, else 1.
    const bool new_arch = r.boolOpt("new_decoder_architecture").value_or(false);
    const bool mq = r.boolOpt("multi_query").value_or(true);
    const auto kv = r.uintAny({"num_kv_heads", "n_head_kv"});
    if (new_arch || !mq) return kv.value_or(m.n_heads);
    return 1;
  }
  if (f.chatglm_kv) {
    const bool mq = r.boolOpt("multi_query_attention").value_or(false);
    const auto groups = r.uintOpt("multi_query_group_num");
    if (mq) return groups.value_or(1);
    return m.n_heads;
  }
  if (f.mpt_attn_config) {
    const json::value* ac = r.find("attn_config");
    if (ac == nullptr) return m.n_heads;
    if (!ac->is_object()) {
      r.fail("key 'attn_config' must be an object, got " + jsonKindName(*ac));
      return std::nullopt;
    }
    ConfigReader a(ac->as_object());
    const std::string type = a.stringOpt("attn_type").value_or("multihead_attention");
    const auto kv = a.uintOpt("kv_n_heads");
    if (a.failed()) {
      r.fail("attn_config: " + a.error().message.substr(sizeof("config.json:")));
      return std::nullopt;
    }
    if (type == "multihead_attention") return m.n_heads;
    if (type == "multiquery_attention") return 1;
    if (type == "grouped_query_attention") return kv.value_or(1);
    r.fail("attn_config.attn_type '" + type + "' is not one the planner knows (" +
           "multihead_attention, multiquery_attention, grouped_query_attention)");
    return std::nullopt;
  }
  return std::nullopt;
}

// Query heads, KV heads (GQA, or MQA through multi_query) and the head size.
Status readAttentionHeads(ConfigReader& r, HfModel& m) {
  m.n_heads = r.uintReq({"num_attention_heads", "n_head", "num_heads", "n_heads"});
  if (r.failed()) return r.error();
  if (m.n_heads > kMaxHeads) return tooLarge("num_attention_heads", m.n_heads, kMaxHeads);
  if (auto kv = familyKvHeads(r, m)) {
    m.n_kv_heads = *kv;
  } else if (r.failed()) {
    return r.error();
  } else if (auto kv =
                 r.uintAny({"num_key_value_heads", "num_kv_heads", "n_head_kv", "n_kv_heads"})) {
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
  if (auto hd = r.uintAny({"head_dim", "attention_head_dim", "kv_channels"})) {
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
  if (m.head_dim > kMaxHeads) return tooLarge("head_dim", m.head_dim, kMaxHeads);
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
// It alone decides which layers slide or chunk: the keys the older rules read (a pattern, a
// Qwen2-style switch, an interval) are looked at and left alone, as transformers leaves them.
Status applyLayerTypes(ConfigReader& r, const json::array& layer_types, HfModel& m) {
  for (const char* k : {"sliding_window_pattern", "_sliding_window_pattern", "use_sliding_window",
                        "max_window_layers", "full_attention_interval", "no_rope_layers",
                        "sliding_window", "attention_chunk_size"}) {
    (void)r.present(k);
  }
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

// Qwen3-Next without layer_types: every interval-th layer is full attention, the others gated
// delta-net (Qwen3NextConfig).
Status applyFullAttentionInterval(ConfigReader& r, HfModel& m) {
  const std::uint64_t interval = r.uintReq({"full_attention_interval"});
  if (r.failed()) return r.error();
  for (std::size_t i = 0; i < m.n_layers; ++i) {
    m.kinds[i] = (i + 1) % interval == 0 ? LayerKind::kAttention : LayerKind::kLinearAttention;
  }
  return {};
}

// Llama 4 without layer_types: layers that use RoPE (no_rope_layers[i] = 1) attend within
// chunks of attention_chunk_size tokens and keep at most one chunk of keys, as vLLM and
// llama.cpp allocate them; NoPE layers (0) are global. Llama4TextConfig's default makes every
// fourth layer NoPE.
Status applyChunkedAttention(ConfigReader& r, HfModel& m) {
  const std::uint64_t chunk = r.uintReq({"attention_chunk_size"});
  if (r.failed()) return r.error();
  std::vector<bool> rope(m.n_layers);
  if (const json::array* a = r.arrayOpt("no_rope_layers"); a != nullptr && !a->empty()) {
    if (a->size() != m.n_layers) {
      return invalidArgument("config.json: no_rope_layers has " + std::to_string(a->size()) +
                             " entries but num_hidden_layers is " + std::to_string(m.n_layers));
    }
    for (std::size_t i = 0; i < m.n_layers; ++i) {
      const json::value& v = (*a)[i];
      if (!(v.is_int64() || v.is_uint64() || v.is_bool())) {
        return invalidArgument("config.json: no_rope_layers[" + std::to_string(i) +
                               "] must be 0 or 1");
      }
      rope[i] = v.is_bool() ? v.as_bool() : v.to_number<std::int64_t>() != 0;
    }
  } else {
    if (r.failed()) return r.error();
    constexpr std::uint64_t kNoRopeInterval = 4;
    for (std::size_t i = 0; i < m.n_layers; ++i) rope[i] = (i + 1) % kNoRopeInterval != 0;
    r.recordDefault("no_rope_layers", "every 4th layer global (NoPE)");
    m.notes.emplace_back(
        "no_rope_layers absent or empty: every 4th layer global, the others chunked (the llama4 "
        "default)");
  }
  for (std::size_t i = 0; i < m.n_layers; ++i) {
    if (rope[i]) m.windows[i] = chunk;
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
  if (r.has("full_attention_interval")) return applyFullAttentionInterval(r, m);
  if (r.has("attention_chunk_size")) return applyChunkedAttention(r, m);
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
    // Even layers slide (HF Gemma2DecoderLayer: not layer_idx % 2); a sliding_window_pattern is
    // looked at and, as in transformers, not used.
    (void)r.present("sliding_window_pattern");
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
    // Qwen2 family: sliding only when enabled, and only from max_window_layers on. The window
    // keys are looked at (and left alone) when it is off.
    (void)r.present("sliding_window");
    (void)r.present("max_window_layers");
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
  if (e.n_experts > kMaxExperts) return tooLarge("the number of experts", e.n_experts, kMaxExperts);
  e.expert_inter = r.uintAny({"moe_intermediate_size", "expert_intermediate_size"})
                       .value_or(m.family.llama4_mlp ? e.shared_inter : m.intermediate);
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
  if (e.expert_inter > kMaxWidth || e.shared_inter > kMaxWidth) {
    return tooLarge("moe_intermediate_size", std::max(e.expert_inter, e.shared_inter), kMaxWidth);
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
  // Qwen's decoder_sparse_step and Llama 4's interleave_moe_layer_step: MoE where (i+1) % step
  // == 0. Llama 4's moe_layers, when given, lists them.
  const std::uint64_t step =
      r.uintAny({"decoder_sparse_step", "interleave_moe_layer_step"}).value_or(1);
  std::optional<std::set<std::uint64_t>> listed;
  if (const json::array* a = r.arrayOpt("moe_layers")) {
    listed.emplace();
    for (const auto& v : *a) {
      if (!v.is_int64() || v.as_int64() < 0) {
        return invalidArgument("config.json: moe_layers must hold non-negative integers");
      }
      listed->insert(static_cast<std::uint64_t>(v.as_int64()));
    }
  }
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
    if (listed) moe = listed->count(i) > 0;
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
  m.attention_bias = r.boolOpt("attention_bias").value_or(false) || m.family.linear_biases;
  m.mlp_bias =
      r.boolOpt("mlp_bias").value_or(false) || m.family.linear_biases || m.family.mlp_biases;
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
  m.intermediate =
      r.uintAny({"intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim"}).value_or(0);
  if (r.failed()) return r.error();
  if (m.intermediate == 0 && m.family.inner_mult > 0) {
    m.intermediate = m.family.inner_mult * m.hidden;
    r.recordDefault("intermediate_size", m.intermediate);
    m.notes.push_back("MLP width absent: " + std::to_string(m.family.inner_mult) +
                      " x hidden_size (the " + m.model_type + " layout)");
  }
  if (m.family.llama4_mlp) {
    // The experts and the shared expert are intermediate_size wide; dense layers are
    // intermediate_size_mlp wide.
    m.moe.shared_inter = m.intermediate;
    m.intermediate = r.uintOr({"intermediate_size_mlp"}, m.intermediate);
    if (r.failed()) return r.error();
  }
  if (m.intermediate > kMaxWidth) return tooLarge("intermediate_size", m.intermediate, kMaxWidth);
  if (auto s = readLayerKinds(r, m); !s) return s;
  // A default only where an attention layer uses it (MLA layers have head sizes of their own).
  if (m.head_dim_from_hidden && anyLayer(m, LayerKind::kAttention)) {
    r.recordDefault("head_dim", m.head_dim);
  }
  if (!m.layer_types && !m.family.every_layer) {
    if (auto s = applySlidingRule(r, m); !s) return s;
  }
  if (auto s = readMoe(r, m); !s) return s;
  // A dense MLP whose width no key gives (and no family rule supplies) is not guessed.
  if (m.intermediate == 0) {
    for (std::size_t i = 0; i < m.n_layers; ++i) {
      if (m.has_mlp[i] && !m.moe_layer[i]) {
        return invalidArgument("config.json: missing required key 'intermediate_size'");
      }
    }
  }
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

namespace {

std::vector<std::string_view> tokensOf(std::string_view key) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t end = std::min(key.find('_', start), key.size());
    out.push_back(key.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Keys that name KV heads, head sizes, windows or attention kinds, under any family's spelling.
bool mayChangeKv(std::string_view key) {
  static constexpr std::string_view kKnown[] = {"n_head_kv",
                                                "num_kv_heads",
                                                "num_key_value_heads",
                                                "multi_query",
                                                "multi_query_attention",
                                                "multi_query_group_num",
                                                "kv_channels",
                                                "attn_config",
                                                "attention_type",
                                                "attention_types",
                                                "layer_types",
                                                "head_dim",
                                                "kv_n_heads",
                                                "n_kv_heads",
                                                "num_kv_groups"};
  for (auto k : kKnown) {
    if (key == k) return true;
  }
  if (key == "chunk_size" || key == "mamba_chunk_size") return false;  // SSM scan blocks
  const auto t = tokensOf(key);
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == "kv" || t[i] == "window" || t[i] == "chunk") return true;
    if (i + 1 < t.size() &&
        ((t[i] == "key" && t[i + 1] == "value") || (t[i] == "head" && t[i + 1] == "dim") ||
         (t[i] == "query" && t[i + 1] == "group"))) {
      return true;
    }
  }
  return false;
}

}  // namespace

Status refuseUnreadKvKeys(const json::object& cfg, const std::vector<std::string>& keys_read,
                          std::string_view model_type) {
  for (const auto& [k, v] : cfg) {
    if (v.is_null() || !mayChangeKv(k)) continue;
    if (std::find(keys_read.begin(), keys_read.end(), std::string_view(k)) != keys_read.end())
      continue;
    return invalidArgument("config.json: key '" + std::string(k) +
                           "' may change the KV cache and the planner does not read it for "
                           "model_type '" +
                           std::string(model_type) + "'; refusing to guess");
  }
  return {};
}

Status readModelLevel(ConfigReader& r, const HfModel& m, ModelSpec& spec) {
  spec.max_context =
      r.uintAny({"max_position_embeddings", "n_positions", "seq_length", "max_seq_len"})
          .value_or(0);

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
  const Family& f = m.family;
  spec.params_final_norm = m.hidden * (f.layernorm_bias ? 2 : 1);
  spec.active_excludes_input_embedding = f.active_excludes_input_embedding;
  if (f.learned_positions) {
    const std::uint64_t positions =
        r.uintAny({"n_positions", "max_position_embeddings"}).value_or(0);
    if (r.failed()) return r.error();
    if (positions == 0 || positions > kMaxVocab) {
      return invalidArgument(
          "config.json: a learned position table needs 'n_positions' or "
          "'max_position_embeddings' between 1 and " +
          std::to_string(kMaxVocab));
    }
    spec.params_embedding_extra += (positions + f.position_offset) * m.hidden;
  }
  if (f.embedding_norm) spec.params_embedding_extra += 2 * m.hidden;
  if (f.lm_head_bias) spec.params_embedding_extra += m.vocab;

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
