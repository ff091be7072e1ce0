// The job supervisor: starts jobs as the unprivileged job user, each under a monitor process and
// in a containment of its own (a cgroup, or the monitor as subreaper), with the placed GPUs
// visible; watches readiness, runtime and exit; cancels with SIGTERM then SIGKILL to every process
// of the job; and records every transition in the outbox before the API can see it.
//
// Durability and restarts. Each job has a directory <state_dir>/jobs/<id>/ with job.json (written
// atomically: tmp, fsync, rename, fsync dir) and its logs. A transition is (1) appended to the
// outbox (fsync'd), (2) written to job.json, (3) published to the API. If the agent dies between
// (1) and (2), the next supervisor replays the job's outbox entries newer than job.json's
// last_event_seq, so no transition is recorded twice or lost. The agent's death does not end a job
// (its monitor and the job run in sessions of their own, and under systemd KillMode=process); the
// next supervisor re-adopts every job whose main process is alive with the same /proc start time,
// and records job.lost for the rest. A re-adopted job is not our child's child any more: its end
// is noticed when its monitor is gone and recorded as job.exited with exit_status_known=false.
//
// Processes. The monitor (job_monitor.hpp) forks the job, which makes itself a session and
// process-group leader (setsid) and joins the job's cgroups before it drops privileges and execs.
// Signals go to every process of the job (containment.hpp), not only its group, and the job ends
// when all of them are gone: after the main process exits, whatever it left (in any session) is
// killed. Limits: pids_max (the spec's, else default_pids_max) and memory_max_bytes go to the
// job's cgroup; a spec asking for a limit this host cannot enforce is refused at submit.
//
// Logs go through the monitor into size-rotated files that stay within
// (log_keep + 1) × log_max_bytes however fast the job writes (log_files.hpp); the supervisor
// thread never copies log bytes, and tails are read backwards from the end and capped.
//
// GPUs: CUDA_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES are set to the placed GPUs' uuids,
// comma-separated (both runtimes accept uuids; indices shift when devices come and go). A job with
// no GPUs gets both set to the empty string, which hides every GPU.
//
// Job user: with job_user set, the child calls setgroups/setgid/setuid to that user (needs root or
// CAP_SETUID+CAP_SETGID); a job user resolving to uid 0 is refused. Without job_user, jobs run as
// the agent's own user — unless the agent is root, in which case every submission is refused.
// open() checks, as the job user, that it can create a directory in jobs_root, and fails naming
// the path and the user if not.
//
// Outbox bound: submit() refuses with kResourceExhausted when the outbox lacks room for the
// transitions of every live job plus the new one (outbox_headroom_per_job each). A transition that
// still finds the outbox full is retried every poll and stays invisible until recorded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hwl/clock.hpp"
#include "hwl/jobs/containment.hpp"
#include "hwl/jobs/job_spec.hpp"
#include "hwl/jobs/job_state.hpp"
#include "hwl/jobs/log_files.hpp"
#include "hwl/outbox/outbox.hpp"
#include "hwl/result.hpp"

namespace hwl::jobs {

struct SupervisorSettings {
  std::filesystem::path state_dir;  // job records and logs under state_dir/jobs/
  std::filesystem::path jobs_root;  // default working dirs: jobs_root/<id> (made by the job)
  std::string job_user;             // empty: the agent's own user (refused if that is root)
  uint64_t log_max_bytes = 64ULL * 1024 * 1024;
  uint32_t log_keep = 3;
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds ready_probe_timeout{500};
  size_t exit_log_tail_lines = 20;
  size_t exit_log_tail_bytes = 4096;    // log_tail in job.exited/job.failed is at most this
  size_t log_tail_max_bytes = 1 << 20;  // logs() returns at most this
  ContainmentChoice containment = ContainmentChoice::kAuto;
  std::string cgroup_group;      // directory of this agent's job cgroups; "": from state_dir
  int64_t default_pids_max = 0;  // pids.max of jobs whose spec has none; 0: none
  // Problems of the supervisor thread itself (an exception while handling a job); default stderr.
  std::function<void(const std::string&)> warn;
  uint64_t outbox_headroom_per_job = 4;
  const Clock* clock = nullptr;  // Unix times recorded; nullptr: SystemClock. Timeouts use
                                 // std::chrono::steady_clock.
};

class Supervisor {
 public:
  // Loads job records, reconciles them with the outbox and with /proc (re-adopt or job.lost),
  // then starts the supervisor thread. `outbox` must outlive the supervisor.
  static Result<std::unique_ptr<Supervisor>> open(SupervisorSettings settings,
                                                  outbox::Outbox& outbox);

  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;
  ~Supervisor();  // stop()

