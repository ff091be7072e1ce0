// Planning checks shared by the model reader targets.
#include "plan_check.hpp"

#include <string>

#include "fuzz_support.hpp"
#include "hwl/planner/plan.hpp"

namespace hwl::fuzz {

namespace {

std::string describe(const planner::Plan& p) {
  return "weights " + std::to_string(p.weights_bytes) + " kv " + std::to_string(p.kv_bytes) +
         " state " + std::to_string(p.state_bytes) + " act " + std::to_string(p.activations_bytes) +
         " overhead " + std::to_string(p.overhead_bytes) + " total " +
         std::to_string(p.total_bytes);
}

void checkSum(const planner::Plan& p) {
  const std::uint64_t parts[] = {p.weights_bytes, p.kv_bytes, p.state_bytes, p.activations_bytes,
                                 p.overhead_bytes};
  std::uint64_t sum = 0;
  for (auto v : parts) {
    HWL_FUZZ_CHECK(p.total_bytes >= v, describe(p));
    HWL_FUZZ_CHECK(!__builtin_add_overflow(sum, v, &sum), "the total wraps: " + describe(p));
  }
  HWL_FUZZ_CHECK(sum == p.total_bytes, describe(p));
}

}  // namespace

void checkPlans(const planner::ModelSpec& spec) {
  planner::PlanRequest req;
  req.model = spec;
  req.context = 2048;
  req.per_layer = true;
  auto small = planner::computePlan(req);
  if (!small) return;
  checkSum(*small);
  req.context = 32768;
  req.per_layer = false;
  req.gpu_mem_bytes = 80ULL << 30;
  auto large = planner::computePlan(req);
  if (!large) return;
  checkSum(*large);
  HWL_FUZZ_CHECK(large->kv_bytes >= small->kv_bytes, describe(*small) + " / " + describe(*large));
  req.tp = 2;
  req.kv = "q8_0";
  req.weights = "q4_k_m";
  if (auto q = planner::computePlan(req)) checkSum(*q);
}

}  // namespace hwl::fuzz
