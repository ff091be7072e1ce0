// The evidence report from ledger events; see report.hpp. An event belongs to the period by its
// own time: a job.usage by the end of its window (the latest one of a job is used: they are
// cumulative), a telemetry.hourly by its hour, a cost.accrued by the start of its window, a
// job.idle by the start of the idle run, a gpu.unaccounted_use by when it was seen.
#include "report.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <set>

#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::evidence {
namespace bj = boost::json;

namespace {

using json::intOf;
using json::numberOf;
using json::textOf;
double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

// One row being summed.
struct Row {
  bj::object keys;
  double energy_wh = 0, gpu_hours = 0, util_sum = 0;
  int64_t util_n = 0, idle_hours = 0, idle_events = 0, unaccounted = 0;
  std::optional<double> cost_usd;
  std::optional<double> idle_billed_usd;  // rentals: billed hours whose GPUs sat idle
  std::set<std::string> energy_sources;
  std::vector<int64_t> seqs;

  void cost(double usd) { cost_usd = cost_usd.value_or(0) + usd; }
  bj::object json(bool hourly) {
    bj::object o = keys;
    o["energy_wh"] = round3(energy_wh);
    o["energy_source"] = energy_sources.empty()      ? "none"
                         : energy_sources.size() > 1 ? "mixed"
                                                     : *energy_sources.begin();
    o["gpu_hours"] = round3(gpu_hours);
    o["util_mean_pct"] =
        util_n > 0 ? bj::value(round3(util_sum / static_cast<double>(util_n))) : bj::value(nullptr);
    if (hourly) {
      o["idle_fraction"] =
          util_n > 0
              ? bj::value(round3(static_cast<double>(idle_hours) / static_cast<double>(util_n)))
              : bj::value(nullptr);
    }
    o["idle_events"] = idle_events;
    o["unaccounted_use_events"] = unaccounted;
    o["cost_usd"] = cost_usd ? bj::value(round3(*cost_usd)) : bj::value(nullptr);
    if (keys.contains("rental")) {
      o["idle_billed_usd"] = round3(idle_billed_usd.value_or(0));
    }
    o["seqs"] = seqArray();
    return o;
  }
  // The seqs, ascending, as JSON; the row's own list is released (a month of a large fleet's
  // GPU-hours is millions of them).
  bj::array seqArray() {
    std::sort(seqs.begin(), seqs.end());
    bj::array a;
    a.reserve(seqs.size());
    for (int64_t q : seqs) a.emplace_back(q);
    std::vector<int64_t>().swap(seqs);
    return a;
  }
  // Adds the GPU-hours of a telemetry span.
  void add(const ledger::TelemetrySpan& t) {
    energy_wh += t.energy_wh;
    if (t.counter_hours > 0) energy_sources.insert("counter");
    if (t.power_hours > 0) energy_sources.insert("power");
    gpu_hours += static_cast<double>(t.hours);
    util_sum += t.util_sum;
    util_n += t.util_n;
    idle_hours += t.idle_hours;
    seqs.insert(seqs.end(), t.seqs.begin(), t.seqs.end());
  }
};

}  // namespace

const std::vector<std::string>& reportEventTypes() {
  static const std::vector<std::string> kTypes = {
      proto::event::kJobUsage, proto::event::kCostAccrued, proto::event::kJobIdle,
      proto::event::kGpuUnaccountedUse, proto::event::kRentalIdleBilled};
  return kTypes;
}

Result<std::vector<ledger::Event>> eventsOfType(ledger::Ledger& ledger, std::string_view type,
                                                int64_t after) {
  return ledger::readAll(ledger, {after, 1000, "", std::string(type)});
}

Result<std::vector<ledger::Event>> reportEvents(ledger::Ledger& ledger) {
  std::vector<ledger::Event> out;
  for (const auto& type : reportEventTypes()) {
    auto e = eventsOfType(ledger, type);
    if (!e) return e.error();
    for (auto& x : *e) out.push_back(std::move(x));
  }
  return out;
}

Status checkReportQuery(const ReportQuery& q) {
  if (q.group_by != "job" && q.group_by != "host" && q.group_by != "gpu" &&
      q.group_by != "rental") {
    return invalidArgument("group_by must be job, host, gpu or rental");
  }
  if (q.to_ms <= q.from_ms) return invalidArgument("the period ends before it starts");
  return {};
}

