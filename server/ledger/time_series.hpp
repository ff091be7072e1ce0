// GPU telemetry as the server's layers see it: samples are observations, not events. The
// collector records them; the API reads series and usage; a backend (server/storage for SQLite)
// keeps raw points and roll-ups with their retention and turns closed hours into
// `telemetry.hourly` events in the ledger.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::ledger {

struct GpuPoint {
  std::string uuid;
  std::optional<double> util_pct;
  std::optional<int64_t> mem_used_bytes;
  std::optional<int64_t> mem_total_bytes;
  std::optional<double> power_w;
  std::optional<double> temp_c;
  std::optional<int64_t> energy_mj;
  // GPU memory of each agent job's own processes on this GPU (job id, bytes), when the agent
  // matched the GPU's processes to its jobs.
  std::vector<std::pair<std::string, int64_t>> job_memory;
};

// One GPU's minute of the 1-minute roll-up.
struct GpuMinute {
  int64_t bucket_ms = 0;
  int64_t samples = 0;
  std::optional<double> util_max_pct;
  std::optional<double> power_mean_w;
  std::optional<int64_t> mem_used_max_bytes;
};

class TimeSeries {
 public:
  virtual ~TimeSeries() = default;
  // Buffers one sample of a host (thread-safe); written at the backend's next flush.
  virtual void record(const std::string& host_id, int64_t time_ms, std::vector<GpuPoint> gpus) = 0;
  // Writes what is buffered now. Returns once committed.
  virtual Status flush() = 0;
  // GPU hours, energy and mean utilisation over [f, t) by "host", "gpu" or "job" (a job's GPUs
  // over its runtime), from the 1-minute roll-ups (`minute`) or the hourly ones.
  virtual Result<boost::json::array> usage(const std::string& group, int64_t f, int64_t t,
                                           int64_t now, bool minute) = 0;
  // Points between from and to (ms) for a host (and optionally one GPU), in steps of `step_ms`,
  // read from the coarsest roll-up whose resolution fits the step.
  virtual Result<boost::json::object> query(const std::string& host_id, const std::string& gpu_uuid,
                                            int64_t from_ms, int64_t to_ms, int64_t step_ms) = 0;
  // What a job's GPUs did over [from_ms, to_ms), from the 1-minute roll-ups of the minutes that
  // overlap it: energy (from the GPU's counter where every minute had one, else power integrated
  // over time; `energy_source` says which), GPU-hours of the window, mean and maximum
  // utilisation, the largest whole-GPU memory in use, and the same per GPU. The figures of a
  // window are the same whenever they are read once its minutes are closed.
  // The memory is the job's own processes' (their per-process figures summed per sample, the
  // largest minute: `memory_source` "process") on GPUs where the agent reported them for
  // `job_id`, else the whole GPU's ("gpu"); "mixed" when the GPUs differ.
  virtual Result<boost::json::object> jobUsage(const std::string& host_id,
                                               const std::vector<std::string>& gpu_uuids,
                                               int64_t from_ms, int64_t to_ms,
                                               const std::string& job_id) = 0;
  // A GPU's minutes in [from_ms, to_ms), oldest first (minutes without samples are absent).
  virtual Result<std::vector<GpuMinute>> gpuMinutes(const std::string& host_id,
                                                    const std::string& gpu_uuid, int64_t from_ms,
                                                    int64_t to_ms) = 0;
  [[nodiscard]] virtual uint64_t samplesRecorded() const = 0;
};

}  // namespace hwl::ledger
