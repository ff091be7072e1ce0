// The telemetry-days projection and the span reader; see telemetry_days.hpp.
#include "telemetry_days.hpp"

#include <algorithm>
#include <charconv>

#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::storage {

namespace {

constexpr const char* kUpsert =
    "INSERT INTO ev_gpu_days(day_ms, host_id, gpu_uuid, hours, energy_wh, counter_hours, "
    "power_hours, util_sum, util_n, idle_hours, seqs) VALUES(?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(day_ms, host_id, gpu_uuid) DO UPDATE SET hours = hours + excluded.hours, "
    "energy_wh = energy_wh + excluded.energy_wh, "
    "counter_hours = counter_hours + excluded.counter_hours, "
    "power_hours = power_hours + excluded.power_hours, util_sum = util_sum + excluded.util_sum, "
    "util_n = util_n + excluded.util_n, idle_hours = idle_hours + excluded.idle_hours, "
    "seqs = seqs || ',' || excluded.seqs";

std::vector<int64_t> parseSeqs(std::string_view text) {
  std::vector<int64_t> out;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    int64_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc{}) break;
    out.push_back(v);
    p = next < end && *next == ',' ? next + 1 : next;
  }
  if (!std::is_sorted(out.begin(), out.end())) std::sort(out.begin(), out.end());
  return out;
}

Status readHours(sqlite::Db& db, int64_t from_ms, int64_t to_ms, const ledger::SpanVisitor& fn) {
  if (to_ms <= from_ms) return {};
  // The literal type and expression match the partial index events_hourly; named, because the
  // planner would otherwise walk events_type over every hour ever recorded.
  auto st = db.prepare(
      "SELECT seq, data FROM events INDEXED BY events_hourly WHERE type = 'telemetry.hourly' AND "
      "json_extract(data, '$.hour_start_ms') >= ? AND json_extract(data, '$.hour_start_ms') < ?");
  if (!st) return st.error();
  st->bind(1, from_ms).bind(2, to_ms);
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return {};
    auto data = json::parseObject(st->text(1));
    if (!data) continue;
    if (auto span = ledger::hourSpan(st->i64(0), *data)) fn(*span);
  }
}

}  // namespace

Status TelemetryDaysProjection::apply(sqlite::Db& db, const Event& e) {
  if (e.type != proto::event::kTelemetryHourly) return {};
  auto data = json::parseObject(e.data);
  if (!data) return {};  // written by the server alone; a day sum skips what it cannot read
  auto span = ledger::hourSpan(e.seq, *data);
  if (!span) return {};
  auto st = db.prepare(kUpsert);
  if (!st) return st.error();
  st->bind(1, span->start_ms - span->start_ms % ledger::kDayMs)
      .bind(2, span->host_id)
      .bind(3, span->gpu_uuid)
      .bind(4, span->hours);
  sqlite3_bind_double(st->get(), 5, span->energy_wh);
  st->bind(6, span->counter_hours).bind(7, span->power_hours);
  sqlite3_bind_double(st->get(), 8, span->util_sum);
  st->bind(9, span->util_n).bind(10, span->idle_hours).bind(11, std::to_string(e.seq));
  return st->run();
}

Status readTelemetrySpans(sqlite::Db& db, int64_t from_ms, int64_t to_ms, bool whole_days,
                          const ledger::SpanVisitor& fn) {
  if (to_ms <= from_ms) return {};
  int64_t d0 = from_ms - from_ms % ledger::kDayMs;
  if (d0 < from_ms) d0 += ledger::kDayMs;
  const int64_t d1 = to_ms - to_ms % ledger::kDayMs;
  if (!whole_days || from_ms < 0 || d0 >= d1) return readHours(db, from_ms, to_ms, fn);
  if (auto s = readHours(db, from_ms, d0, fn); !s) return s;
  auto st = db.prepare(
      "SELECT day_ms, host_id, gpu_uuid, hours, energy_wh, counter_hours, power_hours, util_sum, "
      "util_n, idle_hours, seqs FROM ev_gpu_days WHERE day_ms >= ? AND day_ms < ?");
  if (!st) return st.error();
  st->bind(1, d0).bind(2, d1);
  ledger::TelemetrySpan span;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    span.start_ms = st->i64(0);
    span.host_id = st->text(1);
    span.gpu_uuid = st->text(2);
    span.hours = st->i64(3);
    span.energy_wh = sqlite3_column_double(st->get(), 4);
    span.counter_hours = st->i64(5);
    span.power_hours = st->i64(6);
    span.util_sum = sqlite3_column_double(st->get(), 7);
    span.util_n = st->i64(8);
    span.idle_hours = st->i64(9);
    span.seqs = parseSeqs(st->text(10));
    fn(span);
  }
  return readHours(db, d1, to_ms, fn);
}

}  // namespace hwl::storage
