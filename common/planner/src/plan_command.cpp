// `hwledger plan`: validates the options, loads the model, prints the plan.
#include "hwl/planner/plan_command.hpp"

#include <boost/json/serialize.hpp>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/load_model.hpp"
#include "hwl/planner/plan.hpp"
#include "hwl/planner/plan_json.hpp"

namespace hwl::planner {

int runPlanCommand(const PlanCliOptions& o, std::ostream& out, std::ostream& err) {
  constexpr int kBadInput = 2;
  constexpr int kDoesNotFit = 1;
  auto fail = [&](const std::string& message) {
    err << "hwledger plan: " << message << "\n";
    return kBadInput;
  };
  if (o.model.empty()) return fail("MODEL is required (config.json, GGUF, safetensors or a directory)");
  if (!o.context) return fail("--context is required");
  if (o.batch == 0) return fail("--batch must be at least 1");
  if (o.tp == 0 || o.tp > 1024) return fail("--tp must be between 1 and 1024");
  if (auto f = weightFormat(o.weights); !f) return fail("--weights: " + f.error().message);
  if (o.kv != "auto") {
    if (auto f = kvFormat(o.kv); !f) return fail("--kv: " + f.error().message);
  }
  if (o.state_dtype != "auto") {
    if (auto f = plainDtypeBytes(o.state_dtype); !f) return fail("--state-dtype: " + f.error().message);
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
    if (!mem) return fail("--gpu-mem: " + mem.error().message);
    req.gpu_mem_bytes = *mem;
  }
  if (!o.activation.empty()) {
    auto n = parseByteSize(o.activation);
    if (!n) return fail("--activation: " + n.error().message);
    req.activation_bytes = *n;
  }
  if (!o.overhead.empty()) {
    auto n = parseByteSize(o.overhead);
    if (!n) return fail("--overhead: " + n.error().message);
    req.overhead_bytes = *n;
  }

  auto model = loadModel(o.model);
  if (!model) return fail(model.error().message);
  req.model = std::move(*model);

  auto plan = computePlan(req);
  if (!plan) return fail(plan.error().message);
  if (o.json) {
    out << boost::json::serialize(planToJson(*plan)) << "\n";
  } else {
    out << planToTable(*plan);
  }
  return plan->fits.has_value() && !*plan->fits ? kDoesNotFit : 0;
}

}  // namespace hwl::planner
