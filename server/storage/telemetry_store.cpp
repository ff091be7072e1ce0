// Time-series writes (batched through the ledger's writer), roll-ups, hourly events, retention.
#include "telemetry_store.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cmath>

#include "fleet_projection.hpp"
#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::storage {

namespace bj = boost::json;

namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 3'600'000;

const char* kUpsert =
    "INSERT INTO %s(series, bucket_ms, samples, util_sum, util_n, util_max, mem_used_max, "
    "power_sum, power_n, power_max, temp_max, energy_wh, energy_counter) "
    "VALUES(?1, ?2, 1, coalesce(?3, 0), ?3 IS NOT NULL, ?3, ?4, coalesce(?5, 0), ?5 IS NOT NULL, "
    "?5, ?6, ?7, ?8) ON CONFLICT(series, bucket_ms) DO UPDATE SET samples = samples + 1, "
    "util_sum = util_sum + coalesce(?3, 0), util_n = util_n + (?3 IS NOT NULL), "
    "util_max = max(coalesce(util_max, ?3), coalesce(?3, util_max)), "
    "mem_used_max = max(coalesce(mem_used_max, ?4), coalesce(?4, mem_used_max)), "
    "power_sum = power_sum + coalesce(?5, 0), power_n = power_n + (?5 IS NOT NULL), "
    "power_max = max(coalesce(power_max, ?5), coalesce(?5, power_max)), "
    "temp_max = max(coalesce(temp_max, ?6), coalesce(?6, temp_max)), "
    "energy_wh = energy_wh + ?7, energy_counter = max(energy_counter, ?8)";

std::string upsertSql(const char* table) {
  char buf[2048];
  std::snprintf(buf, sizeof buf, kUpsert, table);
  return buf;
}

void bindOpt(sqlite::Stmt& st, int i, const std::optional<double>& v) {
  if (v)
    sqlite3_bind_double(st.get(), i, *v);
  else
    st.bindNull(i);
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

TelemetryStore::TelemetryStore(SqliteLedger& ledger, TelemetrySettings settings)
    : ledger_(ledger), settings_(settings) {}

TelemetryStore::~TelemetryStore() { stop(); }

void TelemetryStore::start() {
  thread_ = std::thread([this] { run(); });
}

void TelemetryStore::stop() {
  {
    std::lock_guard lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  (void)flush();
}

void TelemetryStore::record(const std::string& host_id, int64_t time_ms,
                            std::vector<GpuPoint> gpus) {
  std::lock_guard lk(mu_);
  buffer_.push_back(Pending{host_id, time_ms, std::move(gpus)});
  ++recorded_;
}

void TelemetryStore::run() {
  auto next_retention = std::chrono::steady_clock::now();
  std::unique_lock lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, settings_.flush_interval, [this] { return stop_; });
    if (stop_) break;
    lk.unlock();
    if (auto s = flush(); !s) spdlog::warn("telemetry flush: {}", s.error().message);
    if (std::chrono::steady_clock::now() >= next_retention) {
      if (auto s = enforceRetention(SystemClock::instance().nowMs()); !s)
        spdlog::warn("telemetry retention: {}", s.error().message);
      next_retention = std::chrono::steady_clock::now() + settings_.retention_interval;
    }
    lk.lock();
  }
}

Status TelemetryStore::flush() {
  std::vector<Pending> batch;
  {
    std::lock_guard lk(mu_);
    batch.swap(buffer_);
  }
  if (batch.empty()) return {};
  std::vector<ledger::AppendRequest> hourly;
  auto s = ledger_.runTask([&](sqlite::Db& db) -> Status {
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    if (auto w = writeBatch(db, batch, hourly); !w) return w;
    return tx->commit();
  });
  if (!s) {
    series_.clear();  // in-memory state may be ahead of what was rolled back
    return s;
  }
  for (auto& h : hourly) {
    auto r = ledger_.append(std::move(h));
    if (!r) spdlog::warn("telemetry.hourly: {}", r.error().message);
  }
  return {};
}

