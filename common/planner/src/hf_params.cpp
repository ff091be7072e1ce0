// Per-layer shapes and parameter counts from what a family reader took from config.json. The
// counts follow the tensors of each family's checkpoints and are checked against published
// safetensors totals (tests/unit/planner, data set in shared/data).
#include "hf_families.hpp"

namespace hwl::planner::hf {
namespace {

std::uint64_t attentionParams(const HfModel& m) {
  const Family& f = m.family;
  const std::uint64_t h = m.hidden, n = m.n_heads, kv = m.n_kv_heads, d = m.head_dim;
  std::uint64_t p = h * n * d + 2 * h * kv * d + n * d * h;  // q, k, v, o
  if (f.gated_q) p += h * n * d;                             // the gate half of q_proj
  if (m.attention_bias || f.qkv_bias) p += n * d + 2 * kv * d;
  if (m.attention_bias) p += h;
  if (f.qk_norm) p += 2 * d;
  if (f.attention_sinks) p += n;
  return p;
}

// DeepSeek MLA: q through an optional low-rank step, k/v through the compressed latent plus a
// decoupled RoPE key, then the output projection.
std::uint64_t mlaParams(const HfModel& m) {
  const MlaShape& a = m.mla_shape;
  const std::uint64_t h = m.hidden, n = m.n_heads;
  const std::uint64_t qk_head = a.nope_dim + a.rope_dim;
  std::uint64_t p = 0;
  if (a.q_lora > 0) {
    p += h * a.q_lora + a.q_lora + a.q_lora * n * qk_head;
  } else {
    p += h * n * qk_head;
  }
  p += h * (a.kv_lora + a.rope_dim) + a.kv_lora + a.kv_lora * n * (a.nope_dim + a.v_dim);
  p += n * a.v_dim * h;
  return p;
}

void setMamba1(const HfModel& m, LayerSpec& l) {
  const MambaShape& s = m.mamba1;
  const std::uint64_t h = m.hidden;
  l.conv_state_elems = (s.conv_kernel - 1) * s.d_inner;
  l.ssm_state_elems = s.d_inner * s.d_state;
  // in_proj, conv1d (+bias), x_proj, dt_proj (+bias), A_log, D, out_proj.
  l.params.mixer = h * 2 * s.d_inner + s.d_inner * s.conv_kernel + (s.conv_bias ? s.d_inner : 0) +
                   s.d_inner * (s.dt_rank + 2 * s.d_state) + s.dt_rank * s.d_inner + s.d_inner +
                   s.d_inner * s.d_state + s.d_inner + s.d_inner * h +
                   (s.proj_bias ? 2 * s.d_inner + h : 0);
  if (m.family.mamba_dt_norms) l.params.mixer += s.dt_rank + 2 * s.d_state;
}

void setMamba2(const HfModel& m, LayerSpec& l) {
  const MambaShape& s = m.mamba2;
  const std::uint64_t h = m.hidden;
  const std::uint64_t conv_dim = s.d_inner + 2 * s.n_groups * s.d_state;
  l.conv_state_elems = (s.conv_kernel - 1) * conv_dim;
  l.ssm_state_elems = s.n_heads * s.head_dim * s.d_state;
  // in_proj (z, x, B, C, dt), conv1d, A_log / D / dt_bias per head, the gated norm, out_proj.
  const std::uint64_t in_proj = 2 * s.d_inner + 2 * s.n_groups * s.d_state + s.n_heads;
  l.params.mixer = h * in_proj + (s.proj_bias ? in_proj : 0) + conv_dim * s.conv_kernel +
                   (s.conv_bias ? conv_dim : 0) + 3 * s.n_heads + s.d_inner + s.d_inner * h +
                   (s.proj_bias ? h : 0);
}

void setLinearAttention(const HfModel& m, LayerSpec& l) {
  const LinearAttentionShape& s = m.linear;
  const std::uint64_t h = m.hidden;
  const std::uint64_t key_dim = s.n_key_heads * s.key_head_dim;
  const std::uint64_t value_dim = s.n_value_heads * s.value_head_dim;
  const std::uint64_t conv_dim = 2 * key_dim + value_dim;
  l.conv_state_elems = (s.conv_kernel - 1) * conv_dim;
  l.ssm_state_elems = s.n_value_heads * s.key_head_dim * s.value_head_dim;
  l.params.mixer = h * (2 * key_dim + 2 * value_dim) + h * 2 * s.n_value_heads +
                   conv_dim * s.conv_kernel + 2 * s.n_value_heads + s.value_head_dim +
                   value_dim * h;
}

}  // namespace

void addLayers(const HfModel& m, ModelSpec& spec) {
  const Family& f = m.family;
  const MoeShape& e = m.moe;
  const std::uint64_t h = m.hidden;
  const std::uint64_t mlp_mats = m.gated_mlp ? 3 : 2;
  const std::uint64_t norms_per_layer =
      f.norms_per_layer ? *f.norms_per_layer : (m.hybrid_pattern ? 1 : 2);

  for (std::size_t i = 0; i < m.n_layers; ++i) {
    LayerSpec l;
    l.kind = m.kinds[i];
    l.sliding_window = m.windows[i];
    l.params.norms = norms_per_layer * h * (f.layernorm_bias ? 2 : 1);
    switch (l.kind) {
      case LayerKind::kAttention:
        l.n_kv_heads = static_cast<std::uint32_t>(m.n_kv_heads);
        l.head_dim_k = l.head_dim_v = static_cast<std::uint32_t>(m.head_dim);
        l.params.attention = attentionParams(m);
        break;
      case LayerKind::kMla:
        l.kv_lora_rank = static_cast<std::uint32_t>(m.mla_shape.kv_lora);
        l.qk_rope_head_dim = static_cast<std::uint32_t>(m.mla_shape.rope_dim);
        l.params.attention = mlaParams(m);
        break;
      case LayerKind::kMamba1:
        setMamba1(m, l);
        break;
      case LayerKind::kMamba2:
        setMamba2(m, l);
        break;
      case LayerKind::kLinearAttention:
        setLinearAttention(m, l);
        break;
      case LayerKind::kMlpOnly:
        break;
    }
    if (m.has_mlp[i]) {
      if (m.moe_layer[i]) {
        l.moe = true;
        const std::uint64_t per_expert =
            mlp_mats * h * e.expert_inter +
            (f.expert_biases ? (mlp_mats - 1) * e.expert_inter + h : 0);
        l.params.experts = e.n_experts * per_expert;
        l.params.experts_active = e.top_k * per_expert;
        l.params.router =
            h * e.n_experts + (f.expert_biases || m.score_correction_bias ? e.n_experts : 0);
        l.params.dense_mlp = mlp_mats * h * e.shared_inter + (e.shared_gate ? h : 0);
      } else {
        l.params.dense_mlp =
            mlp_mats * h * m.intermediate + (m.mlp_bias ? (mlp_mats - 1) * m.intermediate + h : 0);
      }
    }
    spec.layers.push_back(l);
  }

  spec.hidden_size = static_cast<std::uint32_t>(h);
  spec.num_attention_heads = static_cast<std::uint32_t>(m.n_heads);
  spec.intermediate_size = static_cast<std::uint32_t>(m.intermediate);
  spec.moe_intermediate_size = static_cast<std::uint32_t>(e.expert_inter);
  spec.num_experts = static_cast<std::uint32_t>(e.n_experts);
  spec.experts_per_token = static_cast<std::uint32_t>(e.top_k);
  spec.vocab_size = m.vocab;
}

}  // namespace hwl::planner::hf
