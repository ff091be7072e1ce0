// The evidence report: energy, GPU-hours, utilisation, idle time, cost and unaccounted use over a
// period, by job, host, GPU or rental, computed from ledger events alone (job.usage,
// telemetry.hourly, cost.accrued, job.idle, gpu.unaccounted_use); a month of telemetry.hourly is
// read as the day sums the ledger keeps of them (ledger/telemetry_span.hpp). Every row names the
// seqs of the events it used, and the same events give the same report wherever they are read: from
// the server (GET /v1/report) or from a copy of its database (`hwledger report --db`).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"
#include "ledger/event.hpp"
#include "ledger/store.hpp"
#include "ledger/telemetry_span.hpp"

namespace hwl::evidence {

struct ReportQuery {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::string group_by = "job";  // job | host | gpu | rental
};

// The event types a report reads besides telemetry.hourly (read as spans).
const std::vector<std::string>& reportEventTypes();

// Checks the query: a known group, from before to.
Status checkReportQuery(const ReportQuery& q);

// Every event of `type` in the ledger after seq `after`, in seq order.
Result<std::vector<ledger::Event>> eventsOfType(ledger::Ledger& ledger, std::string_view type,
                                                int64_t after = 0);

// Every event of reportEventTypes() in the ledger.
Result<std::vector<ledger::Event>> reportEvents(ledger::Ledger& ledger);

// The report of `events` (of reportEventTypes(), any order) and the telemetry `spans` reads,
// over [from_ms, to_ms). Hosts and GPUs take whole UTC days as day spans (the sums of their
// telemetry.hourly events); rentals take hours, to match their billed windows.
Result<boost::json::object> buildReport(const std::vector<ledger::Event>& events,
                                        const ReportQuery& q, const ledger::SpanReader& spans);

// The same from events alone, telemetry.hourly among them: one hour span per event. The
// reference the day sums are checked against.
Result<boost::json::object> buildReport(const std::vector<ledger::Event>& events,
                                        const ReportQuery& q);

// The planner's accuracy across the fleet from job.reconciled events (the end's reconciliation
// of a job when there is one, else the one at ready): by model and engine, the jobs, the mean
// and mean absolute relative error of the per-GPU memory prediction, the largest, and the seqs.
boost::json::object buildAccuracy(const std::vector<ledger::Event>& reconciled);

}  // namespace hwl::evidence