Result<TelemetryStore::SeriesState*> TelemetryStore::series(sqlite::Db& db, const std::string& host,
                                                            const std::string& uuid) {
  auto key = std::make_pair(host, uuid);
  auto it = series_.find(key);
  if (it != series_.end()) return &it->second;
  SeriesState s;
  auto ins = db.prepare("INSERT OR IGNORE INTO ts_series(host_id, gpu_uuid) VALUES(?,?)");
  if (!ins) return ins.error();
  ins->bind(1, host).bind(2, uuid);
  if (auto r = ins->run(); !r) return r.error();
  auto sel = db.prepare("SELECT id FROM ts_series WHERE host_id = ? AND gpu_uuid = ?");
  if (!sel) return sel.error();
  sel->bind(1, host).bind(2, uuid);
  auto row = sel->step();
  if (!row || !*row) return internal("cannot create a time series");
  s.id = sel->i64(0);
  // After a restart, carry on from what is stored.
  auto last = db.prepare(
      "SELECT time_ms, energy_mj, power_w FROM ts_raw WHERE series = ? ORDER BY time_ms DESC "
      "LIMIT 1");
  if (!last) return last.error();
  last->bind(1, s.id);
  if (auto r = last->step(); r && *r) {
    s.last_time_ms = last->i64(0);
    s.last_energy_mj = last->optI64(1);
    if (!last->isNull(2)) s.last_power_w = sqlite3_column_double(last->get(), 2);
  }
  auto hour = db.prepare("SELECT max(bucket_ms) FROM ts_1h WHERE series = ?");
  if (!hour) return hour.error();
  hour->bind(1, s.id);
  if (auto r = hour->step(); r && *r && !hour->isNull(0)) s.hour_ms = hour->i64(0);
  return &series_.emplace(key, s).first->second;
}

Result<ledger::AppendRequest> TelemetryStore::hourlyEvent(sqlite::Db& db, const std::string& host,
                                                          const std::string& uuid, int64_t series,
                                                          int64_t hour_ms) {
  auto st = db.prepare(
      "SELECT samples, util_sum, util_n, util_max, mem_used_max, temp_max, energy_wh, "
      "energy_counter FROM ts_1h WHERE series = ? AND bucket_ms = ?");
  if (!st) return st.error();
  st->bind(1, series).bind(2, hour_ms);
  auto r = st->step();
  if (!r) return r.error();
  if (!*r) return notFound("no hour bucket");
  bj::object d{{"host_id", host},
               {"gpu_uuid", uuid},
               {"hour_start_ms", hour_ms},
               {"samples", st->i64(0)},
               {"energy_wh", round3(sqlite3_column_double(st->get(), 6))},
               {"energy_source", st->i64(7) != 0 ? "counter" : "power"}};
  if (st->i64(2) > 0)
    d["util_mean_pct"] =
        round3(sqlite3_column_double(st->get(), 1) / static_cast<double>(st->i64(2)));
  if (!st->isNull(3)) d["util_max_pct"] = round3(sqlite3_column_double(st->get(), 3));
  if (!st->isNull(4)) d["mem_used_max_bytes"] = st->i64(4);
  if (!st->isNull(5)) d["temp_max_c"] = round3(sqlite3_column_double(st->get(), 5));
  ledger::AppendRequest req;
  req.actor = "system";
  req.parts.push_back({"host/" + host,
                       ledger::kAnyVersion,
                       {{"tel:" + host + ":" + uuid + ":" + std::to_string(hour_ms),
                         proto::event::kTelemetryHourly, std::move(d)}}});
  return req;
}

