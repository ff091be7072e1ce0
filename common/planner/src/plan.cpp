// The plan: per-GPU memory for weights, KV cache, recurrent state, workspace and runtime
// overhead, and the inverse searches over context and concurrency.
#include "hwl/planner/plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "hwl/planner/formats.hpp"

namespace hwl::planner {
namespace {

std::uint64_t ceilDiv(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

std::uint64_t bitsToBytes(std::uint64_t params, double bits) {
  return static_cast<std::uint64_t>(std::ceil(static_cast<double>(params) * bits / 8.0));
}

struct LayerRates {
  std::uint64_t kv_per_token = 0;  // per GPU, one sequence
  std::uint64_t window = 0;        // 0 = full
  bool has_kv = false;
  std::uint64_t state_per_seq = 0;  // per GPU
  std::uint64_t weights = 0;        // per GPU
};

struct Prepared {
  std::vector<LayerRates> layers;
  std::uint64_t weights = 0;  // per GPU
  std::uint64_t overhead = 0;
  std::optional<std::uint64_t> activation_override;
  // Workspace model inputs (per GPU).
  std::uint64_t act_width = 0;     // elements per token alive at the peak of one layer
  std::uint64_t logits_width = 0;  // vocabulary entries per sequence
  std::uint64_t chunk = 0;
  std::uint32_t act_bytes = 2;
  std::string kv_format, weights_format, state_dtype;
  std::vector<std::string> notes;
};

struct Totals {
  std::uint64_t kv = 0, state = 0, act = 0, total = 0;
  bool overflow = false;  // some byte count does not fit 64 bits
};

// Byte arithmetic that notices when a figure leaves 64 bits (a context x batch typed by a user
// can get there); the value then saturates and `overflow` is set.
struct CheckedBytes {
  bool overflow = false;
  std::uint64_t mul(std::uint64_t a, std::uint64_t b) {
    std::uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) {
      overflow = true;
      return UINT64_MAX;
    }
    return r;
  }
  std::uint64_t add(std::uint64_t a, std::uint64_t b) {
    std::uint64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) {
      overflow = true;
      return UINT64_MAX;
    }
    return r;
  }
};

// Bytes of the weights of one role group in a given format.
struct WeightBits {
  double linear = 16, expert = 16, other = 16, embedding = 16;
  double scale_overhead = 0;  // extra bits per linear parameter (FP8 block scales)
};

// `dtype`: the element type the weights are served in (the checkpoint's, or bf16 for a float32
// checkpoint under "auto").
Result<WeightBits> weightBits(const ModelSpec& m, const WeightFormat& f, const std::string& dtype) {
  WeightBits b;
  if (f.native) {
    auto bytes = plainDtypeBytes(dtype);
    if (!bytes) return bytes.error();
    const double base = 8.0 * *bytes;
    b = {base, base, base, base, 0};
    if (m.quantization == "fp8") {
      b.linear = b.expert = 8;
      // DeepSeek-style block scales: one fp32 per block x block weights.
      if (m.fp8_block > 0)
        b.scale_overhead = 32.0 / (static_cast<double>(m.fp8_block) * m.fp8_block);
    } else if (m.quantization == "mxfp4") {
      b.expert = 4.25;  // gpt-oss quantises the routed experts only (modules_to_not_convert)
    } else if (m.quantization == "int4" || m.quantization == "int8") {
      b.linear = b.expert = m.quantization == "int4" ? 4.15625 : 8;
    }
    return b;
  }
  b.linear = b.expert = f.linear_bits;
  if (f.covers_embeddings) b.embedding = f.linear_bits;
  return b;
}

std::uint64_t layerWeightBytes(const LayerParams& p, const WeightBits& b) {
  const std::uint64_t linear = p.attention + p.mixer + p.dense_mlp;
  return bitsToBytes(linear, b.linear + b.scale_overhead) +
         bitsToBytes(p.experts, b.expert + b.scale_overhead) +
         bitsToBytes(p.router + p.norms, b.other);
}

Result<Prepared> prepare(const PlanRequest& req) {
  const ModelSpec& m = req.model;
  Prepared p;
  if (req.tp == 0) return invalidArgument("tp must be at least 1");
  if (req.tp > 1024)
    return invalidArgument("tp " + std::to_string(req.tp) + " is larger than 1024");
  if (m.layers.empty()) return invalidArgument("the model has no layers");
  if (req.batch == 0) return invalidArgument("batch must be at least 1");
  const std::uint64_t tp = req.tp;

  auto wf = weightFormat(req.weights);
  if (!wf) return wf.error();
  // The dtype the engine runs the model in: vLLM's --dtype auto serves float32 checkpoints in
  // bf16; "native" keeps them in float32.
  const bool cast = wf->cast_fp32 && m.dtype == "fp32";
  const std::string dtype = cast ? "bf16" : m.dtype;
  const std::string kv_name = req.kv == "auto" ? dtype : req.kv;
  auto kf = kvFormat(kv_name);
  if (!kf) return kf.error();
  const std::string st_name = req.state_dtype == "auto"
                                  ? (m.state_dtype.empty() || cast ? dtype : m.state_dtype)
                                  : req.state_dtype;
  auto st_bytes = plainDtypeBytes(st_name);
  if (!st_bytes) return Error{st_bytes.error().code, "state_dtype: " + st_bytes.error().message};
  auto act_bytes = plainDtypeBytes(dtype);
  if (!act_bytes) return act_bytes.error();
  p.act_bytes = std::max<std::uint32_t>(2, *act_bytes);
  p.kv_format = kf->name;
  p.weights_format = wf->native
                         ? wf->name + " (" + (m.quantization.empty() ? dtype : m.quantization) + ")"
                         : wf->name;
  p.state_dtype = st_name;
  if (cast) {
    p.notes.emplace_back(
        "float32 checkpoint served in bf16, as vLLM's --dtype auto does (--weights native keeps "
        "float32)");
  }

  auto bits = weightBits(m, *wf, dtype);
  if (!bits) return bits.error();
  const bool use_stored = wf->native && !cast && m.exact_weight_bytes.has_value();

  bool replicated_note = false;
  std::uint64_t layer_weight_sum = 0;
  std::uint64_t max_width = 0;
  for (const auto& l : m.layers) {
    LayerRates r;
    r.window = l.sliding_window;
    switch (l.kind) {
      case LayerKind::kAttention: {
        // KV heads split across TP ranks; beyond n_kv ranks each rank keeps a replica of one head.
        std::uint64_t heads = ceilDiv(l.n_kv_heads, tp);
        if (tp > l.n_kv_heads) replicated_note = true;
        heads = std::max<std::uint64_t>(heads, 1);
        r.kv_per_token =
            kvRowBytes(*kf, heads * l.head_dim_k) + kvRowBytes(*kf, heads * l.head_dim_v);
        r.has_kv = true;
        const std::uint64_t q_heads = ceilDiv(m.num_attention_heads, tp);
        max_width = std::max(max_width, (q_heads * 2 + heads * 2) * l.head_dim_k);
        break;
      }
      case LayerKind::kMla:
        // The latent and the shared RoPE key are not split by TP: every rank holds them.
        r.kv_per_token = kvRowBytes(*kf, std::uint64_t{l.kv_lora_rank} + l.qk_rope_head_dim);
        r.has_kv = true;
        break;
      case LayerKind::kMamba1:
      case LayerKind::kMamba2:
      case LayerKind::kLinearAttention:
        r.state_per_seq = ceilDiv(l.conv_state_elems + l.ssm_state_elems, tp) * *st_bytes;
        break;
      case LayerKind::kMlpOnly:
        break;
    }
    const std::uint64_t lw = use_stored ? l.stored_bytes : layerWeightBytes(l.params, *bits);
    layer_weight_sum += lw;
    r.weights = ceilDiv(lw, tp);
    if (l.moe) {
      // Routed tokens: each of top-k experts sees its share; gate+up+act for k copies.
      max_width = std::max<std::uint64_t>(
          max_width, 3ULL * m.experts_per_token * ceilDiv(m.moe_intermediate_size, tp));
    } else if (l.params.dense_mlp > 0) {
      max_width = std::max<std::uint64_t>(max_width, 3ULL * ceilDiv(m.intermediate_size, tp));
    }
    p.layers.push_back(r);
  }
  std::uint64_t total_weights = 0;
  if (use_stored) {
    total_weights = *m.exact_weight_bytes;
  } else {
    const std::uint64_t emb = m.params_input_embedding + m.params_output;
    // Position embeddings and an output bias are stored like the embedding; the vision tower
    // stays in 16 bits (or the checkpoint's dtype) whatever the language model is quantised to.
    total_weights = layer_weight_sum +
                    bitsToBytes(emb + m.params_embedding_extra, bits->embedding) +
                    bitsToBytes(m.params_final_norm + m.params_vision, bits->other);
  }
  p.weights = ceilDiv(total_weights, tp);
  if (replicated_note) {
    p.notes.push_back(
        "tp " + std::to_string(tp) +
        " exceeds the KV heads of some layers: each GPU keeps a replica of one KV head");
  }
  if (use_stored) p.notes.emplace_back("weights: exact bytes of the stored tensors");

  p.act_width = 2ULL * m.hidden_size + max_width;
  p.logits_width = m.vocab_size;
  p.chunk = req.prefill_chunk_tokens;
  p.activation_override = req.activation_bytes;
  p.overhead = req.overhead_bytes.value_or(defaultOverheadBytes(req.tp));
  return p;
}

Totals evaluate(const Prepared& p, std::uint64_t context, std::uint64_t batch) {
  Totals t;
  CheckedBytes c;
  for (const auto& l : p.layers) {
    if (l.has_kv) {
      const std::uint64_t kept = l.window == 0 ? context : std::min(context, l.window);
      t.kv = c.add(t.kv, c.mul(c.mul(l.kv_per_token, kept), batch));
    }
    t.state = c.add(t.state, c.mul(l.state_per_seq, batch));
  }
  if (p.activation_override) {
    t.act = *p.activation_override;
  } else {
    // One prefill chunk of T tokens through the widest layer, plus fp32 logits and their softmax
    // copy for the sequences sampled in that step.
    const std::uint64_t tokens =
        std::min(p.chunk, std::max<std::uint64_t>(1, c.mul(context, batch)));
    const std::uint64_t seqs = std::min(batch, tokens);
    t.act = c.add(c.mul(c.mul(tokens, p.act_width), p.act_bytes),
                  c.mul(c.mul(seqs, p.logits_width), 8));
  }
  t.total = c.add(c.add(c.add(p.weights, t.kv), c.add(t.state, t.act)), p.overhead);
  t.overflow = c.overflow;
  return t;
}

bool fitsIn(const Totals& t, std::uint64_t memory_bytes) {
  return !t.overflow && t.total <= memory_bytes;
}

}  // namespace

