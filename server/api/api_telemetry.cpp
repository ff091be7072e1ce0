// Telemetry series of a host or GPU, and usage (GPU hours, energy, utilisation) by host, GPU or
// job, read from the time series.
#include <boost/json.hpp>

#include "api.hpp"
#include "ledger/rows.hpp"
#include "ledger/time_series.hpp"
#include "params.hpp"

namespace hwl::api {

namespace bj = boost::json;

Result<http::Reply> Api::telemetry(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (fleet_.store == nullptr) return unavailable("no telemetry store");
  if (auto s = onlyParams(req, {"host", "gpu", "from", "to", "step"}); !s) return s.error();
  auto host_id = queryId(req, "host");
  if (!host_id) return host_id.error();
  const std::string host = *host_id;
  if (host.empty()) return invalidArgument("query parameter \"host\" is required");
  auto gpu = queryUuid(req, "gpu");
  if (!gpu) return gpu.error();
  int64_t now = clock_.nowMs();
  auto from = http::queryInt(req, "from", 0, INT64_MAX);
  auto to = http::queryInt(req, "to", 0, INT64_MAX);
  auto step = http::queryInt(req, "step", 1, 366LL * 24 * 3600 * 1000);
  for (auto* r : {&from, &to, &step})
    if (!*r) return r->error();
  int64_t t = to->value_or(now);
  int64_t f = from->value_or(t - 3600 * 1000);
  if (f >= t) return invalidArgument("\"from\" must be before \"to\"");
  // Default step: about 300 points over the range, at least 10 s.
  int64_t s = step->value_or(std::max<int64_t>(10'000, (t - f) / 300));
  if ((t - f) / s > 100'000)
    return invalidArgument("the range has too many steps; use a larger step");
  auto out = fleet_.store->query(host, *gpu, f, t, s);
  if (!out) return out.error();
  return http::ok(*out);
}

Result<http::Reply> Api::usage(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"from", "to", "group_by"}); !s) return s.error();
  int64_t now = clock_.nowMs();
  auto from = http::queryInt(req, "from", 0, INT64_MAX);
  auto to = http::queryInt(req, "to", 0, INT64_MAX);
  if (!from) return from.error();
  if (!to) return to.error();
  int64_t t = to->value_or(now);
  int64_t f = from->value_or(t - 24LL * 3600 * 1000);
  auto group_it = req.query.find("group_by");
  std::string group =
      group_it == req.query.end() || group_it->second.empty() ? "host" : group_it->second;
  if (group != "host" && group != "gpu" && group != "job")
    return invalidArgument("query parameter \"group_by\" must be host, gpu or job");
  // Minutes within the 1-minute retention are read at that resolution, older ranges by hour.
  const bool minute = f >= now - 30LL * 24 * 3600 * 1000;
  auto rows = fleet_.store->usage(group, f, t, now, minute);
  if (!rows) return rows.error();
  return http::ok(bj::object{{"from", f},
                             {"to", t},
                             {"group_by", group},
                             {"resolution", minute ? "1m" : "1h"},
                             {"usage", std::move(*rows)}});
}

}  // namespace hwl::api