Status TelemetryStore::writeBatch(sqlite::Db& db, std::vector<Pending>& batch,
                                  std::vector<ledger::AppendRequest>& hourly) {
  auto raw = db.prepare(
      "INSERT OR IGNORE INTO ts_raw(series, time_ms, util, mem_used, mem_total, power_w, temp_c, "
      "energy_mj) VALUES(?,?,?,?,?,?,?,?)");
  auto m1 = db.prepare(upsertSql("ts_1m"));
  auto h1 = db.prepare(upsertSql("ts_1h"));
  auto jm = db.prepare(
      "INSERT INTO ts_job_mem(series, bucket_ms, job_id, mem_max) VALUES(?,?,?,?) "
      "ON CONFLICT(series, bucket_ms, job_id) DO UPDATE SET mem_max = max(mem_max, "
      "excluded.mem_max)");
  if (!jm) return jm.error();
  if (!raw) return raw.error();
  if (!m1) return m1.error();
  if (!h1) return h1.error();
  for (auto& p : batch) {
    for (const auto& g : p.gpus) {
      auto sp = series(db, p.host_id, g.uuid);
      if (!sp) return sp.error();
      SeriesState& s = **sp;
      if (p.time_ms <= s.last_time_ms) continue;  // late or repeated sample
      // Energy since the previous sample: from the counter when there is one, else the
      // trapezoid of power over the gap (when the gap is short enough to trust).
      double wh = 0;
      bool counter = false;
      int64_t gap = s.last_time_ms > 0 ? p.time_ms - s.last_time_ms : 0;
      if (g.energy_mj && s.last_energy_mj && *g.energy_mj >= *s.last_energy_mj) {
        wh = static_cast<double>(*g.energy_mj - *s.last_energy_mj) / 3.6e6;
        counter = true;
      } else if (g.power_w && s.last_power_w && gap > 0 &&
                 gap <= settings_.max_integration_gap_ms) {
        wh = (*g.power_w + *s.last_power_w) / 2.0 * static_cast<double>(gap) / 3.6e6;
      }
      raw->bind(1, s.id).bind(2, p.time_ms);
      bindOpt(*raw, 3, g.util_pct);
      raw->bind(4, g.mem_used_bytes).bind(5, g.mem_total_bytes);
      bindOpt(*raw, 6, g.power_w);
      bindOpt(*raw, 7, g.temp_c);
      raw->bind(8, g.energy_mj);
      if (auto r = raw->run(); !r) return r;
      raw->reset();
      for (auto* st : {&*m1, &*h1}) {
        int64_t bucket = p.time_ms - p.time_ms % (st == &*m1 ? kMinute : kHour);
        st->bind(1, s.id).bind(2, bucket);
        bindOpt(*st, 3, g.util_pct);
        st->bind(4, g.mem_used_bytes);
        bindOpt(*st, 5, g.power_w);
        bindOpt(*st, 6, g.temp_c);
        sqlite3_bind_double(st->get(), 7, wh);
        st->bind(8, int64_t{counter ? 1 : 0});
        if (auto r = st->run(); !r) return r;
        st->reset();
      }
      for (const auto& [job, bytes] : g.job_memory) {
        jm->bind(1, s.id).bind(2, p.time_ms - p.time_ms % kMinute).bind(3, job).bind(4, bytes);
        if (auto r = jm->run(); !r) return r;
        jm->reset();
      }
      int64_t hour = p.time_ms - p.time_ms % kHour;
      if (s.hour_ms >= 0 && s.hour_ms < hour) {
        auto ev = hourlyEvent(db, p.host_id, g.uuid, s.id, s.hour_ms);
        if (ev) hourly.push_back(std::move(*ev));
      }
      s.hour_ms = hour;
      s.last_time_ms = p.time_ms;
      s.last_energy_mj = g.energy_mj;
      s.last_power_w = g.power_w;
    }
  }
  return {};
}

Status TelemetryStore::enforceRetention(int64_t now_ms) {
  return ledger_.runTask([&](sqlite::Db& db) -> Status {
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    auto ids = db.prepare("SELECT id FROM ts_series");
    if (!ids) return ids.error();
    std::vector<int64_t> all;
    while (true) {
      auto r = ids->step();
      if (!r) return r.error();
      if (!*r) break;
      all.push_back(ids->i64(0));
    }
    auto raw = db.prepare("DELETE FROM ts_raw WHERE series = ? AND time_ms < ?");
    auto m1 = db.prepare("DELETE FROM ts_1m WHERE series = ? AND bucket_ms < ?");
    auto jm = db.prepare("DELETE FROM ts_job_mem WHERE series = ? AND bucket_ms < ?");
    if (!raw) return raw.error();
    if (!m1) return m1.error();
    if (!jm) return jm.error();
    for (int64_t id : all) {
      raw->bind(1, id).bind(2, now_ms - settings_.raw_retention_ms);
      if (auto s = raw->run(); !s) return s;
      raw->reset();
      for (auto* st : {&*m1, &*jm}) {
        st->bind(1, id).bind(2, now_ms - settings_.minute_retention_ms);
        if (auto s = st->run(); !s) return s;
        st->reset();
      }
    }
    return tx->commit();
  });
}

