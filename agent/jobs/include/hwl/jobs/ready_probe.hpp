// Readiness probe: one blocking HTTP/1.1 GET on loopback with short timeouts.
#pragma once

#include <chrono>

#include "hwl/jobs/job_spec.hpp"

namespace hwl::jobs {

// True when the URL answers with a 2xx status within `timeout` (connect and read each).
bool probeReady(const ReadyUrl& url, std::chrono::milliseconds timeout);

}  // namespace hwl::jobs
