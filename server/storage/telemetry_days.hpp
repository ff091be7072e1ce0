// The `ev_gpu_days` projection: each GPU's telemetry.hourly events summed by UTC day, so that a
// report over a month reads one row per GPU-day instead of 24 events; and the reader of report
// telemetry (ledger::SpanReader) on a database, online or on a copy.
#pragma once

#include <string>
#include <vector>

#include "ledger/telemetry_span.hpp"
#include "projection.hpp"

namespace hwl::storage {

class TelemetryDaysProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "telemetry days"; }
  [[nodiscard]] std::vector<std::string> tables() const override { return {"ev_gpu_days"}; }
  Status apply(sqlite::Db& db, const Event& e) override;
};

// ledger::SpanReader on `db`: day spans from ev_gpu_days, hour spans from the events (through
// the index on telemetry.hourly's hour).
Status readTelemetrySpans(sqlite::Db& db, int64_t from_ms, int64_t to_ms, bool whole_days,
                          const ledger::SpanVisitor& fn);

}  // namespace hwl::storage