Result<bj::object> TelemetryStore::query(const std::string& host, const std::string& gpu,
                                         int64_t from, int64_t to, int64_t step) {
  int64_t now = SystemClock::instance().nowMs();
  std::string source = "raw";
  if (step >= kHour || from < now - settings_.minute_retention_ms)
    source = "1h";
  else if (step >= kMinute || from < now - settings_.raw_retention_ms)
    source = "1m";
  std::string sql;
  if (source == "raw")
    sql =
        "SELECT s.gpu_uuid, (r.time_ms / ?4) * ?4 AS b, avg(r.util), max(r.mem_used), "
        "avg(r.power_w), max(r.temp_c), NULL, count(*) FROM ts_raw r JOIN ts_series s ON "
        "s.id = r.series WHERE s.host_id = ?1 AND (?5 = '' OR s.gpu_uuid = ?5) AND r.time_ms >= ?2 "
        "AND r.time_ms < ?3 GROUP BY s.gpu_uuid, b ORDER BY s.gpu_uuid, b";
  else
    sql =
        "SELECT s.gpu_uuid, (r.bucket_ms / ?4) * ?4 AS b, sum(r.util_sum) / "
        "nullif(sum(r.util_n), 0), max(r.mem_used_max), sum(r.power_sum) / "
        "nullif(sum(r.power_n), 0), max(r.temp_max), sum(r.energy_wh), sum(r.samples) FROM " +
        std::string(source == "1m" ? "ts_1m" : "ts_1h") +
        " r JOIN ts_series s ON s.id = r.series WHERE s.host_id = ?1 AND (?5 = '' OR "
        "s.gpu_uuid = ?5) AND r.bucket_ms >= ?2 AND r.bucket_ms < ?3 GROUP BY s.gpu_uuid, b "
        "ORDER BY s.gpu_uuid, b";
  return ledger_.withDb([&](sqlite::Db& db) -> Result<bj::object> {
    auto st = db.prepare(sql);
    if (!st) return st.error();
    st->bind(1, host).bind(2, from).bind(3, to).bind(4, step).bind(5, gpu);
    bj::array series;
    std::string cur;
    bj::array points;
    auto close = [&] {
      if (!cur.empty()) series.push_back(bj::object{{"gpu_uuid", cur}, {"points", points}});
      points = bj::array();
    };
    for (;;) {
      auto r = st->step();
      if (!r) return r.error();
      if (!*r) break;
      std::string uuid(st->text(0));
      if (uuid != cur) {
        close();
        cur = uuid;
      }
      bj::object p{{"t", st->i64(1)}, {"samples", st->i64(7)}};
      auto put = [&](const char* k, int col) {
        if (!st->isNull(col)) p[k] = round3(sqlite3_column_double(st->get(), col));
      };
      put("util_pct", 2);
      if (!st->isNull(3)) p["mem_used_bytes"] = st->i64(3);
      put("power_w", 4);
      put("temp_c", 5);
      put("energy_wh", 6);
      points.push_back(std::move(p));
    }
    close();
    return bj::object{{"host", host},    {"from", from},     {"to", to},
                      {"step_ms", step}, {"source", source}, {"series", std::move(series)}};
  });
}

