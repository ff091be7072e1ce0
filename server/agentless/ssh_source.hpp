// Agentless hosts as a host source: each SSH host is polled on a schedule (default every 60 s)
// by a small pool of worker threads, over a persistent session from the SessionPool, with the
// remote probe (remote_probe.hpp). A poll's sample goes to the collector in the agent's
// telemetry shape (same time series, same hourly events); its outcome drives host.reachable /
// host.unreachable; a GPU set that differs from the ledger's appends host.inventory_changed; a
// host key that differs from the recorded one appends ssh.hostkey_mismatch (once per key shown)
// and the host is not polled past it. Between telemetry polls, a host with active jobs has them
// followed by the job tracker (JobPoller) every job_interval.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agentless/session_pool.hpp"
#include "agentless/ssh_target.hpp"
#include "collect/host_source.hpp"
#include "ledger/store.hpp"

namespace hwl::agentless {

struct SshSourceSettings {
  std::chrono::milliseconds poll_interval{60'000};
  std::chrono::milliseconds job_interval{2'000};
  std::chrono::milliseconds probe_timeout{20'000};
  int threads = 8;
};

// Follows the jobs the ledger has on one SSH host (see ssh_jobs.hpp). Returns whether the host
// still has jobs to follow.
using JobPoller = std::function<bool(const std::string& host_id, const SshTarget& target)>;

class SshSource final : public collect::HostSource {
 public:
  SshSource(collect::HostSink& sink, ledger::Ledger& ledger, SessionPool& pool,
            SshSourceSettings settings, JobPoller jobs = {});
  ~SshSource() override;
  SshSource(const SshSource&) = delete;
  SshSource& operator=(const SshSource&) = delete;

  [[nodiscard]] proto::HostKind kind() const override { return proto::HostKind::kSsh; }
  [[nodiscard]] bool follows(const ledger::HostRow& host) const override;
  void follow(const ledger::HostRow& host, int64_t cursor) override;
  void drop(const std::string& host_id) override;
  void stopAll() override;
  // A job was placed on the host: follow its jobs from now on.
  void jobsChanged(const std::string& host_id);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The event recording a host key that differs from the recorded one, with an id of its own per
// (host, key shown), so that a host showing the same wrong key for days records it once.
[[nodiscard]] ledger::AppendRequest hostKeyMismatchEvent(const std::string& host_id,
                                                         const std::string& address,
                                                         const Error& refusal);

}  // namespace hwl::agentless
