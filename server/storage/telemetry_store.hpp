// The time series on SQLite, beside the ledger's tables and written on its writer connection.
// Telemetry samples are observations, not events: they go to a time series (raw, 1-minute and
// 1-hour roll-ups, each with its retention). Closed hours become `telemetry.hourly` events per GPU
// (energy, utilisation, memory, temperature), which are part of the ledger.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ledger/time_series.hpp"
#include "sqlite_ledger.hpp"

namespace hwl::storage {

using ledger::GpuPoint;

struct TelemetrySettings {
  int64_t raw_retention_ms = 24LL * 3600 * 1000;
  int64_t minute_retention_ms = 30LL * 24 * 3600 * 1000;  // hours are kept forever
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds retention_interval{10 * 60 * 1000};
  // Power is integrated only across gaps shorter than this (a host that was away is not
  // assumed to have drawn power meanwhile).
  int64_t max_integration_gap_ms = 5 * 60 * 1000;
};

class TelemetryStore final : public ledger::TimeSeries {
 public:
  TelemetryStore(SqliteLedger& ledger, TelemetrySettings settings = {});
  ~TelemetryStore() override;
  void start();
  void stop();  // flushes what is buffered

  void record(const std::string& host_id, int64_t time_ms, std::vector<GpuPoint> gpus) override;
  Status flush() override;
  Status enforceRetention(int64_t now_ms);
  Result<boost::json::array> usage(const std::string& group, int64_t f, int64_t t, int64_t now,
                                   bool minute) override;
  Result<boost::json::object> query(const std::string& host_id, const std::string& gpu_uuid,
                                    int64_t from_ms, int64_t to_ms, int64_t step_ms) override;
  Result<boost::json::object> jobUsage(const std::string& host_id,
                                       const std::vector<std::string>& gpu_uuids, int64_t from_ms,
                                       int64_t to_ms, const std::string& job_id) override;
  Result<std::vector<ledger::GpuMinute>> gpuMinutes(const std::string& host_id,
                                                    const std::string& gpu_uuid, int64_t from_ms,
                                                    int64_t to_ms) override;
  [[nodiscard]] uint64_t samplesRecorded() const override { return recorded_; }

 private:
  struct Pending {
    std::string host_id;
    int64_t time_ms;
    std::vector<GpuPoint> gpus;
  };
  struct SeriesState {
    int64_t id = 0;
    int64_t last_time_ms = 0;
    std::optional<int64_t> last_energy_mj;
    std::optional<double> last_power_w;
    int64_t hour_ms = -1;  // the hour bucket last written
  };
  Status writeBatch(sqlite::Db& db, std::vector<Pending>& batch,
                    std::vector<ledger::AppendRequest>& hourly);
  Result<SeriesState*> series(sqlite::Db& db, const std::string& host, const std::string& uuid);
  Result<ledger::AppendRequest> hourlyEvent(sqlite::Db& db, const std::string& host,
                                            const std::string& uuid, int64_t series,
                                            int64_t hour_ms);
  void run();

  SqliteLedger& ledger_;
  TelemetrySettings settings_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> buffer_;
  bool stop_ = false;
  std::thread thread_;
  std::map<std::pair<std::string, std::string>, SeriesState> series_;  // writer thread only
  std::atomic<uint64_t> recorded_{0};
};

}  // namespace hwl::storage