Result<bj::array> TelemetryStore::usage(const std::string& group, int64_t f, int64_t t, int64_t now,
                                        bool minute) {
  const char* table = minute ? "ts_1m" : "ts_1h";
  double bucket_h = minute ? 1.0 / 60.0 : 1.0;
  return ledger_.withDb([&](sqlite::Db& db) -> Result<bj::array> {
    bj::array out;
    if (group != "job") {
      std::string key = group == "host" ? "s.host_id" : "s.host_id, s.gpu_uuid";
      auto st = db.prepare(
          "SELECT " + key +
          ", count(*), sum(r.energy_wh), sum(r.util_sum), sum(r.util_n), "
          "count(DISTINCT s.gpu_uuid) FROM " +
          std::string(table) +
          " r JOIN ts_series s ON s.id = r.series WHERE r.bucket_ms >= ? AND r.bucket_ms < ? "
          "GROUP BY " +
          key + " ORDER BY " + key);
      if (!st) return st.error();
      st->bind(1, f).bind(2, t);
      for (;;) {
        auto r = st->step();
        if (!r) return r.error();
        if (!*r) break;
        int c = group == "host" ? 1 : 2;
        bj::object o{{"host", st->text(0)}};
        if (group == "gpu") o["gpu_uuid"] = st->text(1);
        auto buckets = static_cast<double>(st->i64(c));
        o["gpu_hours"] = std::round(buckets * bucket_h * 1000) / 1000;
        o["energy_kwh"] = std::round(sqlite3_column_double(st->get(), c + 1) * 1000) / 1e6;
        int64_t n = st->i64(c + 3);
        if (n > 0)
          o["mean_util_pct"] =
              std::round(sqlite3_column_double(st->get(), c + 2) / static_cast<double>(n) * 10) /
              10;
        if (group == "host") o["gpus"] = st->i64(c + 4);
        out.push_back(std::move(o));
      }
      return out;
    }
    // By job: the job's GPUs over its runtime within the range.
    auto jobs = listJobs(db);
    if (!jobs) return jobs.error();
    auto st = db.prepare(
        "SELECT count(*), sum(r.energy_wh), sum(r.util_sum), sum(r.util_n) FROM " +
        std::string(table) +
        " r JOIN ts_series s ON s.id = r.series WHERE s.host_id = ? AND s.gpu_uuid = ? AND "
        "r.bucket_ms >= ? AND r.bucket_ms < ?");
    if (!st) return st.error();
    for (const auto& j : *jobs) {
      if (!j.started_ms) continue;
      int64_t a = std::max(f, *j.started_ms);
      int64_t b = std::min(t, j.ended_ms.value_or(now));
      if (b <= a) continue;
      boost::system::error_code ec;
      auto gpus = bj::parse(j.gpus, ec);
      double energy = 0, util_sum = 0;
      int64_t util_n = 0;
      size_t ngpu = gpus.is_array() ? gpus.get_array().size() : 0;
      for (size_t i = 0; i < ngpu; ++i) {
        const auto& u = gpus.get_array()[i];
        if (!u.is_string()) continue;
        int64_t bucket = minute ? 60'000 : 3'600'000;
        st->bind(1, j.host_id)
            .bind(2, std::string(u.get_string()))
            .bind(3, a - a % bucket)
            .bind(4, b);
        if (auto r = st->step(); r && *r) {
          energy += sqlite3_column_double(st->get(), 1);
          util_sum += sqlite3_column_double(st->get(), 2);
          util_n += st->i64(3);
        }
        st->reset();
      }
      bj::object o{{"job", j.id},
                   {"name", j.name},
                   {"host", j.host_id},
                   {"gpus", ngpu},
                   {"gpu_hours", std::round(static_cast<double>(ngpu) * static_cast<double>(b - a) /
                                            3.6e6 * 1000) /
                                     1000},
                   {"energy_kwh", std::round(energy * 1000) / 1e6}};
      if (util_n > 0)
        o["mean_util_pct"] = std::round(util_sum / static_cast<double>(util_n) * 10) / 10;
      out.push_back(std::move(o));
    }
    return out;
  });
}

namespace {

// The largest minute of a job's own memory on one GPU (by series) in [from_ms, to_ms).
Result<std::optional<int64_t>> jobMemoryOn(sqlite::Db& db, const std::string& host_id,
                                           const std::string& gpu_uuid, const std::string& job_id,
                                           int64_t from_ms, int64_t to_ms) {
  auto st = db.prepare(
      "SELECT max(m.mem_max) FROM ts_job_mem m JOIN ts_series s ON s.id = m.series WHERE "
      "s.host_id = ? AND s.gpu_uuid = ? AND m.job_id = ? AND m.bucket_ms >= ? AND m.bucket_ms "
      "< ?");
  if (!st) return st.error();
  st->bind(1, host_id).bind(2, gpu_uuid).bind(3, job_id).bind(4, from_ms - from_ms % kMinute);
  st->bind(5, to_ms);
  auto r = st->step();
  if (!r) return r.error();
  return *r ? st->optI64(0) : std::nullopt;
}

}  // namespace

