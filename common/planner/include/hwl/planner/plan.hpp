// The memory plan: weights, KV cache, recurrent state, workspace and overhead per GPU, and the
// inverse questions (largest context, most sequences) for a given memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hwl/planner/gpus.hpp"
#include "hwl/planner/model_spec.hpp"
#include "hwl/result.hpp"

namespace hwl::planner {

struct PlanRequest {
  ModelSpec model;
  std::uint64_t context = 0;  // tokens per sequence (prompt + generated)
  std::uint64_t batch = 1;    // concurrent sequences
  std::string weights = "auto";
  std::string kv = "auto";           // "auto" = the model's dtype
  std::string state_dtype = "auto";  // "auto" = the model's dtype (vLLM); "fp32" as llama.cpp
  std::uint32_t tp = 1;
  std::optional<std::uint64_t> gpu_mem_bytes;  // per GPU
  bool per_layer = false;
  // Workspace: tokens of one prefill chunk (vLLM's max_num_batched_tokens); overrides below.
  std::uint64_t prefill_chunk_tokens = 2048;
  std::optional<std::uint64_t> activation_bytes;  // replaces the workspace estimate
  std::optional<std::uint64_t> overhead_bytes;    // replaces the runtime overhead default
  // The GPU the plan runs on, for the throughput upper bounds (and its memory, when
  // gpu_mem_bytes is not given).
  std::optional<GpuPeak> gpu;
};

// Roofline upper bounds for one GPU of the plan (each GPU of a TP group works in parallel). No
// engine reaches them: kernels do not run at peak bandwidth or FLOPs, and scheduling, sampling
// and communication take their share.
struct ThroughputEstimate {
  std::string gpu;
  double mem_bandwidth = 0;  // bytes/s, peak
  double peak_flops = 0;     // FLOP/s, dense tensor math at flops_dtype
  std::string flops_dtype;   // "bf16" or "fp8"
  // Bytes one decode step reads per GPU: the weights the batch touches (all but the input
  // embedding, the vision tower and routed experts no sequence selects), every sequence's KV at
  // the context, and the recurrent state read and written.
  std::uint64_t weights_read_bytes = 0;
  std::uint64_t kv_read_bytes = 0;
  std::uint64_t state_rw_bytes = 0;
  double decode_tokens_per_s_per_sequence = 0;
  double decode_tokens_per_s = 0;      // the whole batch
  double prefill_flops_per_token = 0;  // per GPU: 2 x active parameters + attention at the context
  double prefill_tokens_per_s = 0;
};

struct LayerPlan {
  std::uint32_t index = 0;
  LayerKind kind = LayerKind::kAttention;
  std::uint64_t sliding_window = 0;
  std::uint64_t weights_bytes = 0;       // per GPU
  std::uint64_t kv_bytes_per_token = 0;  // per GPU, one sequence
  std::uint64_t kv_bytes = 0;            // per GPU, all sequences at the context
  std::uint64_t state_bytes = 0;         // per GPU, all sequences
};

struct Plan {
  std::string model_name;
  std::string architecture;
  std::uint64_t context = 0;
  std::uint64_t batch = 1;
  std::uint32_t tp = 1;
  std::string weights_format;
  std::string kv_format;
  std::string state_dtype;

  std::uint64_t params_total = 0;
  std::uint64_t params_active = 0;  // as the model card counts (params_active_convention)
  std::uint64_t params_active_including_input_embedding = 0;
  std::uint64_t params_active_excluding_input_embedding = 0;
  std::string params_active_convention;
  std::uint64_t params_vision = 0;  // vision tower and projector, in params_total
  std::uint64_t params_mtp = 0;

  // Per GPU, one sequence: layers of the longest reach (full attention; if every layer slides,
  // the layers with the largest window), and all layers together (the rate below every window).
  std::uint64_t kv_bytes_per_token = 0;
  std::uint64_t kv_bytes_per_token_all_layers = 0;
  std::uint64_t state_bytes_per_sequence = 0;

  // Per GPU.
  std::uint64_t weights_bytes = 0;
  std::uint64_t kv_bytes = 0;
  std::uint64_t state_bytes = 0;
  std::uint64_t activations_bytes = 0;
  std::uint64_t overhead_bytes = 0;
  std::uint64_t total_bytes = 0;

  std::optional<std::uint64_t> gpu_mem_bytes;
  std::optional<bool> fits;
  std::optional<std::int64_t> headroom_bytes;
  // Inverse results when gpu_mem_bytes is given: the largest context at this batch, the most
  // sequences at this context (0 if nothing fits), each capped at the model's maximum context.
  std::optional<std::uint64_t> max_context;
  std::optional<std::uint64_t> max_batch;
  std::string max_context_limited_by;  // "memory" or "model"

  std::vector<LayerPlan> layers;  // filled when per_layer is set
  std::vector<std::string> notes;
  std::vector<DefaultedValue> defaults;          // values used for keys the model file left out
  std::optional<ThroughputEstimate> throughput;  // when the request names a GPU
};

Result<Plan> computePlan(const PlanRequest& request);

// Largest context (tokens per sequence) at request.batch whose total fits `memory_bytes` per GPU;
// 0 if not even an empty context fits. Capped at `cap` (the search stops there).
Result<std::uint64_t> maxContextFor(const PlanRequest& request, std::uint64_t memory_bytes,
                                    std::uint64_t cap);
// Most concurrent sequences at request.context that fit `memory_bytes` per GPU; 0 if none.
Result<std::uint64_t> maxBatchFor(const PlanRequest& request, std::uint64_t memory_bytes,
                                  std::uint64_t cap = 1ULL << 24);

// The roofline upper bounds of `plan` (computed for `request`) on `gpu` (throughput.cpp).
ThroughputEstimate estimateThroughput(const PlanRequest& request, const Plan& plan,
                                      const GpuPeak& gpu);

// The documented defaults of the two estimated terms (see docs/planner.md).
std::uint64_t defaultOverheadBytes(std::uint32_t tp);

}  // namespace hwl::planner
