// What the agent does with parsed GPU samples, checked: the JSON of GET /v1/telemetry
// serialises and parses back, and every line of GET /metrics is well-formed exposition text
// (a value from a tool, such as a GPU name with a quote or a newline, cannot add a label or a
// line).
#pragma once

#include <vector>

#include "hwl/probes/sample.hpp"

namespace hwl::fuzz {

void checkExport(const std::vector<probes::GpuSample>& gpus);

}  // namespace hwl::fuzz
