// GET /v1/report: the evidence report (energy, GPU-hours, idle time, cost, unaccounted use).
#include <boost/json.hpp>

#include "api.hpp"
#include "evidence/report.hpp"
#include "params.hpp"

namespace hwl::api {

// The evidence report over a period, from ledger events only (evidence/report.hpp): the same
// events read from a copy of the database give the same answer (`hwledger report --db`).
Result<http::Reply> Api::report(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"from", "to", "group_by"}); !s) return s.error();
  auto from = http::queryInt(req, "from", 0, 4'102'444'800'000);
  if (!from) return from.error();
  auto to = http::queryInt(req, "to", 0, 4'102'444'800'000);
  if (!to) return to.error();
  evidence::ReportQuery q;
  q.from_ms = from->value_or(0);
  q.to_ms = to->value_or(clock_.nowMs() + 1);
  if (auto g = req.query.find("group_by"); g != req.query.end()) q.group_by = g->second;
  if (auto s = evidence::checkReportQuery(q); !s) return s.error();
  auto events = evidence::reportEvents(ledger_);
  if (!events) return events.error();
  auto r = evidence::buildReport(*events, q);
  if (!r) return r.error();
  return http::ok(std::move(*r));
}

}  // namespace hwl::api