Result<bj::object> buildReport(const std::vector<ledger::Event>& events, const ReportQuery& q,
                               const ledger::SpanReader& spans) {
  if (auto s = checkReportQuery(q); !s) return s.error();
  const auto in = [&](int64_t t) { return t >= q.from_ms && t < q.to_ms; };
  std::map<std::string, Row> rows;
  // Per job, the latest usage in the period (job.usage windows are cumulative).
  std::map<std::string, std::pair<int64_t, const ledger::Event*>> latest_usage;
  std::vector<std::pair<const ledger::Event*, bj::object>> parsed;
  parsed.reserve(events.size());
  for (const auto& e : events) {
    boost::system::error_code ec;
    bj::value v = bj::parse(e.data, ec);
    if (ec || !v.is_object()) continue;
    parsed.emplace_back(&e, std::move(v.as_object()));
  }
  auto row = [&](const std::string& key, bj::object keys) -> Row& {
    auto [it, fresh] = rows.try_emplace(key);
    if (fresh) it->second.keys = std::move(keys);
    return it->second;
  };
  const std::string& g = q.group_by;
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> billed;  // rental -> windows
  for (const auto& [e, d] : parsed) {
    const std::string host = textOf(d, "host_id");
    if (e->type == proto::event::kJobUsage && g == "job" && in(intOf(d, "to_ms"))) {
      auto& l = latest_usage[textOf(d, "job_id")];
      if (l.second == nullptr || intOf(d, "to_ms") > l.first) l = {intOf(d, "to_ms"), e};
    } else if (e->type == proto::event::kCostAccrued && in(intOf(d, "from_ms"))) {
      const double usd = numberOf(d, "amount_usd");
      if (g == "host" && !host.empty()) {
        Row& r = row(host, {{"host_id", host}});
        r.cost(usd);
        r.seqs.push_back(e->seq);
      } else if (g == "rental") {
        const std::string rental = textOf(d, "rental");
        billed[rental].emplace_back(intOf(d, "from_ms"), intOf(d, "to_ms"));
        Row& r = row(rental,
                     {{"rental", rental}, {"host_id", host}, {"provider", textOf(d, "provider")}});
        r.cost(usd);
        r.gpu_hours += static_cast<double>(intOf(d, "to_ms") - intOf(d, "from_ms")) / 3.6e6;
        r.seqs.push_back(e->seq);
      } else if (g == "job") {
        if (const bj::value* jobs = d.if_contains("jobs"); jobs != nullptr && jobs->is_array()) {
          for (const auto& jv : jobs->as_array()) {
            if (!jv.is_object()) continue;
            const auto& j = jv.as_object();
            Row& r = row(textOf(j, "job"), {{"job_id", textOf(j, "job")}});
            r.cost(numberOf(j, "amount_usd"));
            r.seqs.push_back(e->seq);
          }
        }
      }
    } else if (e->type == proto::event::kRentalIdleBilled && g == "rental" &&
               in(intOf(d, "from_ms"))) {
      const std::string rental = textOf(d, "rental");
      Row& r = row(rental, {{"rental", rental}, {"host_id", host}, {"provider", ""}});
      r.idle_billed_usd = r.idle_billed_usd.value_or(0) + numberOf(d, "amount_usd");
      r.seqs.push_back(e->seq);
    } else if (e->type == proto::event::kJobIdle && g == "job" && in(intOf(d, "since_ms"))) {
      Row& r = row(textOf(d, "job_id"), {{"job_id", textOf(d, "job_id")}});
      ++r.idle_events;
      r.seqs.push_back(e->seq);
    } else if (e->type == proto::event::kGpuUnaccountedUse && (g == "host" || g == "gpu") &&
               in(intOf(d, "seen_ms"))) {
      const std::string gpu = textOf(d, "gpu_uuid");
      Row& r = g == "host" ? row(host, {{"host_id", host}})
                           : row(host + "/" + gpu, {{"host_id", host}, {"gpu_uuid", gpu}});
      ++r.unaccounted;
      r.seqs.push_back(e->seq);
    }
  }
  for (const auto& [job, l] : latest_usage) {
    const bj::object d = bj::parse(l.second->data).as_object();
    Row& r = row(job, {{"job_id", job}});
    r.keys["host_id"] = textOf(d, "host_id");
    r.energy_wh += numberOf(d, "energy_wh");
    r.energy_sources.insert(textOf(d, "energy_source"));
    r.gpu_hours += numberOf(d, "gpu_hours");
    if (d.contains("util_mean_pct")) {
      r.util_sum += numberOf(d, "util_mean_pct");
      ++r.util_n;
    }
    r.seqs.push_back(l.second->seq);
  }
  if (g == "host" || g == "gpu") {
    // GPU-hours, by whole UTC days where the period has them.
    auto s = spans(q.from_ms, q.to_ms, true, [&](const ledger::TelemetrySpan& t) {
      Row& r = g == "host" ? row(t.host_id, {{"host_id", t.host_id}})
                           : row(t.host_id + "/" + t.gpu_uuid,
                                 {{"host_id", t.host_id}, {"gpu_uuid", t.gpu_uuid}});
      r.add(t);
    });
    if (!s) return s.error();
  } else if (g == "rental" && !rows.empty()) {
    // A rental's energy: its host's hours within the windows it was billed for (the GPU-hours
    // stay the billed ones).
    std::map<std::string, std::vector<Row*>> by_host;
    for (auto& [rental, r] : rows) by_host[textOf(r.keys, "host_id")].push_back(&r);
    auto s = spans(q.from_ms, q.to_ms, false, [&](const ledger::TelemetrySpan& t) {
      auto it = by_host.find(t.host_id);
      if (it == by_host.end()) return;
      for (Row* r : it->second) {
        const auto& w = billed[textOf(r->keys, "rental")];
        if (std::none_of(w.begin(), w.end(), [&](const auto& b) {
              return t.start_ms >= b.first && t.start_ms < b.second;
            })) {
          continue;
        }
        const double gpu_hours = r->gpu_hours;
        r->add(t);
        r->gpu_hours = gpu_hours;
      }
    });
    if (!s) return s.error();
  }
  bj::array out;
  Row total;
  const bool hourly = g != "job";
  for (auto& [key, r] : rows) {
    out.push_back(r.json(hourly));
    total.energy_wh += r.energy_wh;
    total.gpu_hours += r.gpu_hours;
    if (r.cost_usd) total.cost(*r.cost_usd);
    total.idle_events += r.idle_events;
    total.unaccounted += r.unaccounted;
  }
  bj::object totals{
      {"energy_wh", round3(total.energy_wh)},
      {"gpu_hours", round3(total.gpu_hours)},
      {"cost_usd", total.cost_usd ? bj::value(round3(*total.cost_usd)) : bj::value(nullptr)},
      {"idle_events", total.idle_events},
      {"unaccounted_use_events", total.unaccounted}};
  return bj::object{
      {"from_ms", q.from_ms},
      {"to_ms", q.to_ms},
      {"group_by", g},
      {"rows", std::move(out)},
      {"totals", std::move(totals)},
      {"basis", g == "job" ? "job.usage (the latest in the period per job), cost.accrued "
                             "job shares, job.idle"
                           : "telemetry.hourly (one GPU-hour each; a UTC day wholly in the "
                             "period is read as the sum of its events, which names the same "
                             "seqs), cost.accrued, gpu.unaccounted_use"}};
}

