// A job's monitor process: forked by the supervisor for each job, it starts the job as its child
// and stays with it until every process of the job is gone.
//
//  - Logs: the job's stdout and stderr are a pipe the monitor reads into a LogWriter (bounded,
//    rotated by rename; see log_files.hpp). A job writing faster than the disk blocks on the pipe.
//  - Containment: the monitor is a child subreaper (PR_SET_CHILD_SUBREAPER), so whatever the job
//    starts stays below it even after setsid or a double fork. When the job's main process ends,
//    the monitor kills what is left (through the job's cgroup when it has one, see
//    containment.hpp), reaps it, drains the pipe and exits.
//  - Exit status: the monitor ends the way the job's main process ended (the same exit code, or
//    the same signal re-raised), so the supervisor reads the job's status from waitpid() on the
//    monitor.
//  - Restarts: the monitor is in a session of its own and does not depend on the agent, so an
//    agent restart loses no log bytes; the next agent re-adopts the job through the monitor's pid.
// It runs the agent's own code after fork() (no exec), closes every descriptor it does not need
// and keeps the agent's user; the job itself drops to the job user (supervisor.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hwl/jobs/containment.hpp"

namespace hwl::jobs {

// Records the monitor and the job write to the supervisor on the report pipe.
struct MonitorReport {
  int32_t kind = 0;  // kReportPid or kReportStage
  int32_t a = 0;     // pid, or the failed start stage
  int32_t b = 0;     // errno for a failed stage
};
inline constexpr int32_t kReportPid = 1;
inline constexpr int32_t kReportStage = 2;

struct MonitorPlan {
  int out_read = -1;   // the read end of the job's output pipe
  int out_write = -1;  // its write end, for the job's stdout and stderr
  int report = -1;     // write end of the report pipe (close-on-exec)
  int devnull = -1;
  std::string log_dir;
  uint64_t log_max_bytes = 0;
  uint32_t log_keep = 0;
  JobProcesses processes;  // kind and cgroups; the monitor's pid is its own
};

// Runs in the child of fork(); never returns. `start_job` runs in the job's process (a child of
// the monitor) with the fds of `plan` still open, and must exec or _exit.
[[noreturn]] void runMonitor(const MonitorPlan& plan, const std::function<void()>& start_job);

}  // namespace hwl::jobs
