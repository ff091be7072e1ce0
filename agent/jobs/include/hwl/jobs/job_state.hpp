// A job's lifecycle state and its persisted record (one JSON file per job in the state dir).
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/jobs/job_spec.hpp"
#include "hwl/result.hpp"

namespace hwl::jobs {

// accepted → starting → running → ready → exited | failed | cancelled | lost
// (ready only for jobs with a ready_url; any live state may end in a terminal one).
enum class JobState { kAccepted, kStarting, kRunning, kReady, kExited, kFailed, kCancelled, kLost };

std::string_view stateName(JobState state);
std::optional<JobState> parseState(std::string_view name);
bool isTerminal(JobState state);

// Why the supervisor is stopping a job; decides the terminal state once it is gone.
enum class StopReason { kNone, kCancel, kReadyTimeout, kMaxRuntime };
std::string_view stopReasonName(StopReason reason);

struct JobInfo {
  JobSpec spec;
  JobState state = JobState::kAccepted;
  pid_t pid = 0;                 // also the process group id (the job is a session leader)
  uint64_t proc_start_time = 0;  // /proc/<pid>/stat field 22, to tell a reused pid apart
  // The job's monitor (its parent, log writer and subreaper; 0 for a job started by an agent
  // without monitors) and how its processes are contained.
  pid_t monitor_pid = 0;
  uint64_t monitor_start_time = 0;
  std::string containment;           // containmentName(), or "" (process group only)
  std::vector<std::string> cgroups;  // the job's cgroup directories
  int64_t accepted_ms = 0;           // Unix ms
  int64_t started_ms = 0;
  int64_t ready_ms = 0;
  int64_t ended_ms = 0;
  std::optional<int32_t> exit_code;  // set when the job exited normally and we reaped it
  std::optional<int32_t> signal;     // set when it was killed by a signal and we reaped it
  bool exit_status_known = true;     // false for a re-adopted job: not our child, status unknown
  bool adopted = false;              // re-adopted after an agent restart
  StopReason stop_reason = StopReason::kNone;
  std::string reason;           // why it failed / was lost, for people
  uint64_t log_base = 0;        // bytes rotated out of job.log so far (log stream offset)
  uint64_t last_event_seq = 0;  // outbox seq of the last transition recorded here

  [[nodiscard]] int64_t runtimeMs() const;
  // The API's and the state file's view.
  [[nodiscard]] boost::json::object toJson() const;
  static Result<JobInfo> fromJson(const boost::json::value& v,
                                  const std::filesystem::path& jobs_root);
};

}  // namespace hwl::jobs
