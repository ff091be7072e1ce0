// `hwledger report`: the evidence report over a period (energy, GPU-hours, utilisation, idle
// time, cost, unaccounted use) by job, host, GPU or rental, from the server or, with --db, from a
// copy of its database with no server at all. Both compute it from the same ledger events
// (evidence/report.hpp), so they agree.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "client.hpp"
#include "commands.hpp"
#include "evidence/report.hpp"
#include "hwl/proto/events.hpp"
#include "output.hpp"
#include "parse.hpp"
#include "storage/sqlite.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/telemetry_days.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct ReportOptions {
  std::string from;  // as typed; parseTime reads it once the command runs
  std::string to;
  std::string group_by = "job";
  std::string format;  // table | json | csv; empty: the global -o
  std::string db;      // a copy of the server's ledger.db: offline
};

// The report of the database at `path`, read-only.
Result<bj::object> offlineReport(const std::string& path, const evidence::ReportQuery& q) {
  if (!std::filesystem::exists(path)) return notFound("no database at " + path);
  auto db = sqlite::Db::open(path, sqlite::Db::Mode::kReadOnly);
  if (!db) return db.error();
  std::vector<ledger::Event> events;
  for (const auto& type : evidence::reportEventTypes()) {
    auto e = storage::readEventsOfType(*db, type);
    if (!e) return e.error();
    for (auto& x : *e) events.push_back(std::move(x));
  }
  auto days = db->queryInt("SELECT count(*) FROM sqlite_master WHERE name = 'ev_gpu_days'");
  if (!days) return days.error();
  if (days->value_or(0) == 0) {
    // A copy from before the day sums: every telemetry.hourly event, one by one.
    auto e = storage::readEventsOfType(*db, proto::event::kTelemetryHourly);
    if (!e) return e.error();
    for (auto& x : *e) events.push_back(std::move(x));
    return evidence::buildReport(events, q);
  }
  return evidence::buildReport(
      events, q, [&db](int64_t f, int64_t t, bool whole_days, const ledger::SpanVisitor& fn) {
        return storage::readTelemetrySpans(*db, f, t, whole_days, fn);
      });
}

void printReport(const bj::object& r, const Context& ctx) {
  const std::string g = str(r.at("group_by"));
  std::vector<std::string> head;
  if (g == "job") head = {"JOB", "HOST"};
  if (g == "host") head = {"HOST"};
  if (g == "gpu") head = {"HOST", "GPU"};
  if (g == "rental") head = {"RENTAL", "PROVIDER", "HOST"};
  for (const char* h :
       {"ENERGY Wh", "SOURCE", "GPU-HOURS", "UTIL%", g == "job" ? "IDLE EVENTS" : "IDLE HOURS %",
        "COST $", "UNACCOUNTED", "EVENTS"}) {
    head.emplace_back(h);
  }
  Table t(head);
  for (const auto& rv : r.at("rows").as_array()) {
    const auto& o = rv.as_object();
    std::vector<std::string> row;
    if (g == "job") row = {str(o.at("job_id")), o.contains("host_id") ? str(o.at("host_id")) : "-"};
    if (g == "host") row = {str(o.at("host_id"))};
    if (g == "gpu") row = {str(o.at("host_id")), str(o.at("gpu_uuid"))};
    if (g == "rental") row = {str(o.at("rental")), str(o.at("provider")), str(o.at("host_id"))};
    row.push_back(numStr(o, "energy_wh", "%.1f"));
    row.push_back(str(o.at("energy_source")));
    row.push_back(numStr(o, "gpu_hours", "%.3f"));
    row.push_back(numStr(o, "util_mean_pct", "%.1f"));
    if (g == "job") {
      row.push_back(numStr(o, "idle_events", "%.0f"));
    } else {
      const auto* f = o.if_contains("idle_fraction");
      char buf[32] = "-";
      if (f != nullptr && f->is_number())
        std::snprintf(buf, sizeof buf, "%.1f", f->to_number<double>() * 100);
      row.emplace_back(buf);
    }
    row.push_back(numStr(o, "cost_usd", "%.2f"));
    row.push_back(numStr(o, "unaccounted_use_events", "%.0f"));
    row.push_back(std::to_string(o.at("seqs").as_array().size()));
    t.add(row);
  }
  t.print(ctx.out);
}

// A time as parseTime reads it, or Unix milliseconds (the from_ms/to_ms of a report).
Result<int64_t> timeArg(const std::string& text, int64_t now) {
  if (!text.empty() && text.size() <= 15 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return static_cast<int64_t>(std::stoll(text));
  }
  return parseTime(text, now);
}

