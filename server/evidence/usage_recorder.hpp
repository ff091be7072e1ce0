// Evidence of what a job's GPUs did: `job.usage` events, computed from the time series' 1-minute
// roll-ups of the job's GPUs between job.started and its end, appended once the job has ended
// (the final figures) and every full hour of a long job (the figures so far). Event ids are
// derived from the job and the window's end, and the windows from the job's recorded times, so
// a server that restarts appends nothing twice.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "hwl/clock.hpp"
#include "ledger/rows.hpp"
#include "ledger/store.hpp"
#include "ledger/time_series.hpp"

namespace hwl::evidence {

struct UsageSettings {
  // How often ended and long-running jobs are looked at.
  std::chrono::milliseconds interval{30'000};
  // A window is summed only this long after it closes: its last minute bucket must be closed
  // and its samples flushed (the collector's interval plus the store's flush).
  int64_t settle_ms = 90'000;
  int64_t hour_ms = 3'600'000;
};

class UsageRecorder {
 public:
  UsageRecorder(ledger::Ledger& ledger, ledger::TimeSeries& series, UsageSettings settings,
                const Clock& clock);
  ~UsageRecorder();
  UsageRecorder(const UsageRecorder&) = delete;
  UsageRecorder& operator=(const UsageRecorder&) = delete;

  // Reads which job.usage events the ledger holds, then looks at the jobs every interval.
  Status start();
  void stop();
  // One pass over the jobs (what the thread does each interval); returns the events appended.
  Result<int> tick();

 private:
  Status appendUsage(const ledger::JobRow& job, int64_t from_ms, int64_t to_ms, bool final);
  void run();

  ledger::Ledger& ledger_;
  ledger::TimeSeries& series_;
  UsageSettings settings_;
  const Clock& clock_;
  std::set<std::string> recorded_;  // event ids of job.usage in the ledger
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The event id of a job's usage up to `to_ms`.
std::string usageEventId(const std::string& job_id, int64_t to_ms);

}  // namespace hwl::evidence