Result<bj::object> buildReport(const std::vector<ledger::Event>& events, const ReportQuery& q) {
  std::vector<ledger::TelemetrySpan> hours;
  std::vector<ledger::Event> rest;
  for (const auto& e : events) {
    if (e.type != proto::event::kTelemetryHourly) {
      rest.push_back(e);
      continue;
    }
    auto d = json::parseObject(e.data);
    if (!d) continue;
    if (auto h = ledger::hourSpan(e.seq, *d)) hours.push_back(std::move(*h));
  }
  return buildReport(rest, q,
                     [&](int64_t f, int64_t t, bool, const ledger::SpanVisitor& fn) -> Status {
                       for (const auto& h : hours)
                         if (h.start_ms >= f && h.start_ms < t) fn(h);
                       return {};
                     });
}

bj::object buildAccuracy(const std::vector<ledger::Event>& reconciled) {
  // Per job, the reconciliation to use: "end" over "ready".
  std::map<std::string, std::pair<const ledger::Event*, bj::object>> per_job;
  for (const auto& e : reconciled) {
    boost::system::error_code ec;
    bj::value v = bj::parse(e.data, ec);
    if (ec || !v.is_object()) continue;
    bj::object d = std::move(v.as_object());
    const std::string job = textOf(d, "job_id");
    auto it = per_job.find(job);
    if (it == per_job.end() || textOf(d, "stage") == "end") per_job[job] = {&e, std::move(d)};
  }
  struct Group {
    int64_t jobs = 0;
    double sum = 0, abs_sum = 0, max_abs = 0;
    std::vector<int64_t> seqs;
  };
  std::map<std::pair<std::string, std::string>, Group> groups;
  for (const auto& [job, x] : per_job) {
    const bj::object& d = x.second;
    Group& g = groups[{textOf(d, "model"), textOf(d, "engine")}];
    const double err = numberOf(d, "relative_error");
    ++g.jobs;
    g.sum += err;
    g.abs_sum += std::abs(err);
    g.max_abs = std::max(g.max_abs, std::abs(err));
    g.seqs.push_back(x.first->seq);
  }
  bj::array rows;
  for (const auto& [key, g] : groups) {
    bj::array seqs;
    for (int64_t q : g.seqs) seqs.emplace_back(q);
    const auto n = static_cast<double>(g.jobs);
    rows.push_back(
        bj::object{{"model", key.first},
                   {"engine", key.second},
                   {"jobs", g.jobs},
                   {"mean_relative_error", std::round(g.sum / n * 10000) / 10000},
                   {"mean_abs_relative_error", std::round(g.abs_sum / n * 10000) / 10000},
                   {"max_abs_relative_error", std::round(g.max_abs * 10000) / 10000},
                   {"seqs", std::move(seqs)}});
  }
  return bj::object{{"groups", std::move(rows)},
                    {"basis",
                     "job.reconciled: observed whole-GPU memory against the planner's per-GPU "
                     "prediction, (observed - predicted) / predicted"}};
}

}  // namespace hwl::evidence
