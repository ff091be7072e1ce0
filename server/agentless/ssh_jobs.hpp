// The job tracker of agentless hosts: the SshSource's JobPoller. An SSH host has no agent and no
// outbox, so the server reads its jobs' state itself — for each host with active jobs, every
// job_interval, in ONE exec for all of the host's jobs (pollCommand) — and appends what changed:
// job.started, job.ready (jobs with a ready_url, probed from the host), job.exited (status 0),
// job.failed (any other status, a stop for max_runtime_s or ready_timeout_s; with the log's last
// 16 KiB), job.cancelled (after a cancel), job.lost (the job's directory gone, its wrapper gone
// without an exit, the host rebooted, or a wrapper that never started). A job whose launch gave
// no answer in time (dispatch_failed) is looked for a while longer: if it did start, its host's
// report moves it on, as an agent's would.
//
// Exactly once: each event has a deterministic id ("<job-id>:started", "<job-id>:ready",
// "<job-id>:end") and data read from the host's files (pid, started_ms, ready_ms, ended_ms, the
// status), and is appended at the job stream's version read with the job's state. A poll that
// repeats after a crash or a restart of the server either finds the state moved already or
// appends the same ids with the same content, which the ledger records once.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agentless/session_pool.hpp"
#include "agentless/ssh_job_scripts.hpp"
#include "agentless/ssh_source.hpp"
#include "agentless/ssh_target.hpp"
#include "ledger/rows.hpp"
#include "ledger/store.hpp"

namespace hwl::agentless {

struct SshJobSettings {
  std::string job_root = kDefaultJobRoot;
  // Each exec of the driver and the tracker (a followed log has none).
  std::chrono::milliseconds command_timeout{30'000};
  // A launched job whose wrapper has not recorded its pid by then is lost.
  std::chrono::milliseconds start_timeout{60'000};
  // After the command's exit, how long the rest of its process group may take to go (the wrapper
  // kills it at once) before the end is recorded anyway.
  std::chrono::milliseconds group_wait{30'000};
  // How long a job whose launch gave no answer (dispatch_failed) is still looked for on its host:
  // a launch that went through after all is then reported (job.started wins over the failure).
  std::chrono::milliseconds unanswered_window{600'000};
};

// The events that record what the host shows of a job the ledger has in `row` (pure: the
// tracker's decisions, for tests). `host_now_ms` is the host's clock at the poll.
[[nodiscard]] std::vector<ledger::NewEvent> jobEvents(const ledger::JobRow& row,
                                                      const RemoteJob& remote,
                                                      const std::string& host_id,
                                                      int64_t host_now_ms,
                                                      const SshJobSettings& settings);

// How a job that has its exit ended: the event type, the state, and why.
struct JobEnd {
  std::string type;
  std::string state;
  std::string reason;
};
[[nodiscard]] JobEnd endOf(const RemoteJob& remote);

class SshJobTracker {
 public:
  SshJobTracker(ledger::Ledger& ledger, SessionPool& pool, SshJobSettings settings)
      : ledger_(ledger), pool_(pool), settings_(std::move(settings)) {}

  // One poll of the host's active jobs; false when it has none (the source then stops calling
  // until jobsChanged). A host that cannot be reached keeps its jobs as they are.
  bool poll(const std::string& host_id, const SshTarget& target);
  [[nodiscard]] JobPoller poller() {
    return [this](const std::string& id, const SshTarget& t) { return poll(id, t); };
  }

 private:
  ledger::Ledger& ledger_;
  SessionPool& pool_;
  SshJobSettings settings_;
};

}  // namespace hwl::agentless
