// Throughput upper bounds from the roofline of one GPU: a decode step cannot finish before the
// GPU has read the weights the batch touches, every sequence's KV cache at the context and the
// recurrent state, at peak memory bandwidth; a prefill token cannot take fewer than its FLOPs at
// peak tensor throughput.
#include <algorithm>
#include <cmath>

#include "hwl/planner/plan.hpp"

namespace hwl::planner {
namespace {

// Expected distinct experts a batch of `batch` tokens selects when each picks top_k of n
// uniformly: n x (1 - (1 - k/n)^batch). Real routers are skewed, which touches fewer.
double expertsTouched(std::uint64_t n, std::uint64_t top_k, std::uint64_t batch) {
  if (n == 0) return 0;
  const double p = static_cast<double>(top_k) / static_cast<double>(n);
  return static_cast<double>(n) * (1.0 - std::pow(1.0 - p, static_cast<double>(batch)));
}

}  // namespace

ThroughputEstimate estimateThroughput(const PlanRequest& req, const Plan& plan,
                                      const GpuPeak& gpu) {
  const ModelSpec& m = req.model;
  ThroughputEstimate t;
  t.gpu = gpu.name;
  t.mem_bandwidth = gpu.mem_bandwidth;
  const bool fp8 = gpu.fp8_flops > 0 && (req.weights == "fp8" || m.quantization == "fp8");
  t.peak_flops = fp8 ? gpu.fp8_flops : gpu.bf16_flops;
  t.flops_dtype = fp8 ? "fp8" : "bf16";

  // The share of the resident weights a decode step reads.
  const auto total = static_cast<double>(m.paramsTotal());
  auto unread = static_cast<double>(m.params_input_embedding + m.params_vision);
  for (const LayerSpec& l : m.layers) {
    if (!l.moe || m.num_experts == 0) continue;
    const double touched = expertsTouched(m.num_experts, m.experts_per_token, req.batch);
    unread += static_cast<double>(l.params.experts) *
              (1.0 - touched / static_cast<double>(m.num_experts));
  }
  const double read_share = total > 0 ? std::clamp((total - unread) / total, 0.0, 1.0) : 1.0;
  t.weights_read_bytes =
      static_cast<std::uint64_t>(static_cast<double>(plan.weights_bytes) * read_share);
  t.kv_read_bytes = plan.kv_bytes;
  t.state_rw_bytes = 2 * plan.state_bytes;
  const auto step_bytes =
      static_cast<double>(t.weights_read_bytes + t.kv_read_bytes + t.state_rw_bytes);
  if (step_bytes > 0 && gpu.mem_bandwidth > 0) {
    const double steps_per_s = gpu.mem_bandwidth / step_bytes;
    t.decode_tokens_per_s_per_sequence = steps_per_s;
    t.decode_tokens_per_s = steps_per_s * static_cast<double>(req.batch);
  }

  // FLOPs of one prefill token: a multiply-add per active parameter, and attention over half
  // the context on average (QK^T and PV: 2 x 2 x heads x head size x positions).
  auto flops = 2.0 * static_cast<double>(m.paramsActiveExcludingInputEmbedding());
  const auto heads = static_cast<double>(m.num_attention_heads);
  for (const LayerSpec& l : m.layers) {
    const std::uint64_t kept =
        l.sliding_window == 0 ? req.context : std::min(req.context, l.sliding_window);
    const double avg = static_cast<double>(kept) / 2.0;
    if (l.kind == LayerKind::kAttention) {
      flops += 2.0 * heads * static_cast<double>(l.head_dim_k + l.head_dim_v) * avg;
    } else if (l.kind == LayerKind::kMla) {
      // Absorbed MLA attends over the latent: scores on latent + rope, values on the latent.
      flops += 2.0 * heads * static_cast<double>(2ULL * l.kv_lora_rank + l.qk_rope_head_dim) * avg;
    }
  }
  t.prefill_flops_per_token = flops / static_cast<double>(req.tp);
  if (t.prefill_flops_per_token > 0)
    t.prefill_tokens_per_s = t.peak_flops / t.prefill_flops_per_token;
  return t;
}

}  // namespace hwl::planner
