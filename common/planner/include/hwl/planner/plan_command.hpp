// `hwledger plan MODEL --context N ...`: the command's behaviour, independent of flag parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "hwl/planner/plan.hpp"
#include "hwl/result.hpp"

namespace hwl::planner {

struct PlanCliOptions {
  std::string model;                     // config.json, GGUF, safetensors file/index, or directory
  std::optional<std::uint64_t> context;  // --context (required)
  std::uint64_t batch = 1;               // --batch
  std::string weights = "auto";          // --weights
  std::string kv = "auto";               // --kv
  std::string state_dtype = "auto";      // --state-dtype
  std::uint32_t tp = 1;                  // --tp
  std::string gpu_mem;                   // --gpu-mem "80GiB" (empty: no fit check)
  std::string activation;                // --activation SIZE (empty: estimate)
  std::string overhead;                  // --overhead SIZE (empty: default)
  std::string gpu;                       // --gpu NAME: throughput bounds (and memory) of it
  bool json = false;                     // --json
  bool per_layer = false;                // --per-layer
};

// The plan request the options describe, with the model loaded; the error names the flag.
// Refuses a zero context or batch, a context over 2^32 tokens (a negative number typed on the
// command line arrives wrapped around) and a TP degree outside 1..1024.
Result<PlanRequest> planRequestFromCli(const PlanCliOptions& options);

// Writes the plan (table or JSON) to `out`, errors to `err`. Returns 0 on success, 2 on bad input
// (flags, model file), 1 when the plan was computed and does not fit the given GPU memory.
int runPlanCommand(const PlanCliOptions& options, std::ostream& out, std::ostream& err);

}  // namespace hwl::planner
