// GGUF metadata -> ModelSpec: llama.cpp's arch-generic keys for shapes, tensor infos for exact
// parameter counts and bytes.
#include <algorithm>
#include <cmath>
#include <map>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/gguf.hpp"

namespace hwl::planner {
namespace {

class Meta {
 public:
  Meta(const GgufFile& f, std::string arch) : f_(f), arch_(std::move(arch)) {}

  [[nodiscard]] const GgufValue* find(const std::string& suffix) const {
    const auto it = f_.metadata.find(arch_ + "." + suffix);
    return it == f_.metadata.end() ? nullptr : &it->second;
  }

  // A scalar, or a per-layer array (llama.cpp allows both for head counts and FFN sizes).
  Result<std::vector<std::uint64_t>> perLayer(const std::string& suffix, std::uint64_t n_layers,
                                              std::optional<std::uint64_t> fallback) const {
    const GgufValue* v = find(suffix);
    if (v == nullptr) {
      if (!fallback) return invalidArgument("GGUF: missing key '" + arch_ + "." + suffix + "'");
      return std::vector<std::uint64_t>(n_layers, *fallback);
    }
    if (const auto* arr = std::get_if<GgufArray>(&v->data)) {
      if (arr->items.size() != n_layers) {
        return invalidArgument("GGUF: key '" + arch_ + "." + suffix + "' has " +
                               std::to_string(arr->items.size()) + " entries but block_count is " +
                               std::to_string(n_layers));
      }
      std::vector<std::uint64_t> out;
      for (const auto& item : arr->items) {
        auto u = item.asUint();
        if (!u)
          return invalidArgument("GGUF: key '" + arch_ + "." + suffix +
                                 "' must hold non-negative integers");
        out.push_back(*u);
      }
      return out;
    }
    auto u = v->asUint();
    if (!u)
      return invalidArgument("GGUF: key '" + arch_ + "." + suffix +
                             "' must be a non-negative integer");
    return std::vector<std::uint64_t>(n_layers, *u);
  }

  Result<std::optional<std::uint64_t>> uintOpt(const std::string& suffix) const {
    const GgufValue* v = find(suffix);
    if (v == nullptr) return std::optional<std::uint64_t>{};
    auto u = v->asUint();
    if (!u)
      return invalidArgument("GGUF: key '" + arch_ + "." + suffix +
                             "' must be a non-negative integer");
    return std::optional<std::uint64_t>{*u};
  }

  Result<std::uint64_t> uintReq(const std::string& suffix) const {
    auto v = uintOpt(suffix);
    if (!v) return v.error();
    if (!v->has_value()) return invalidArgument("GGUF: missing key '" + arch_ + "." + suffix + "'");
    return **v;
  }

