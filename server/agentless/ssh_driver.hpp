// Jobs on agentless hosts: the Driver of HostKind::kSsh, over the SessionPool's persistent
// sessions. How to reach a host comes from the hosts projection (the "ssh" that
// host.enrolled_ssh recorded). The host's side is in ssh_job_scripts.hpp: launch makes the job's
// directory and starts its wrapper detached (own session and process group), idempotent by job
// id; cancel starts a detached stopper (SIGTERM to the group, SIGKILL after the spec's grace_s);
// logs tail the job's log file, followed with `tail -F` until the job ends or the reader leaves.
// The job's states reach the ledger through the job tracker (ssh_jobs.hpp), which `wake` prompts
// after a launch or a cancel.
#pragma once

#include <functional>
#include <string>

#include "agentless/session_pool.hpp"
#include "agentless/ssh_jobs.hpp"
#include "dispatch/driver.hpp"
#include "ledger/store.hpp"

namespace hwl::agentless {

class SshDriver final : public dispatch::Driver {
 public:
  using Wake = std::function<void(const std::string& host_id)>;
  SshDriver(ledger::Ledger& ledger, SessionPool& pool, SshJobSettings settings, Wake wake = {})
      : ledger_(ledger), pool_(pool), settings_(std::move(settings)), wake_(std::move(wake)) {}

  [[nodiscard]] proto::HostKind kind() const override { return proto::HostKind::kSsh; }
  dispatch::LaunchResult launch(const dispatch::HostTarget& host,
                                const dispatch::LaunchSpec& job) override;
  // The host's view: {"id", "state" (starting, running, ready, exited, failed, cancelled, lost),
  // "pid", "started_ms", "ready_ms", "ended_ms", "exit_code", "signal", "stop"}.
  Result<boost::json::object> status(const dispatch::HostTarget& host,
                                     const proto::JobId& job) override;
  Result<dispatch::LogResult> logs(const dispatch::HostTarget& host, const proto::JobId& job,
                                   dispatch::LogRequest req, const dispatch::LogSink& sink,
                                   const dispatch::Cancelled& cancelled) override;
  Result<dispatch::CancelResult> cancel(const dispatch::HostTarget& host,
                                        const proto::JobId& job) override;

 private:
  Result<SshTarget> targetOf(const dispatch::HostTarget& host);
  void wake(const std::string& host_id) const {
    if (wake_) wake_(host_id);
  }

  ledger::Ledger& ledger_;
  SessionPool& pool_;
  SshJobSettings settings_;
  Wake wake_;
};

// The host's view of a job as status() answers it (pure).
[[nodiscard]] boost::json::object remoteJobJson(const std::string& job_id, const RemoteJob& r);

}  // namespace hwl::agentless
