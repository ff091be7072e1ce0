// JSON and table forms of plans: the body of POST /v1/plan and the output of `hwledger plan`.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "hwl/planner/plan.hpp"
#include "hwl/result.hpp"

namespace hwl::planner {

// {"model": {config.json}, "context": N, "batch": B, "weights": "...", "kv": "...", "tp": N,
//  "gpu_mem_bytes": B | "gpu_mem": "80GiB", "per_layer": bool, "state_dtype": "...",
//  "prefill_chunk_tokens": N, "activation_bytes": B, "overhead_bytes": B}.
// Unknown keys and wrong types are errors naming the key.
Result<PlanRequest> planRequestFromJson(const boost::json::value& body);

boost::json::object planToJson(const Plan& plan);
std::string planToTable(const Plan& plan);

}  // namespace hwl::planner
