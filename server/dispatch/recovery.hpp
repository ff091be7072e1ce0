// The start-up pass that finishes what a previous server process left `placed` (killed between
// its append and its dispatch): each such job is dispatched again through the Scheduler once its
// host is reachable (hosts make that idempotent by job id), or ends as dispatch_failed with the
// reason, so no job holds its GPUs forever.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scheduler.hpp"

namespace hwl::dispatch {

struct RecoverySettings {
  // How long a job's host may stay unreachable before the job is failed.
  std::chrono::milliseconds host_wait{300'000};
  // How often hosts that did not answer are tried again.
  std::chrono::milliseconds retry{1'000};
};

class PlacedJobRecovery {
 public:
  PlacedJobRecovery(ledger::Ledger& ledger, Scheduler& scheduler, LiveView live,
                    RecoverySettings settings);
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

  ledger::Ledger& ledger_;
  Scheduler& scheduler_;
  LiveView live_;
  RecoverySettings settings_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> finished_{false};
};

}  // namespace hwl::dispatch
