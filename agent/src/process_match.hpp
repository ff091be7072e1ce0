// Which of the agent's jobs each process on a GPU belongs to, so that the server counts a job's
// own GPU memory (the per-process figures of NVML / nvidia-smi --query-compute-apps) instead of
// the whole GPU's, and can tell a job's processes from processes that belong to no job.
#pragma once

#include "hwl/jobs/supervisor.hpp"
#include "hwl/probes/sample.hpp"

namespace hwl::agent {

// Sets each GPU process's job_id: a pid in a job's containment, or a process whose session or
// process group is a job's leader. Marks every GPU processes_matched. The pids are the host's
// (the agent and the driver see the same pid namespace).
void matchJobProcesses(probes::Sample& sample, const jobs::Supervisor::JobProcessMap& jobs);

}  // namespace hwl::agent