  // Accepts a job (state accepted; the thread starts it). Same id and same spec: the existing job.
  // Same id, different spec: kConflict. kPermissionDenied when jobs may not run (root without a
  // job user), kResourceExhausted when the outbox has no room.
  Result<JobInfo> submit(const JobSpec& spec);
  [[nodiscard]] Result<JobInfo> get(const std::string& id) const;
  [[nodiscard]] std::vector<JobInfo> list() const;
  // The processes of the jobs that may be running now: every pid of each job's containment
  // (cgroup or subreaper tree) and each job's leader (its pid, also its session and process
  // group id), by job id.
  struct JobProcessMap {
    std::map<pid_t, std::string> pids;
    std::map<pid_t, std::string> leaders;
  };
  [[nodiscard]] JobProcessMap jobProcesses() const;
  // Asks the thread to stop the job (SIGTERM to its group, SIGKILL after grace). Returns the job
  // as it is now; it becomes `cancelled` once its process is gone. Cancelling a finished job
  // returns it unchanged.
  Result<JobInfo> cancel(const std::string& id);
  // The last `tail_lines` lines of the job's output.
  [[nodiscard]] Result<std::string> logs(const std::string& id, size_t tail_lines) const;
  // Follow: bytes from stream offset `offset` (start with 0, continue with next_offset). Poll
  // until get(id) is terminal and a read returns no data.
  [[nodiscard]] Result<LogChunk> readLog(const std::string& id, uint64_t offset,
                                         size_t max_bytes) const;
  // Stops the supervisor thread. Jobs keep running; the next supervisor re-adopts them.
  void stop();
  // Blocks until the thread has run one more full pass over the jobs (tests, shutdown).
  void waitForPass();
  // How job processes are contained here (chosen by open()).
  [[nodiscard]] const Containment& containment() const { return containment_; }

 private:
  struct Job;
  Supervisor(SupervisorSettings settings, outbox::Outbox& outbox);
  Status load();
  void run();
  void pass();
  void step(const std::string& id);
  Status commit(const std::string& id, JobInfo next, std::string_view event,
                boost::json::object data);
  Status persist(const JobInfo& info) const;
  [[nodiscard]] std::filesystem::path jobDir(const std::string& id) const;
  [[nodiscard]] JobLog jobLog(const std::string& id) const;
  Status checkMayRun() const;
  Status checkJobsRoot() const;
  void warn(const std::string& message) const;
  [[nodiscard]] JobProcesses processesOf(const JobInfo& info) const;
  // Kills what is left of an ended job and removes its cgroups; returns its OOM kill count.
  uint64_t endProcesses(const JobInfo& info) const;
  void startJob(const std::string& id, JobInfo info);
  void finishJob(const std::string& id, JobInfo info, int wait_status, bool status_known,
                 uint64_t oom_kills = 0);
  void signalGroup(const JobInfo& info, int sig) const;

  SupervisorSettings settings_;
  Containment containment_;
  outbox::Outbox& outbox_;
  const Clock* clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable pass_cv_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  uint64_t passes_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hwl::jobs