std::uint64_t defaultOverheadBytes(std::uint32_t tp) {
  // CUDA context + cuBLAS/cuBLASLt workspaces + CUDA-graph pools: 1 GiB per GPU; NCCL channel
  // buffers add 256 MiB when GPUs talk to each other. See docs/planner.md for the sources.
  constexpr std::uint64_t kBase = 1ULL << 30;
  constexpr std::uint64_t kNccl = 256ULL << 20;
  return kBase + (tp > 1 ? kNccl : 0);
}

Result<Plan> computePlan(const PlanRequest& req) {
  auto prep = prepare(req);
  if (!prep) return prep.error();
  const Prepared& p = *prep;
  const ModelSpec& m = req.model;
  Plan plan;
  plan.model_name = m.name;
  plan.architecture = m.architecture;
  plan.context = req.context;
  plan.batch = req.batch;
  plan.tp = req.tp;
  plan.weights_format = p.weights_format;
  plan.kv_format = p.kv_format;
  plan.state_dtype = p.state_dtype;
  plan.params_total = m.paramsTotal();
  plan.params_active = m.paramsActivePublished();
  plan.params_active_including_input_embedding = m.paramsActive();
  plan.params_active_excluding_input_embedding = m.paramsActiveExcludingInputEmbedding();
  plan.params_active_convention = m.active_excludes_input_embedding
                                      ? "excluding the input embedding (the model card's count)"
                                      : "including the input embedding";
  plan.params_vision = m.params_vision;
  plan.defaults = m.defaults;
  plan.params_mtp = m.params_mtp;

  // The layers of longest reach: full attention if any, else the largest window.
  std::uint64_t reach = 0;
  bool any_full = false;
  for (const auto& l : p.layers) {
    if (!l.has_kv) continue;
    if (l.window == 0) any_full = true;
    reach = std::max(reach, l.window);
  }
  for (const auto& l : p.layers) {
    plan.state_bytes_per_sequence += l.state_per_seq;
    if (!l.has_kv) continue;
    plan.kv_bytes_per_token_all_layers += l.kv_per_token;
    if (any_full ? l.window == 0 : l.window == reach) plan.kv_bytes_per_token += l.kv_per_token;
  }

  const Totals t = evaluate(p, req.context, req.batch);
  if (t.overflow) {
    return invalidArgument("context " + std::to_string(req.context) + " x batch " +
                           std::to_string(req.batch) +
                           " needs more bytes than 64 bits can count; no GPU holds that");
  }
  plan.weights_bytes = p.weights;
  plan.kv_bytes = t.kv;
  plan.state_bytes = t.state;
  plan.activations_bytes = t.act;
  plan.overhead_bytes = p.overhead;
  plan.total_bytes = t.total;
  plan.notes = m.notes;
  plan.notes.insert(plan.notes.end(), p.notes.begin(), p.notes.end());
  if (m.max_context > 0 && req.context > m.max_context) {
    plan.notes.push_back("context " + std::to_string(req.context) +
                         " exceeds the model's maximum " + std::to_string(m.max_context));
  }

  if (req.per_layer) {
    for (std::size_t i = 0; i < p.layers.size(); ++i) {
      const LayerRates& r = p.layers[i];
      LayerPlan lp;
      lp.index = static_cast<std::uint32_t>(i);
      lp.kind = m.layers[i].kind;
      lp.sliding_window = r.window;
      lp.weights_bytes = r.weights;
      lp.kv_bytes_per_token = r.kv_per_token;
      const std::uint64_t kept = r.window == 0 ? req.context : std::min(req.context, r.window);
      lp.kv_bytes = r.has_kv ? r.kv_per_token * kept * req.batch : 0;
      lp.state_bytes = r.state_per_seq * req.batch;
      plan.layers.push_back(lp);
    }
  }

  if (req.gpu) plan.throughput = estimateThroughput(req, plan, *req.gpu);

  const std::optional<std::uint64_t> gpu_mem =
      req.gpu_mem_bytes ? req.gpu_mem_bytes
                        : (req.gpu && req.gpu->memory_bytes > 0
                               ? std::optional<std::uint64_t>(req.gpu->memory_bytes)
                               : std::nullopt);
  if (gpu_mem) {
    const std::uint64_t mem = *gpu_mem;
    plan.gpu_mem_bytes = mem;
    plan.fits = t.total <= mem;
    // Both sides are clamped to the int64 range so that the difference cannot wrap.
    constexpr auto kMax = static_cast<std::uint64_t>(INT64_MAX);
    plan.headroom_bytes = static_cast<std::int64_t>(std::min(mem, kMax)) -
                          static_cast<std::int64_t>(std::min(t.total, kMax));
    const std::uint64_t cap = m.max_context > 0 ? m.max_context : (1ULL << 32);
    auto mc = maxContextFor(req, mem, cap);
    if (!mc) return mc.error();
    plan.max_context = *mc;
    plan.max_context_limited_by = (*mc == cap) ? "model" : "memory";
    auto mb = maxBatchFor(req, mem);
    if (!mb) return mb.error();
    plan.max_batch = *mb;
  }
  return plan;
}

Result<std::uint64_t> maxContextFor(const PlanRequest& req, std::uint64_t memory_bytes,
                                    std::uint64_t cap) {
  auto prep = prepare(req);
  if (!prep) return prep.error();
  if (!fitsIn(evaluate(*prep, 0, req.batch), memory_bytes)) return std::uint64_t{0};
  if (fitsIn(evaluate(*prep, cap, req.batch), memory_bytes)) return cap;
  std::uint64_t lo = 0, hi = cap;  // fits(lo), !fits(hi)
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (fitsIn(evaluate(*prep, mid, req.batch), memory_bytes))
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

Result<std::uint64_t> maxBatchFor(const PlanRequest& req, std::uint64_t memory_bytes,
                                  std::uint64_t cap) {
  auto prep = prepare(req);
  if (!prep) return prep.error();
  if (!fitsIn(evaluate(*prep, req.context, 1), memory_bytes)) return std::uint64_t{0};
  if (fitsIn(evaluate(*prep, req.context, cap), memory_bytes)) return cap;
  std::uint64_t lo = 1, hi = cap;
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (fitsIn(evaluate(*prep, req.context, mid), memory_bytes))
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace hwl::planner
