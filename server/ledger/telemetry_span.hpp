// The telemetry a report reads: telemetry.hourly events, one GPU-hour each, or a whole UTC day of
// one GPU's hourly events summed (a projection of those events, kept in the same transaction as
// they are appended and rebuilt from them on replay). A day span is exactly the sum of the hour
// spans of its events, and names their seqs.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::ledger {

inline constexpr int64_t kDayMs = 86'400'000;
// An hour whose mean utilisation is at most this counts as an idle hour in reports.
inline constexpr double kIdleHourUtilPct = 1.0;

struct TelemetrySpan {
  std::string host_id;
  std::string gpu_uuid;
  int64_t start_ms = 0;       // the hour's start, or the UTC day's
  int64_t hours = 0;          // telemetry.hourly events summed (1 for an hour span)
  double energy_wh = 0;       // the sum of their energy_wh
  int64_t counter_hours = 0;  // hours whose energy came from the GPU's counter
  int64_t power_hours = 0;    // hours whose energy came from power over time
  double util_sum = 0;        // the sum of their util_mean_pct, over util_n hours that had one
  int64_t util_n = 0;
  int64_t idle_hours = 0;     // hours with util_mean_pct <= kIdleHourUtilPct
  std::vector<int64_t> seqs;  // the telemetry.hourly events', ascending
};

// The hour span of one telemetry.hourly event (its seq and data); nullopt when the data names no
// host, GPU or hour.
std::optional<TelemetrySpan> hourSpan(int64_t seq, const boost::json::object& data);

using SpanVisitor = std::function<void(const TelemetrySpan&)>;

// Reads the telemetry of hours starting in [from_ms, to_ms): with `whole_days`, the UTC days
// that lie wholly inside as day spans and the hours at either edge as hour spans; otherwise
// every hour as an hour span.
using SpanReader =
    std::function<Status(int64_t from_ms, int64_t to_ms, bool whole_days, const SpanVisitor&)>;

}  // namespace hwl::ledger
