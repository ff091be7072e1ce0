// `hwledger plan MODEL --context N ...`: the command's behaviour, independent of flag parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace hwl::planner {

struct PlanCliOptions {
  std::string model;                    // config.json, GGUF, safetensors file/index, or directory
  std::optional<std::uint64_t> context;  // --context (required)
  std::uint64_t batch = 1;              // --batch
  std::string weights = "native";       // --weights
  std::string kv = "auto";              // --kv
  std::string state_dtype = "auto";     // --state-dtype
  std::uint32_t tp = 1;                 // --tp
  std::string gpu_mem;                  // --gpu-mem "80GiB" (empty: no fit check)
  std::string activation;               // --activation SIZE (empty: estimate)
  std::string overhead;                 // --overhead SIZE (empty: default)
  bool json = false;                    // --json
  bool per_layer = false;               // --per-layer
};

// Writes the plan (table or JSON) to `out`, errors to `err`. Returns 0 on success, 2 on bad input
// (flags, model file), 1 when the plan was computed and does not fit the given GPU memory.
int runPlanCommand(const PlanCliOptions& options, std::ostream& out, std::ostream& err);

}  // namespace hwl::planner
