// Handing placed jobs to their host's agent: the one dispatch call (POST /v1/jobs, idempotent on
// the agent by job id), and the start-up pass that finishes what a previous server process left
// `placed` — dispatched again, or failed with the reason, so no job holds its GPUs forever.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/json/object.hpp>

#include "hwl/clock.hpp"
#include "hwl/http.hpp"
#include "ledger/ledger.hpp"

namespace hwl::collect {

class Collector;

// The server's client identity towards agents.
struct AgentIdentity {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::chrono::milliseconds timeout{10'000};
};

// A mutual-TLS client to the agent of `host_id` at `address` (which must present that host's
// identity).
std::unique_ptr<http::Client> agentClient(const AgentIdentity& id, const std::string& host_id,
                                          const std::string& address);

struct DispatchResult {
  enum class Outcome {
    kAccepted,  // the agent has the job (new, or the same id already there)
    kRefused,   // the agent answered and will not run it
    kNoAnswer,  // no answer: it may or may not have it
  };
  Outcome outcome = Outcome::kNoAnswer;
  std::string detail;  // for kRefused and kNoAnswer: why, for the job's reason
};

// POST /v1/jobs with the agent spec. The agent treats a repeated id with the same spec as the same
// job (200), and answers 409 for an id it already holds with another spec: both mean the agent
// has a job of that id, which will report through its outbox.
DispatchResult dispatchJob(http::Client& client, const boost::json::object& agent_spec);

struct RecoverySettings {
  AgentIdentity agent;
  // How long a job's host may stay unreachable before the job is failed.
  std::chrono::milliseconds host_wait{300'000};
  // How often hosts that did not answer are tried again.
  std::chrono::milliseconds retry{1'000};
};

// Jobs a previous server process appended `job.placed` for but may never have dispatched (it was
// killed between the two): each is dispatched again once its host is reachable (the agent makes
// that idempotent), or ends with `job.failed` and the reason when the agent refuses it, its host
// is revoked or gone, or it stays unreachable for `host_wait`.
class PlacedJobRecovery {
 public:
  PlacedJobRecovery(ledger::Ledger& ledger, const Collector* collector, RecoverySettings settings,
                    const Clock& clock = SystemClock::instance());
  ~PlacedJobRecovery();  // stop()
  PlacedJobRecovery(const PlacedJobRecovery&) = delete;
  PlacedJobRecovery& operator=(const PlacedJobRecovery&) = delete;

  // Takes the jobs that are `placed` now (before this process dispatches anything) and works
  // through them on a thread of its own.
  Status start();
  void stop();
  // True once every job taken at start() has been dispatched or ended (for tests and logs).
  [[nodiscard]] bool finished() const { return finished_; }

 private:
  void run(std::vector<std::string> job_ids);
  // True when the job needs no more work.
  bool attempt(const std::string& job_id, std::chrono::steady_clock::time_point deadline);
  Status fail(const std::string& job_id, int64_t version, const std::string& reason);

  ledger::Ledger& ledger_;
  const Collector* collector_;
  RecoverySettings settings_;
  const Clock& clock_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> finished_{false};
};

}  // namespace hwl::collect