int report(const ReportOptions& o, const Context& ctx) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr)) * 1000;
  evidence::ReportQuery q;
  q.group_by = o.group_by;
  q.from_ms = now - 24 * 3'600'000LL;
  q.to_ms = now + 1;
  if (!o.from.empty()) {
    auto t = timeArg(o.from, now);
    if (!t) return usageError(ctx.err, t.error());
    q.from_ms = *t;
  }
  if (!o.to.empty()) {
    auto t = timeArg(o.to, now);
    if (!t) return usageError(ctx.err, t.error());
    q.to_ms = *t;
  }
  if (auto s = evidence::checkReportQuery(q); !s) return usageError(ctx.err, s.error());
  std::string format = o.format;
  if (format.empty()) format = ctx.json ? "json" : "table";
  if (format != "table" && format != "json" && format != "csv") {
    return usageError(ctx.err, invalidArgument("--format must be table, json or csv"));
  }
  Table::setFormat(format == "csv");
  Result<bj::object> r = [&]() -> Result<bj::object> {
    if (!o.db.empty()) return offlineReport(o.db, q);
    Api api(ctx.conn);
    auto v = api.call("GET", "/v1/report?from=" + std::to_string(q.from_ms) +
                                 "&to=" + std::to_string(q.to_ms) + "&group_by=" + q.group_by);
    if (!v) return v.error();
    if (!v->is_object()) return internal("the server's report is not an object");
    return v->as_object();
  }();
  if (!r) return fail(ctx.err, r.error());
  if (format == "json") {
    printJson(ctx.out, *r);
  } else {
    printReport(*r, ctx);
  }
  return 0;
}

struct AccuracyOptions {
  std::string db;
};

// The planner's accuracy (job.reconciled) by model and engine, from the server or a copy of
// its database.
int accuracy(const AccuracyOptions& o, const Context& ctx) {
  Result<bj::object> r = [&]() -> Result<bj::object> {
    if (!o.db.empty()) {
      if (!std::filesystem::exists(o.db)) return notFound("no database at " + o.db);
      auto db = sqlite::Db::open(o.db, sqlite::Db::Mode::kReadOnly);
      if (!db) return db.error();
      auto e = storage::readEventsOfType(*db, proto::event::kJobReconciled);
      if (!e) return e.error();
      return evidence::buildAccuracy(*e);
    }
    Api api(ctx.conn);
    auto v = api.call("GET", "/v1/planner/accuracy");
    if (!v) return v.error();
    if (!v->is_object()) return internal("the server's answer is not an object");
    return v->as_object();
  }();
  if (!r) return fail(ctx.err, r.error());
  if (ctx.json) {
    printJson(ctx.out, *r);
    return 0;
  }
  Table t({"MODEL", "ENGINE", "JOBS", "MEAN ERROR", "MEAN |ERROR|", "MAX |ERROR|"});
  auto pct = [](const bj::object& g, const char* k) { return numStr(g, k, "%+.4f"); };
  for (const auto& gv : r->at("groups").as_array()) {
    const auto& g = gv.as_object();
    t.add({str(g.at("model")), str(g.at("engine")), numStr(g, "jobs", "%.0f"),
           pct(g, "mean_relative_error"), pct(g, "mean_abs_relative_error"),
           pct(g, "max_abs_relative_error")});
  }
  t.print(ctx.out);
  return 0;
}

}  // namespace

void registerReport(CLI::App& app, Commands& commands) {
  auto* cmd = app.add_subcommand(
      "report", "energy, GPU-hours, idle time, cost and unaccounted use, with the events behind");
  // Offline with --db: no server, no config file.
  auto& o = commands.add(cmd, report, [](const ReportOptions& r) { return !r.db.empty(); });
  cmd->add_option("--from", o.from,
                  "start: 2026-12-02, 2026-12-02T10:00:00Z, -24h (default) or Unix ms");
  cmd->add_option("--to", o.to, "end, same forms (default: now)");
  cmd->add_option("--group-by", o.group_by, "job|host|gpu|rental");
  cmd->add_option("--format", o.format, "table|json|csv (default: the -o format)");
  cmd->add_option("--db", o.db, "compute it from a copy of the server's ledger.db, offline");

  auto* planner = app.add_subcommand("planner", "how the planner's predictions held up");
  planner->require_subcommand(1);
  auto* acc = planner->add_subcommand(
      "accuracy",
      "predicted against observed per-GPU memory (job.reconciled), by model and engine");
  auto& a = commands.add(acc, accuracy, [](const AccuracyOptions& x) { return !x.db.empty(); });
  acc->add_option("--db", a.db, "from a copy of the server's ledger.db, offline");
}

}  // namespace hwl::cli
