// GET /v1/report: the evidence report (energy, GPU-hours, idle time, cost, unaccounted use).
#include <boost/json.hpp>

#include "api.hpp"
#include "evidence/report.hpp"
#include "hwl/proto/events.hpp"
#include "params.hpp"

namespace hwl::api {

// The evidence report over a period, from ledger events only (evidence/report.hpp): the same
// events read from a copy of the database give the same answer (`hwledger report --db`).
Result<http::Reply> Api::report(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"from", "to", "group_by"}); !s) return s.error();
  auto w = queryWindow(req);
  if (!w) return w.error();
  evidence::ReportQuery q;
  q.from_ms = w->from.value_or(0);
  q.to_ms = w->to.value_or(clock_.nowMs() + 1);
  if (auto g = req.query.find("group_by"); g != req.query.end()) q.group_by = g->second;
  if (auto s = evidence::checkReportQuery(q); !s) return s.error();
  auto events = evidence::reportEvents(ledger_);
  if (!events) return events.error();
  auto r = evidence::buildReport(
      *events, q, [this](int64_t f, int64_t t, bool days, const ledger::SpanVisitor& fn) {
        return ledger_.telemetrySpans(f, t, days, fn);
      });
  if (!r) return r.error();
  return http::ok(std::move(*r));
}

// The planner's accuracy across the fleet (job.reconciled), by model and engine.
Result<http::Reply> Api::plannerAccuracy(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {}); !s) return s.error();
  auto events = evidence::eventsOfType(ledger_, proto::event::kJobReconciled);
  if (!events) return events.error();
  return http::ok(evidence::buildAccuracy(*events));
}

}  // namespace hwl::api
