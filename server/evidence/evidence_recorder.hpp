// Evidence of what GPUs did. `job.usage`:  computed from the time series' 1-minute
// roll-ups of the job's GPUs between job.started and its end, appended once the job has ended
// (the final figures) and every full hour of a long job (the figures so far). Event ids are
// derived from the job and the window's end, and the windows from the job's recorded times, so
// a server that restarts appends nothing twice. `job.idle`: a ready job whose GPUs sat at their
// own idle power with no utilisation for longer than a set time. `rental.idle_billed`: a
// billed rental hour in which the rental's GPUs were idle. `gpu.unaccounted_use`: processes on
// a GPU that no job holds.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hwl/clock.hpp"
#include "ledger/rows.hpp"
#include "ledger/store.hpp"
#include "ledger/time_series.hpp"

namespace hwl::evidence {

// A GPU as the collector last saw it: its processes, for unaccounted use.
struct LiveGpu {
  std::string host_id;
  std::string uuid;
  int64_t time_ms = 0;
  struct Process {
    int64_t pid = 0;
    std::string name;
    std::optional<int64_t> memory_bytes;
    std::string job_id;  // the agent's job this process belongs to, when it said
  };
  std::vector<Process> processes;
  // The agent matched the processes to its jobs: one with no job_id belongs to none.
  bool processes_matched = false;
  std::optional<double> util_pct;
};

struct EvidenceSettings {
  // How often ended and long-running jobs are looked at.
  std::chrono::milliseconds interval{30'000};
  // A window is summed only this long after it closes: its last minute bucket must be closed
  // and its samples flushed (the collector's interval plus the store's flush).
  int64_t settle_ms = 90'000;
  int64_t hour_ms = 3'600'000;
  // job.idle: a ready job whose GPUs were all idle for this long. A minute is idle when its
  // utilisation stayed at or below idle_util_pct and its mean power at or below the GPU's own
  // idle baseline plus max(idle_margin_w, idle_margin_frac x baseline). The baseline is the
  // lowest mean power of the GPU's idle-utilisation minutes over baseline_window_ms.
  int64_t idle_after_ms = 15 * 60'000;
  double idle_util_pct = 1.0;
  double idle_margin_w = 10.0;
  double idle_margin_frac = 0.10;
  int64_t baseline_window_ms = 7LL * 24 * 3'600'000;
  // gpu.unaccounted_use once the same processes were seen for this long on a GPU no job holds,
  // or, where the agent matched processes to jobs, processes not of the job holding the GPU.
  int64_t unaccounted_after_ms = 5 * 60'000;
  // job.reconciled at ready: the GPUs' memory over this long after job.ready.
  int64_t reconcile_after_ready_ms = 2 * 60'000;
};

class EvidenceRecorder {
 public:
  using LiveGpus = std::function<std::vector<LiveGpu>()>;
  // `live`: the GPUs the collector sees now, with their processes (may be empty: no
  // unaccounted-use checks).
  EvidenceRecorder(ledger::Ledger& ledger, ledger::TimeSeries& series, EvidenceSettings settings,
                   const Clock& clock, LiveGpus live = {});
  ~EvidenceRecorder();
  EvidenceRecorder(const EvidenceRecorder&) = delete;
  EvidenceRecorder& operator=(const EvidenceRecorder&) = delete;

  // Reads which evidence events the ledger holds (load), then looks every interval.
  Status start();
  void stop();
  Status load();
  // One pass (what the thread does each interval); returns the events appended. Passes are
  // serialised.
  Result<int> tick();

 private:
  Status appendUsage(const ledger::JobRow& job, int64_t from_ms, int64_t to_ms, bool final);
  Result<int> checkIdle(const ledger::JobRow& job, int64_t now);
  Result<int> checkUnaccounted(const std::vector<ledger::JobRow>& jobs, int64_t now);
  Result<int> checkIdleBilled(int64_t now);
  Result<int> checkReconciled(const ledger::JobRow& job, int64_t now);
  Result<std::optional<double>> cachedBaseline(const std::string& host, const std::string& uuid,
                                               int64_t at);
  // The idle rule over [from, to) for one GPU: its per-GPU evidence when every minute with
  // samples was idle (and there was at least one), nullopt otherwise.
  Result<std::optional<boost::json::object>> idleWindow(const std::string& host,
                                                        const std::string& uuid, int64_t from,
                                                        int64_t to);
  Status appendOnce(const std::string& stream, const std::string& id, const char* type,
                    boost::json::object data);
  void run();

  ledger::Ledger& ledger_;
  ledger::TimeSeries& series_;
  EvidenceSettings settings_;
  const Clock& clock_;
  LiveGpus live_;
  std::set<std::string> recorded_;  // ids of the evidence events in the ledger
  // gpu.unaccounted_use ids seen, first and last (those still to last unaccounted_after_ms).
  std::map<std::string, std::pair<int64_t, int64_t>> unaccounted_seen_;
  // cost.accrued events read so far, and those whose hour is still to be judged.
  int64_t cost_cursor_ = 0;
  // Per GPU, when its idle baseline was computed and what it was.
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, std::optional<double>>>
      baselines_;
  // Per job, the prediction of its job.placed (null: none), read once.
  std::map<std::string, std::optional<boost::json::object>> predicted_;
  std::vector<ledger::Event> costs_pending_;
  std::mutex tick_mu_;  // one pass at a time; guards recorded_ and unaccounted_seen_
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The event id of a job's usage up to `to_ms`.
std::string usageEventId(const std::string& job_id, int64_t to_ms);

// The GPU's idle power as measured: the lowest mean power of its minutes whose utilisation
// stayed at or below `idle_util_pct`; nullopt when it has none.
std::optional<double> idleBaseline(const std::vector<ledger::GpuMinute>& minutes,
                                   double idle_util_pct);
// The first minute of the run of idle minutes that ends with the last of `minutes` (oldest
// first); nullopt when the last minute is not idle. A missing minute ends the run.
std::optional<int64_t> idleSince(const std::vector<ledger::GpuMinute>& minutes, double baseline,
                                 const EvidenceSettings& s);

}  // namespace hwl::evidence
