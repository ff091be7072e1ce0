// Hugging Face config.json -> ModelSpec. Each architecture family spells the same idea with
// different keys; this file maps them onto layer kinds, KV shapes and parameter counts that are
// checked against published safetensors totals (tests/unit/planner, data set in shared/data).
#include "hwl/planner/hf_config.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "hf_reader.hpp"
#include "hwl/planner/json_text.hpp"

namespace hwl::planner {
namespace json = boost::json;

namespace {

std::string dtypeName(std::string_view torch_dtype) {
  if (torch_dtype == "bfloat16") return "bf16";
  if (torch_dtype == "float16" || torch_dtype == "half") return "fp16";
  if (torch_dtype == "float32" || torch_dtype == "float") return "fp32";
  return {};
}

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

struct MambaShape {
  std::uint64_t d_inner = 0, d_state = 0, conv_kernel = 0, n_groups = 0, n_heads = 0, head_dim = 0,
                dt_rank = 0;
  bool conv_bias = true, proj_bias = false;
};

}  // namespace

Result<ModelSpec> hfConfigToSpec(const json::object& top) {
  // Multimodal wrappers keep the language model in a nested object; a few keys (dtype,
  // quantisation, tying) may stay at the top level.
  json::object cfg = top;
  for (const char* nested : {"text_config", "llm_config", "language_config"}) {
    const auto it = top.find(nested);
    if (it != top.end() && it->value().is_object()) {
      cfg = it->value().as_object();
      for (const char* k : {"tie_word_embeddings", "torch_dtype", "dtype", "quantization_config"}) {
        if (!cfg.contains(k) && top.contains(k)) cfg[k] = top.at(k);
      }
      break;
    }
    if (it != top.end() && !it->value().is_null()) {
      return invalidArgument("config.json: key '" + std::string(nested) +
                             "' must be an object, got " + hf::jsonKindName(it->value()));
    }
  }

  hf::ConfigReader r(cfg);
  ModelSpec spec;
  spec.source = "hf_config";
  spec.architecture = r.stringOpt("model_type").value_or("");
  if (auto n = r.stringOpt("_name_or_path")) spec.name = *n;
  const std::string& mt = spec.architecture;

  const bool pure_mamba1 = mt == "mamba" || mt == "falcon_mamba";
  const bool pure_mamba2 = mt == "mamba2";
  const bool pure_ssm = pure_mamba1 || pure_mamba2;

  const std::uint64_t hidden = r.uintReq({"hidden_size", "n_embd", "d_model"});
  const std::uint64_t n_layers = r.uintReq({"num_hidden_layers", "n_layer", "num_layers"});
  const std::uint64_t vocab = r.uintReq({"vocab_size", "padded_vocab_size"});
  if (r.failed()) return r.error();
  if (n_layers > 100000)
    return invalidArgument("config.json: num_hidden_layers is implausibly large");

  std::uint64_t n_heads = 0, n_kv = 0, head_dim = 0;
  if (!pure_ssm) {
    n_heads = r.uintReq({"num_attention_heads", "n_head", "num_heads"});
    if (r.failed()) return r.error();
    if (auto kv = r.uintAny({"num_key_value_heads", "num_kv_heads", "n_head_kv"})) {
      n_kv = *kv;
    } else if (r.boolOpt("multi_query").value_or(false)) {
      n_kv = 1;
    } else if (!r.failed()) {
      n_kv = n_heads;
      spec.notes.push_back("num_key_value_heads absent: taken equal to num_attention_heads (MHA)");
    }
    if (r.failed()) return r.error();
    if (n_kv == 0)
      return invalidArgument("config.json: key 'num_key_value_heads' must be positive, got 0");
    if (n_heads % n_kv != 0) {
      return invalidArgument("config.json: num_attention_heads (" + std::to_string(n_heads) +
                             ") is not a multiple of num_key_value_heads (" + std::to_string(n_kv) +
                             ")");
    }
    if (auto hd = r.uintAny({"head_dim", "attention_head_dim"})) {
      head_dim = *hd;
    } else if (!r.failed()) {
      if (hidden % n_heads != 0) {
        return invalidArgument(
            "config.json: no 'head_dim' and hidden_size (" + std::to_string(hidden) +
            ") is not a multiple of num_attention_heads (" + std::to_string(n_heads) + ")");
      }
      head_dim = hidden / n_heads;
    }
    if (r.failed()) return r.error();
    if (head_dim == 0)
      return invalidArgument("config.json: key 'head_dim' must be positive, got 0");
  }

  const std::uint64_t inter =
      r.uintAny({"intermediate_size", "n_inner", "ffn_hidden_size"}).value_or(0);
  if (r.failed()) return r.error();

  // ---- Layer kinds ----
  std::vector<LayerKind> kinds(n_layers, LayerKind::kAttention);
  std::vector<std::uint64_t> windows(n_layers, 0);
  std::vector<bool> has_mlp(n_layers, true);
  std::vector<bool> moe_layer(n_layers, false);
  const bool mla = r.has("kv_lora_rank");
  if (mla) std::fill(kinds.begin(), kinds.end(), LayerKind::kMla);

  std::optional<std::string> hybrid = r.stringOpt("hybrid_override_pattern");
  const json::array* layer_types = r.arrayOpt("layer_types");
  if (r.failed()) return r.error();

  auto sliding_window_value = [&]() -> std::uint64_t {
    auto w = r.uintOpt("sliding_window");
    if (!w && !r.failed()) r.fail("a sliding layer needs key 'sliding_window'");
    return w.value_or(0);
  };

  if (hybrid) {
    if (hybrid->size() != n_layers) {
      return invalidArgument("config.json: hybrid_override_pattern has " +
                             std::to_string(hybrid->size()) + " entries but num_hidden_layers is " +
                             std::to_string(n_layers));
    }
    for (std::size_t i = 0; i < n_layers; ++i) {
      switch ((*hybrid)[i]) {
        case 'M':
          kinds[i] = LayerKind::kMamba2;
          has_mlp[i] = false;
          break;
        case '*':
          kinds[i] = LayerKind::kAttention;
          has_mlp[i] = false;
          break;
        case '-':
          kinds[i] = LayerKind::kMlpOnly;
          break;
        case 'E':
          kinds[i] = LayerKind::kMlpOnly;
          moe_layer[i] = true;
          break;
        default:
          return invalidArgument("config.json: hybrid_override_pattern has unknown layer symbol '" +
                                 std::string(1, (*hybrid)[i]) + "' at position " +
                                 std::to_string(i) + " (expected M, *, - or E)");
      }
    }
  } else if (pure_ssm) {
    std::fill(kinds.begin(), kinds.end(), pure_mamba1 ? LayerKind::kMamba1 : LayerKind::kMamba2);
    std::fill(has_mlp.begin(), has_mlp.end(), false);
  } else if (r.has("attn_layer_period")) {
    const std::uint64_t period = r.uintReq({"attn_layer_period"});
    const std::uint64_t offset = r.uintOpt("attn_layer_offset").value_or(0);
    if (r.failed()) return r.error();
    if (offset >= period)
      return invalidArgument("config.json: attn_layer_offset must be below attn_layer_period");
    for (std::size_t i = 0; i < n_layers; ++i) {
      kinds[i] = (i % period == offset) ? LayerKind::kAttention : LayerKind::kMamba1;
    }
  } else if (layer_types != nullptr) {
    if (layer_types->size() != n_layers) {
      return invalidArgument("config.json: layer_types has " + std::to_string(layer_types->size()) +
                             " entries but num_hidden_layers is " + std::to_string(n_layers));
    }
    for (std::size_t i = 0; i < n_layers; ++i) {
      const json::value& t = (*layer_types)[i];
      if (!t.is_string())
        return invalidArgument("config.json: layer_types[" + std::to_string(i) +
                               "] must be a string");
      const std::string_view s = t.as_string();
      if (s == "full_attention" || s == "attention") {
        kinds[i] = mla ? LayerKind::kMla : LayerKind::kAttention;
      } else if (s == "sliding_attention") {
        windows[i] = sliding_window_value();
      } else if (s == "chunked_attention") {
        // Chunked attention (Llama 4) keeps at most one chunk of keys per sequence.
        auto c = r.uintOpt("attention_chunk_size");
        if (!c && !r.failed()) r.fail("a chunked_attention layer needs key 'attention_chunk_size'");
        windows[i] = c.value_or(0);
      } else if (s == "linear_attention") {
        kinds[i] = LayerKind::kLinearAttention;
      } else if (s == "mamba") {
        kinds[i] = LayerKind::kMamba2;
      } else {
        return invalidArgument(
            "config.json: layer_types[" + std::to_string(i) + "] is '" + std::string(s) +
            "', not one of full_attention, sliding_attention, chunked_attention, "
            "linear_attention, mamba");
      }
      if (r.failed()) return r.error();
    }
  }

  // Sliding-window patterns for configs without layer_types.
  if (layer_types == nullptr && !pure_ssm) {
    auto set_sliding = [&](auto predicate) {
      const std::uint64_t w = sliding_window_value();
      for (std::size_t i = 0; i < n_layers; ++i) {
        if (kinds[i] == LayerKind::kAttention && predicate(i)) windows[i] = w;
      }
    };
    if (mt == "gemma2") {
      // Gemma 2 alternates: even layers slide (HF Gemma2DecoderLayer: not layer_idx % 2).
      set_sliding([](std::size_t i) { return i % 2 == 0; });
    } else if (mt == "gemma3" || mt == "gemma3_text" || mt == "cohere2" ||
               r.has("sliding_window_pattern")) {
      std::uint64_t pattern = r.uintOpt("sliding_window_pattern").value_or(mt == "cohere2" ? 4 : 6);
      if (!r.has("sliding_window_pattern")) {
        spec.notes.push_back("sliding_window_pattern absent: " + std::to_string(pattern) +
                             " (the " + mt + " default)");
      }
      if (pattern == 0)
        return invalidArgument("config.json: key 'sliding_window_pattern' must be positive, got 0");
      set_sliding([pattern](std::size_t i) { return (i + 1) % pattern != 0; });
    } else if (r.present("use_sliding_window")) {
      // Qwen2 family: sliding only when enabled, and only from max_window_layers on.
      if (r.boolOpt("use_sliding_window").value_or(false)) {
        const std::uint64_t from = r.uintOpt("max_window_layers").value_or(0);
        set_sliding([from](std::size_t i) { return i >= from; });
      }
    } else if (r.has("sliding_window") && !mla) {
      // Mistral style: one window for every layer.
      set_sliding([](std::size_t) { return true; });
    }
    if (r.failed()) return r.error();
  }

  // ---- MoE ----
  const std::uint64_t n_experts =
      r.uintAny({"num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"})
          .value_or(0);
  std::uint64_t top_k = 0, expert_inter = 0, shared_inter = 0;
  bool shared_gate = false;
  if (r.failed()) return r.error();
  if (n_experts > 0) {
    top_k = r.uintReq(
        {"num_experts_per_tok", "experts_per_token", "num_experts_per_token", "moe_topk"});
    expert_inter = r.uintAny({"moe_intermediate_size", "expert_intermediate_size"}).value_or(inter);
    if (auto ns = r.uintOpt("n_shared_experts")) shared_inter = *ns * expert_inter;
    if (auto si = r.uintOpt("shared_expert_intermediate_size"); si && *si > 0) {
      shared_inter = *si;
      shared_gate = true;  // Qwen2-MoE gates its shared expert with one sigmoid unit
    }
    if (r.failed()) return r.error();
    if (top_k > n_experts) {
      return invalidArgument("config.json: num_experts_per_tok (" + std::to_string(top_k) +
                             ") exceeds the number of experts (" + std::to_string(n_experts) + ")");
    }
    if (expert_inter == 0)
      return invalidArgument("config.json: missing required key 'moe_intermediate_size'");
    if (!hybrid) {
      std::set<std::uint64_t> mlp_only;
      if (const json::array* a = r.arrayOpt("mlp_only_layers")) {
        for (const auto& v : *a) {
          if (v.is_uint64())
            mlp_only.insert(v.as_uint64());
          else if (v.is_int64() && v.as_int64() >= 0)
            mlp_only.insert(static_cast<std::uint64_t>(v.as_int64()));
          else
            return invalidArgument("config.json: mlp_only_layers must hold non-negative integers");
        }
      }
      const std::uint64_t first_dense = r.uintOpt("first_k_dense_replace").value_or(0);
      const std::uint64_t freq = r.uintOpt("moe_layer_freq").value_or(1);
      const std::uint64_t step = r.uintOpt("decoder_sparse_step").value_or(1);
      const std::optional<std::uint64_t> e_period = r.uintOpt("expert_layer_period");
      const std::uint64_t e_offset = r.uintOpt("expert_layer_offset").value_or(0);
      if (r.failed()) return r.error();
      if (freq == 0 || step == 0 || (e_period && *e_period == 0)) {
        return invalidArgument("config.json: MoE layer period must be positive");
      }
      for (std::size_t i = 0; i < n_layers; ++i) {
        if (!has_mlp[i]) continue;
        bool moe = i >= first_dense && i % freq == 0 && (i + 1) % step == 0 && !mlp_only.count(i);
        if (e_period) moe = i % *e_period == e_offset;
        moe_layer[i] = moe;
      }
    }
  }

  // ---- MLA ----
  std::uint64_t kv_lora = 0, q_lora = 0, rope_dim = 0, nope_dim = 0, v_dim = 0;
  if (mla) {
    kv_lora = r.uintReq({"kv_lora_rank"});
    q_lora = r.uintOpt("q_lora_rank").value_or(0);
    rope_dim = r.uintReq({"qk_rope_head_dim"});
    nope_dim = r.uintReq({"qk_nope_head_dim"});
    v_dim = r.uintReq({"v_head_dim"});
    if (r.failed()) return r.error();
  }

  // ---- SSM shapes ----
  MambaShape m1, m2;
  const bool any_m1 = std::count(kinds.begin(), kinds.end(), LayerKind::kMamba1) > 0;
  const bool any_m2 = std::count(kinds.begin(), kinds.end(), LayerKind::kMamba2) > 0;
  if (any_m1) {
    const std::uint64_t expand = r.uintAny({"mamba_expand", "expand"}).value_or(2);
    m1.d_inner =
        pure_mamba1 ? r.uintAny({"intermediate_size"}).value_or(expand * hidden) : expand * hidden;
    m1.d_state = r.uintAny({"mamba_d_state", "state_size"}).value_or(0);
    m1.conv_kernel = r.uintAny({"mamba_d_conv", "conv_kernel"}).value_or(0);
    if (r.failed()) return r.error();
    if (m1.d_state == 0)
      return invalidArgument("config.json: missing required key 'mamba_d_state' (SSM state size)");
    if (m1.conv_kernel == 0)
      return invalidArgument("config.json: missing required key 'mamba_d_conv' (conv kernel)");
    const json::value* dt =
        r.find("mamba_dt_rank") ? r.find("mamba_dt_rank") : r.find("time_step_rank");
    if (dt != nullptr && dt->is_string() && dt->as_string() == "auto") {
      m1.dt_rank = (hidden + 15) / 16;
    } else {
      m1.dt_rank = r.uintAny({"mamba_dt_rank", "time_step_rank"}).value_or((hidden + 15) / 16);
    }
    m1.conv_bias = r.boolOpt("mamba_conv_bias").value_or(r.boolOpt("use_conv_bias").value_or(true));
    m1.proj_bias = r.boolOpt("mamba_proj_bias").value_or(r.boolOpt("use_bias").value_or(false));
    if (r.failed()) return r.error();
  }
  if (any_m2) {
    m2.n_heads = r.uintAny({"mamba_num_heads", "num_heads", "mamba_n_heads"}).value_or(0);
    m2.head_dim = r.uintAny({"mamba_head_dim", "head_dim", "mamba_d_head"}).value_or(0);
    m2.d_state = r.uintAny({"ssm_state_size", "state_size", "mamba_d_state"}).value_or(0);
    m2.n_groups = r.uintAny({"n_groups", "mamba_n_groups"}).value_or(1);
    m2.conv_kernel = r.uintAny({"conv_kernel", "mamba_d_conv"}).value_or(0);
    m2.conv_bias = r.boolOpt("use_conv_bias").value_or(true);
    m2.proj_bias = r.boolOpt("use_bias").value_or(false);
    if (r.failed()) return r.error();
    if (m2.n_heads == 0)
      return invalidArgument("config.json: missing required key 'mamba_num_heads' (Mamba-2 heads)");
    if (m2.head_dim == 0)
      return invalidArgument("config.json: missing required key 'mamba_head_dim'");
    if (m2.d_state == 0)
      return invalidArgument("config.json: missing required key 'ssm_state_size'");
    if (m2.conv_kernel == 0)
      return invalidArgument("config.json: missing required key 'conv_kernel'");
    m2.d_inner = m2.n_heads * m2.head_dim;
  }
  std::uint64_t la_nk = 0, la_dk = 0, la_nv = 0, la_dv = 0, la_kc = 0;
  if (std::count(kinds.begin(), kinds.end(), LayerKind::kLinearAttention) > 0) {
    la_nk = r.uintReq({"linear_num_key_heads"});
    la_dk = r.uintReq({"linear_key_head_dim"});
    la_nv = r.uintReq({"linear_num_value_heads"});
    la_dv = r.uintReq({"linear_value_head_dim"});
    la_kc = r.uintReq({"linear_conv_kernel_dim"});
    if (r.failed()) return r.error();
  }

  // ---- Parameters per layer ----
  const bool attn_bias = r.boolOpt("attention_bias").value_or(false);
  const bool qkv_bias = attn_bias || startsWith(mt, "qwen2");
  const bool qk_norm = startsWith(mt, "qwen3") || startsWith(mt, "gemma3");
  const bool sinks = mt == "gpt_oss";
  const bool mlp_bias = r.boolOpt("mlp_bias").value_or(false);
  const std::string act =
      r.stringOpt("mlp_hidden_act").value_or(r.stringOpt("hidden_act").value_or("silu"));
  if (r.failed()) return r.error();
  // Gated (SwiGLU/GeGLU) MLPs have gate, up and down; relu2/GPT-style MLPs only up and down.
  const bool gated = !(act == "relu2" || mt == "nemotron_h" || mt == "starcoder2" || mt == "gpt2" ||
                       mt == "gpt_bigcode" || mt == "gpt_neox" || mt == "falcon" || mt == "phi");
  const std::uint64_t mlp_mats = gated ? 3 : 2;
  const std::uint64_t norms_per_layer =
      (startsWith(mt, "gemma2") || startsWith(mt, "gemma3")) ? 4 : (hybrid || pure_ssm ? 1 : 2);
  const bool expert_bias = mt == "gpt_oss";
  const bool router_bias = mt == "gpt_oss";
  const bool score_bias = r.stringOpt("topk_method").value_or("") == "noaux_tc";
  if (r.failed()) return r.error();

  auto attention_params = [&]() -> std::uint64_t {
    const std::uint64_t q = hidden * n_heads * head_dim, kv = hidden * n_kv * head_dim;
    std::uint64_t p = q + 2 * kv + n_heads * head_dim * hidden;
    if (qkv_bias) p += n_heads * head_dim + 2 * n_kv * head_dim;
    if (attn_bias) p += hidden;
    if (qk_norm) p += 2 * head_dim;
    if (sinks) p += n_heads;
    return p;
  };
  auto mla_params = [&]() -> std::uint64_t {
    const std::uint64_t qk_head = nope_dim + rope_dim;
    std::uint64_t p = 0;
    if (q_lora > 0)
      p += hidden * q_lora + q_lora + q_lora * n_heads * qk_head;
    else
      p += hidden * n_heads * qk_head;
    p += hidden * (kv_lora + rope_dim) + kv_lora + kv_lora * n_heads * (nope_dim + v_dim);
    p += n_heads * v_dim * hidden;
    return p;
  };

  for (std::size_t i = 0; i < n_layers; ++i) {
    LayerSpec l;
    l.kind = kinds[i];
    l.sliding_window = windows[i];
    l.params.norms = norms_per_layer * hidden;
    switch (l.kind) {
      case LayerKind::kAttention:
        l.n_kv_heads = static_cast<std::uint32_t>(n_kv);
        l.head_dim_k = l.head_dim_v = static_cast<std::uint32_t>(head_dim);
        l.params.attention = attention_params();
        break;
      case LayerKind::kMla:
        l.kv_lora_rank = static_cast<std::uint32_t>(kv_lora);
        l.qk_rope_head_dim = static_cast<std::uint32_t>(rope_dim);
        l.params.attention = mla_params();
        break;
      case LayerKind::kMamba1: {
        const MambaShape& m = m1;
        l.conv_state_elems = (m.conv_kernel - 1) * m.d_inner;
        l.ssm_state_elems = m.d_inner * m.d_state;
        l.params.mixer = hidden * 2 * m.d_inner + m.d_inner * m.conv_kernel +
                         (m.conv_bias ? m.d_inner : 0) + m.d_inner * (m.dt_rank + 2 * m.d_state) +
                         m.dt_rank * m.d_inner + m.d_inner + m.d_inner * m.d_state + m.d_inner +
                         m.d_inner * hidden + (m.proj_bias ? 2 * m.d_inner + hidden : 0);
        if (mt == "jamba") l.params.mixer += m.dt_rank + 2 * m.d_state;  // dt/B/C layer norms
        break;
      }
      case LayerKind::kMamba2: {
        const MambaShape& m = m2;
        const std::uint64_t conv_dim = m.d_inner + 2 * m.n_groups * m.d_state;
        l.conv_state_elems = (m.conv_kernel - 1) * conv_dim;
        l.ssm_state_elems = m.n_heads * m.head_dim * m.d_state;
        const std::uint64_t in_proj = 2 * m.d_inner + 2 * m.n_groups * m.d_state + m.n_heads;
        l.params.mixer = hidden * in_proj + (m.proj_bias ? in_proj : 0) + conv_dim * m.conv_kernel +
                         (m.conv_bias ? conv_dim : 0) + 3 * m.n_heads + m.d_inner +
                         m.d_inner * hidden + (m.proj_bias ? hidden : 0);
        break;
      }
      case LayerKind::kLinearAttention: {
        const std::uint64_t key_dim = la_nk * la_dk, value_dim = la_nv * la_dv;
        const std::uint64_t conv_dim = 2 * key_dim + value_dim;
        l.conv_state_elems = (la_kc - 1) * conv_dim;
        l.ssm_state_elems = la_nv * la_dk * la_dv;
        l.params.mixer = hidden * (2 * key_dim + 2 * value_dim) + hidden * 2 * la_nv +
                         conv_dim * la_kc + 2 * la_nv + la_dv + value_dim * hidden;
        break;
      }
      case LayerKind::kMlpOnly:
        break;
    }
    if (has_mlp[i]) {
      if (moe_layer[i]) {
        l.moe = true;
        const std::uint64_t per_expert = mlp_mats * hidden * expert_inter +
                                         (expert_bias ? (mlp_mats - 1) * expert_inter + hidden : 0);
        l.params.experts = n_experts * per_expert;
        l.params.experts_active = top_k * per_expert;
        l.params.router = hidden * n_experts + (router_bias || score_bias ? n_experts : 0);
        l.params.dense_mlp = mlp_mats * hidden * shared_inter + (shared_gate ? hidden : 0);
      } else {
        l.params.dense_mlp =
            mlp_mats * hidden * inter + (mlp_bias ? (mlp_mats - 1) * inter + hidden : 0);
      }
    }
    spec.layers.push_back(l);
  }

  // ---- Model-level ----
  spec.hidden_size = static_cast<std::uint32_t>(hidden);
  spec.num_attention_heads = static_cast<std::uint32_t>(n_heads);
  spec.intermediate_size = static_cast<std::uint32_t>(inter);
  spec.moe_intermediate_size = static_cast<std::uint32_t>(expert_inter);
  spec.num_experts = static_cast<std::uint32_t>(n_experts);
  spec.experts_per_token = static_cast<std::uint32_t>(top_k);
  spec.vocab_size = vocab;
  spec.max_context =
      r.uintAny({"max_position_embeddings", "n_positions", "seq_length"}).value_or(0);

  std::optional<bool> tied = r.boolOpt("tie_word_embeddings");
  if (r.failed()) return r.error();
  if (!tied) {
    tied = startsWith(mt, "gemma") || pure_ssm;
    spec.notes.push_back(std::string("tie_word_embeddings absent: ") + (*tied ? "true" : "false") +
                         " (the " + (mt.empty() ? std::string("transformers") : mt) + " default)");
  }
  spec.tied_embeddings = *tied;
  spec.params_input_embedding = vocab * hidden;
  spec.params_output = spec.tied_embeddings ? 0 : vocab * hidden;
  spec.params_final_norm = hidden;

  if (auto n = r.uintOpt("num_nextn_predict_layers"); n && *n > 0 && !spec.layers.empty()) {
    // Each MTP module is one more decoder layer plus eh_proj (2H x H) and three norms; runtimes
    // load it only for speculative decoding, so it is reported apart from the resident total.
    const LayerSpec& last = spec.layers.back();
    spec.params_mtp = *n * (last.params.total() + 2 * hidden * hidden + 3 * hidden);
    spec.notes.push_back(std::to_string(*n) + " multi-token-prediction layer(s) (" +
                         std::to_string(spec.params_mtp) + " parameters) not counted as resident");
  }

  std::string dt = r.stringOpt("torch_dtype").value_or(r.stringOpt("dtype").value_or(""));
  if (r.failed()) return r.error();
  if (dt.empty()) {
    spec.dtype = "bf16";
    spec.notes.push_back("torch_dtype absent: bf16 assumed");
  } else {
    spec.dtype = dtypeName(dt);
    if (spec.dtype.empty())
      return invalidArgument("config.json: torch_dtype '" + dt + "' is not a floating-point type");
  }

  if (const json::value* q = r.find("quantization_config")) {
    if (!q->is_object())
      return invalidArgument("config.json: key 'quantization_config' must be an object, got " +
                             hf::jsonKindName(*q));
    hf::ConfigReader qr(q->as_object());
    const std::string method = qr.stringOpt("quant_method").value_or("");
    if (qr.failed()) return qr.error();
    if (method.empty())
      return invalidArgument("config.json: quantization_config has no 'quant_method'");
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
  return spec;
}

Result<ModelSpec> parseHfConfig(std::string_view json_text) {
  auto v = parseJsonLenient(json_text, "config.json");
  if (!v) return v.error();
  if (!v->is_object())
    return invalidArgument("config.json: top level must be an object, got " + hf::jsonKindName(*v));
  return hfConfigToSpec(v->as_object());
}

}  // namespace hwl::planner