 private:
  const GgufFile& f_;
  std::string arch_;
};

// Which GGUF tensors of a block belong to which role.
void addTensorToLayer(LayerParams& p, const std::string& leaf, std::uint64_t n,
                      double active_share) {
  if (leaf.find("_exps") != std::string::npos) {
    p.experts += n;
    p.experts_active +=
        static_cast<std::uint64_t>(std::llround(static_cast<double>(n) * active_share));
  } else if (leaf.find("ffn_gate_inp") != std::string::npos ||
             leaf.find("exp_probs_b") != std::string::npos) {
    p.router += n;
  } else if (leaf.find("norm") != std::string::npos) {
    p.norms += n;
  } else if (leaf.rfind("ssm", 0) == 0) {
    p.mixer += n;
  } else if (leaf.rfind("ffn", 0) == 0) {
    p.dense_mlp += n;
  } else {
    p.attention += n;
  }
}

}  // namespace

Result<ModelSpec> ggufToSpec(const GgufFile& file, std::string name) {
  const auto arch_it = file.metadata.find("general.architecture");
  if (arch_it == file.metadata.end() ||
      !std::holds_alternative<std::string>(arch_it->second.data)) {
    return invalidArgument("GGUF: missing string key 'general.architecture'");
  }
  const std::string arch = std::get<std::string>(arch_it->second.data);
  const Meta m(file, arch);
  ModelSpec spec;
  spec.source = "gguf";
  spec.architecture = arch;
  spec.name = std::move(name);
  if (auto it = file.metadata.find("general.name");
      it != file.metadata.end() && std::holds_alternative<std::string>(it->second.data)) {
    spec.name = std::get<std::string>(it->second.data);
  }

  auto block_count = m.uintReq("block_count");
  if (!block_count) return block_count.error();
  auto hidden = m.uintReq("embedding_length");
  if (!hidden) return hidden.error();
  if (*block_count == 0 || *block_count > 100000)
    return invalidArgument("GGUF: block_count out of range");
  auto nextn = m.uintOpt("nextn_predict_layers");
  if (!nextn) return nextn.error();
  const std::uint64_t n_mtp = nextn->value_or(0);
  if (n_mtp >= *block_count)
    return invalidArgument("GGUF: nextn_predict_layers must be below block_count");
  const std::uint64_t n_layers = *block_count - n_mtp;  // MTP blocks come last

  const bool pure_ssm = arch == "mamba" || arch == "mamba2";
  auto heads = m.perLayer("attention.head_count", *block_count,
                          pure_ssm ? std::optional<std::uint64_t>(0) : std::nullopt);
  if (!heads) return heads.error();
  const std::uint64_t max_heads = *std::max_element(heads->begin(), heads->end());
  auto kv_heads = m.perLayer("attention.head_count_kv", *block_count, max_heads);
  if (!kv_heads) return kv_heads.error();
  auto ff = m.perLayer("feed_forward_length", *block_count, std::uint64_t{0});
  if (!ff) return ff.error();

  std::uint64_t key_len = 0, value_len = 0;
  if (max_heads > 0) {
    auto k = m.uintOpt("attention.key_length");
    auto v = m.uintOpt("attention.value_length");
    if (!k) return k.error();
    if (!v) return v.error();
    if (!k->has_value() && *hidden % max_heads != 0) {
      return invalidArgument(
          "GGUF: no attention.key_length and embedding_length is not a multiple of head_count");
    }
    key_len = k->value_or(*hidden / max_heads);
    value_len = v->value_or(key_len);
  }
  auto kv_lora = m.uintOpt("attention.kv_lora_rank");
  if (!kv_lora) return kv_lora.error();
  auto rope_dim = m.uintOpt("rope.dimension_count");
  if (!rope_dim) return rope_dim.error();
  const bool mla = kv_lora->has_value() && **kv_lora > 0;
  if (mla && !rope_dim->has_value())
    return invalidArgument("GGUF: MLA model without '" + arch + ".rope.dimension_count'");

  auto window = m.uintOpt("attention.sliding_window");
  if (!window) return window.error();
  // Which layers slide: an explicit per-layer bool array, a pattern period, or llama.cpp's
  // per-architecture pattern (gemma2/gpt-oss every other layer, gemma3 five of six, cohere2 3/4).
  std::vector<bool> sliding(*block_count, false);
  if (window->value_or(0) > 0) {
    std::uint64_t period = 1;
    if (arch == "gemma2" || arch == "gpt-oss" || arch == "gpt_oss")
      period = 2;
    else if (arch == "gemma3")
      period = 6;
    else if (arch == "cohere2")
      period = 4;
    const GgufValue* pat = m.find("attention.sliding_window_pattern");
    const GgufArray* pat_arr = pat ? std::get_if<GgufArray>(&pat->data) : nullptr;
    if (pat_arr != nullptr) {
      if (pat_arr->items.size() != *block_count) {
        return invalidArgument("GGUF: attention.sliding_window_pattern has " +
                               std::to_string(pat_arr->items.size()) +
                               " entries but block_count is " + std::to_string(*block_count));
      }
      for (std::size_t i = 0; i < sliding.size(); ++i) {
        const bool* b = std::get_if<bool>(&pat_arr->items[i].data);
        if (b == nullptr)
          return invalidArgument("GGUF: attention.sliding_window_pattern must hold bools");
        sliding[i] = *b;
      }
    } else {
      if (pat != nullptr) {
        auto p = pat->asUint();
        if (!p || *p == 0)
          return invalidArgument("GGUF: attention.sliding_window_pattern must be positive");
        period = *p;
      }
      // llama.cpp: a layer slides when il % period < period - 1 (period 1: every layer).
      for (std::size_t i = 0; i < sliding.size(); ++i)
        sliding[i] = period == 1 || i % period < period - 1;
    }
  }

  auto conv = m.uintOpt("ssm.conv_kernel");
  auto inner = m.uintOpt("ssm.inner_size");
  auto state = m.uintOpt("ssm.state_size");
  auto groups = m.uintOpt("ssm.group_count");
  for (auto* r : {&conv, &inner, &state, &groups}) {
    if (!*r) return r->error();
  }
  const bool has_ssm = conv->has_value() && state->has_value() && inner->has_value();

  auto experts = m.uintOpt("expert_count");
  auto used = m.uintOpt("expert_used_count");
  if (!experts) return experts.error();
  if (!used) return used.error();
  const double share = experts->value_or(0) > 0
                           ? static_cast<double>(used->value_or(0)) / static_cast<double>(**experts)
                           : 0.0;

  for (std::uint64_t i = 0; i < n_layers; ++i) {
    LayerSpec l;
    if ((*kv_heads)[i] == 0 || pure_ssm) {
      if ((*ff)[i] > 0 && !pure_ssm) {
        l.kind = LayerKind::kMlpOnly;
      } else if (!has_ssm) {
        return invalidArgument("GGUF: layer " + std::to_string(i) +
                               " has no KV heads and no ssm.* keys");
      } else {
        const std::uint64_t g = groups->value_or(0);
        l.kind = g > 0 ? LayerKind::kMamba2 : LayerKind::kMamba1;
        l.conv_state_elems = (**conv - 1) * (**inner + 2 * g * **state);
        l.ssm_state_elems = **inner * **state;
      }
    } else if (mla) {
      l.kind = LayerKind::kMla;
      l.kv_lora_rank = static_cast<std::uint32_t>(**kv_lora);
      l.qk_rope_head_dim = static_cast<std::uint32_t>(**rope_dim);
    } else {
      l.kind = LayerKind::kAttention;
      l.n_kv_heads = static_cast<std::uint32_t>((*kv_heads)[i]);
      l.head_dim_k = static_cast<std::uint32_t>(key_len);
      l.head_dim_v = static_cast<std::uint32_t>(value_len);
      if (sliding[i]) l.sliding_window = **window;
    }
    spec.layers.push_back(l);
  }

  // Tensors: exact element counts and bytes, by layer and role.
  std::uint64_t total_params = 0, total_bytes = 0, mtp_params = 0;
  std::map<std::uint32_t, std::uint64_t> bytes_by_type;
  for (const auto& t : file.tensors) {
    if (t.name.rfind("blk.", 0) == 0) {
      const std::size_t dot = t.name.find('.', 4);
      std::uint64_t idx = 0;
      try {
        idx = std::stoull(t.name.substr(4, dot - 4));
      } catch (const std::exception&) {
        return invalidArgument("GGUF: tensor '" + t.name + "' has no block index");
      }
      if (idx >= *block_count) {
        return invalidArgument("GGUF: tensor '" + t.name + "' names block " + std::to_string(idx) +
                               " but block_count is " + std::to_string(*block_count));
      }
      if (idx >= n_layers) {
        mtp_params += t.elements;
        continue;
      }
      const std::string leaf = dot == std::string::npos ? "" : t.name.substr(dot + 1);
      addTensorToLayer(spec.layers[idx].params, leaf, t.elements, share);
      spec.layers[idx].stored_bytes += t.bytes;
    } else if (t.name.rfind("token_embd.", 0) == 0) {
      spec.params_input_embedding += t.elements;
    } else if (t.name.rfind("output.", 0) == 0) {
      spec.params_output += t.elements;
    } else {
      spec.params_final_norm += t.elements;
    }
    total_params += t.elements;
    total_bytes += t.bytes;
    bytes_by_type[t.ggml_type] += t.bytes;
  }
  spec.params_mtp = mtp_params;
  spec.exact_params = total_params;
  spec.exact_weight_bytes = total_bytes;
  spec.tied_embeddings = spec.params_output == 0;
  spec.hidden_size = static_cast<std::uint32_t>(*hidden);
  spec.num_attention_heads = static_cast<std::uint32_t>(max_heads);
  spec.intermediate_size = static_cast<std::uint32_t>(*std::max_element(ff->begin(), ff->end()));
  auto eff = m.uintOpt("expert_feed_forward_length");
  if (!eff) return eff.error();
  spec.moe_intermediate_size = static_cast<std::uint32_t>(eff->value_or(0));
  spec.num_experts = static_cast<std::uint32_t>(experts->value_or(0));
  spec.experts_per_token = static_cast<std::uint32_t>(used->value_or(0));
  for (auto& l : spec.layers) l.moe = l.params.experts > 0;
  auto vocab = m.uintOpt("vocab_size");
  if (!vocab) return vocab.error();
  spec.vocab_size = vocab->value_or(*hidden > 0 ? spec.params_input_embedding / *hidden : 0);
  auto ctx = m.uintOpt("context_length");
  if (!ctx) return ctx.error();
  spec.max_context = ctx->value_or(0);
  // llama.cpp defaults: KV cache in f16, recurrent state in f32.
  spec.dtype = "fp16";
  spec.state_dtype = "fp32";
  if (!bytes_by_type.empty()) {
    const auto top =
        std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    spec.quantization = "gguf:" + std::string(ggmlType(top->first)->name);
  }
  if (n_mtp > 0) {
    spec.notes.push_back(std::to_string(n_mtp) +
                         " multi-token-prediction block(s) not counted as resident");
  }
  return spec;
}

}  // namespace hwl::planner