Result<bj::object> TelemetryStore::jobUsage(const std::string& host_id,
                                            const std::vector<std::string>& gpu_uuids,
                                            int64_t from_ms, int64_t to_ms,
                                            const std::string& job_id) {
  if (to_ms < from_ms) return invalidArgument("usage window ends before it starts");
  return ledger_.withDb([&](sqlite::Db& db) -> Result<bj::object> {
    auto st = db.prepare(
        "SELECT count(*), sum(r.samples), sum(r.energy_wh), min(r.energy_counter), "
        "sum(r.util_sum), sum(r.util_n), max(r.util_max), max(r.mem_used_max) FROM ts_1m r "
        "JOIN ts_series s ON s.id = r.series WHERE s.host_id = ? AND s.gpu_uuid = ? AND "
        "r.bucket_ms >= ? AND r.bucket_ms < ?");
    if (!st) return st.error();
    bj::array per_gpu;
    double energy = 0, util_sum = 0;
    int64_t util_n = 0, minutes = 0, samples = 0;
    std::optional<double> util_max;
    std::optional<int64_t> mem_max;
    int counter_gpus = 0, power_gpus = 0, process_gpus = 0, whole_gpus = 0;
    for (const auto& uuid : gpu_uuids) {
      std::optional<int64_t> own;
      if (!job_id.empty()) {
        auto m = jobMemoryOn(db, host_id, uuid, job_id, from_ms, to_ms);
        if (!m) return m.error();
        own = *m;
      }
      st->bind(1, host_id).bind(2, uuid).bind(3, from_ms - from_ms % kMinute).bind(4, to_ms);
      auto r = st->step();
      if (!r) return r.error();
      bj::object g{{"gpu_uuid", uuid}};
      const int64_t m = *r ? st->i64(0) : 0;
      g["minutes"] = m;
      if (m > 0) {
        const double e = sqlite3_column_double(st->get(), 2);
        const bool counter = st->i64(3) != 0;
        g["samples"] = st->i64(1);
        g["energy_wh"] = round3(e);
        g["energy_source"] = counter ? "counter" : "power";
        (counter ? counter_gpus : power_gpus) += 1;
        energy += e;
        samples += st->i64(1);
        minutes += m;
        if (st->i64(5) > 0) {
          g["util_mean_pct"] =
              round3(sqlite3_column_double(st->get(), 4) / static_cast<double>(st->i64(5)));
          util_sum += sqlite3_column_double(st->get(), 4);
          util_n += st->i64(5);
        }
        if (!st->isNull(6)) {
          const double u = sqlite3_column_double(st->get(), 6);
          g["util_max_pct"] = round3(u);
          util_max = std::max(util_max.value_or(u), u);
        }
        if (!st->isNull(7)) g["gpu_mem_used_max_bytes"] = st->i64(7);
        // The job's own processes where the agent reported them, else the whole GPU.
        const std::optional<int64_t> mem = own ? own : st->optI64(7);
        if (mem) {
          g["mem_used_max_bytes"] = *mem;
          g["memory_source"] = own ? "process" : "gpu";
          (own ? process_gpus : whole_gpus) += 1;
          mem_max = std::max(mem_max.value_or(*mem), *mem);
        }
      }
      st->reset();
      per_gpu.push_back(std::move(g));
    }
    bj::object o{
        {"from_ms", from_ms},
        {"to_ms", to_ms},
        {"gpu_hours", round3(static_cast<double>(gpu_uuids.size()) *
                             static_cast<double>(to_ms - from_ms) / 3.6e6)},
        {"minutes_with_samples", minutes},
        {"samples", samples},
        {"energy_wh", round3(energy)},
        {"energy_source",
         counter_gpus > 0 && power_gpus > 0
             ? "mixed"
             : (counter_gpus > 0 ? "counter" : (power_gpus > 0 ? "power" : "none"))},
        {"memory_source",
         process_gpus > 0 && whole_gpus > 0 ? "mixed" : (process_gpus > 0 ? "process" : "gpu")},
        {"gpus", std::move(per_gpu)}};
    if (util_n > 0) o["util_mean_pct"] = round3(util_sum / static_cast<double>(util_n));
    if (util_max) o["util_max_pct"] = round3(*util_max);
    if (mem_max) o["mem_used_max_bytes"] = *mem_max;
    return o;
  });
}

Result<std::vector<ledger::GpuMinute>> TelemetryStore::gpuMinutes(const std::string& host_id,
                                                                  const std::string& gpu_uuid,
                                                                  int64_t from_ms, int64_t to_ms) {
  return ledger_.withDb([&](sqlite::Db& db) -> Result<std::vector<ledger::GpuMinute>> {
    auto st = db.prepare(
        "SELECT r.bucket_ms, r.samples, r.util_max, r.power_sum / nullif(r.power_n, 0), "
        "r.mem_used_max FROM ts_1m r JOIN ts_series s ON s.id = r.series WHERE s.host_id = ? AND "
        "s.gpu_uuid = ? AND r.bucket_ms >= ? AND r.bucket_ms < ? ORDER BY r.bucket_ms");
    if (!st) return st.error();
    st->bind(1, host_id).bind(2, gpu_uuid).bind(3, from_ms).bind(4, to_ms);
    std::vector<ledger::GpuMinute> out;
    for (;;) {
      auto r = st->step();
      if (!r) return r.error();
      if (!*r) break;
      ledger::GpuMinute m;
      m.bucket_ms = st->i64(0);
      m.samples = st->i64(1);
      if (!st->isNull(2)) m.util_max_pct = sqlite3_column_double(st->get(), 2);
      if (!st->isNull(3)) m.power_mean_w = sqlite3_column_double(st->get(), 3);
      m.mem_used_max_bytes = st->optI64(4);
      out.push_back(m);
    }
    return out;
  });
}

}  // namespace hwl::storage
