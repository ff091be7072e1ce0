// Plans a model read by a fuzz target and checks the arithmetic held: no term wrapped around
// (the total is at least each of its parts and their sum), and a longer context never needs
// less memory.
#pragma once

#include "hwl/planner/model_spec.hpp"

namespace hwl::fuzz {

void checkPlans(const planner::ModelSpec& spec);

}  // namespace hwl::fuzz
