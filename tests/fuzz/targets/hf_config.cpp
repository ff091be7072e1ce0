// Hugging Face config.json text (bare NaN/Infinity allowed, multimodal wrappers) into a model
// spec, then planned at two context lengths and a quantised TP=2 setting: the reader must refuse
// or produce a spec whose plans do not overflow.
#include "hwl/planner/hf_config.hpp"

#include "fuzz_support.hpp"
#include "plan_check.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto spec = planner::parseHfConfig(fuzz::text(data, size));
  if (!spec) return 0;
  fuzz::checkPlans(*spec);
  return 0;
}
