// The job spec is part of the wire contract (hwl_proto); the agent's job code names it unqualified.
#pragma once

#include "hwl/proto/job_spec.hpp"

namespace hwl::jobs {
using proto::JobSpec;
using proto::parseJobSpec;
using proto::parseReadyUrl;
using proto::ReadyUrl;
using proto::validJobId;
}  // namespace hwl::jobs
