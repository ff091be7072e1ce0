// `hwledger plan`: validates the options, loads the model, prints the plan.
#include "hwl/planner/plan_command.hpp"

#include <boost/json/serialize.hpp>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/gpus.hpp"
#include "hwl/planner/load_model.hpp"
#include "hwl/planner/plan.hpp"
#include "hwl/planner/plan_json.hpp"

namespace hwl::planner {

Result<PlanRequest> planRequestFromCli(const PlanCliOptions& o) {
  auto bad = [](const std::string& m) { return invalidArgument(m); };
  if (o.model.empty())
    return bad("MODEL is required (config.json, GGUF, safetensors or a directory)");
  if (!o.context) return bad("--context is required");
  constexpr std::uint64_t kMaxContext = 1ULL << 32, kMaxBatch = 1ULL << 24;
  if (*o.context == 0 || *o.context > kMaxContext)
    return bad("--context must be between 1 and " + std::to_string(kMaxContext) + " tokens");
  if (o.batch == 0 || o.batch > kMaxBatch)
    return bad("--batch must be between 1 and " + std::to_string(kMaxBatch));
  if (o.tp == 0 || o.tp > 1024) return bad("--tp must be between 1 and 1024");
  if (auto f = weightFormat(o.weights); !f) return bad("--weights: " + f.error().message);
  if (o.kv != "auto") {
    if (auto f = kvFormat(o.kv); !f) return bad("--kv: " + f.error().message);
  }
  if (o.state_dtype != "auto") {
    if (auto f = plainDtypeBytes(o.state_dtype); !f)
      return bad("--state-dtype: " + f.error().message);
  }

  PlanRequest req;
  req.context = *o.context;
  req.batch = o.batch;
  req.weights = o.weights;
  req.kv = o.kv;
  req.state_dtype = o.state_dtype;
  req.tp = o.tp;
  req.per_layer = o.per_layer;
  if (!o.gpu_mem.empty()) {
    auto mem = parseByteSize(o.gpu_mem);
    if (!mem) return bad("--gpu-mem: " + mem.error().message);
    req.gpu_mem_bytes = *mem;
  }
  if (!o.activation.empty()) {
    auto n = parseByteSize(o.activation);
    if (!n) return bad("--activation: " + n.error().message);
    req.activation_bytes = *n;
  }
  if (!o.overhead.empty()) {
    auto n = parseByteSize(o.overhead);
    if (!n) return bad("--overhead: " + n.error().message);
    req.overhead_bytes = *n;
  }
  if (!o.gpu.empty()) {
    auto g = gpuPeak(o.gpu);
    if (!g) return bad("--gpu: " + unknownGpuMessage(o.gpu));
    req.gpu = *g;
  }
  auto model = loadModel(o.model);
  if (!model) return model.error();
  req.model = std::move(*model);
  return req;
}

int runPlanCommand(const PlanCliOptions& o, std::ostream& out, std::ostream& err) {
  constexpr int kBadInput = 2;
  constexpr int kDoesNotFit = 1;
  auto req = planRequestFromCli(o);
  if (!req) {
    err << "hwledger plan: " << req.error().message << "\n";
    return kBadInput;
  }
  auto plan = computePlan(*req);
  if (!plan) {
    err << "hwledger plan: " << plan.error().message << "\n";
    return kBadInput;
  }
  if (o.json) {
    out << boost::json::serialize(planToJson(*plan)) << "\n";
  } else {
    out << planToTable(*plan);
  }
  return plan->fits.has_value() && !*plan->fits ? kDoesNotFit : 0;
}

}  // namespace hwl::planner
