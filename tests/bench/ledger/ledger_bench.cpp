// Durable append throughput and acknowledgement latency of the ledger, against the same loop in
// plain sqlite3 calls (WAL, synchronous=FULL, one transaction per batch), and verify time.
// Usage: ledger_bench [--quick] [--verify-events N] [--dir DIR]
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "hwl/crypto.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/tokens_projection.hpp"

namespace fs = std::filesystem;
namespace bj = boost::json;
using Ledger = hwl::storage::SqliteLedger;
using hwl::ledger::NewEvent;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

bj::object payload(int64_t i) {
  return {{"host", "host-" + std::to_string(i % 1000)},
          {"gpu", "GPU-" + std::to_string(i % 8)},
          {"energy_wh", 412.5},
          {"util_mean_pct", 63},
          {"n", i}};
}

std::unique_ptr<Ledger> openLedger(const fs::path& dir, const std::shared_ptr<EVP_PKEY>& key) {
  hwl::storage::LedgerOptions o;
  o.db_path = dir / "ledger.db";
  o.create = true;
  o.checkpoint_log = dir / "checkpoints.log";
  o.signing_key = key;
  o.projections.push_back(std::make_unique<hwl::storage::TokensProjection>());
  auto l = Ledger::open(std::move(o));
  if (!l) {
    std::fprintf(stderr, "open: %s\n", l.error().message.c_str());
    std::exit(1);
  }
  return std::move(*l);
}

struct Figures {
  double events_per_s;
  double p50_ms;
  double p99_ms;
};

Figures ledgerSerial(const fs::path& dir, const std::shared_ptr<EVP_PKEY>& key, int batch,
                     int64_t total) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto l = openLedger(dir, key);
  // The payloads are built before the clock starts, as the reference's are.
  std::vector<std::vector<NewEvent>> batches;
  for (int64_t n = 0; n < total; n += batch) {
    std::vector<NewEvent> evs;
    for (int i = 0; i < batch; ++i) evs.push_back({"", "telemetry.hourly", payload(n + i)});
    batches.push_back(std::move(evs));
  }
  std::vector<double> lat;
  auto t0 = Clock::now();
  int64_t n = 0;
  for (auto& evs : batches) {
    auto a = Clock::now();
    auto r = l->append("host/h" + std::to_string(n % 97), hwl::ledger::kAnyVersion, "system",
                       std::move(evs));
    lat.push_back(ms(Clock::now() - a));
    if (!r) std::exit(1);
    n += batch;
  }
  double secs = ms(Clock::now() - t0) / 1000;
  l->close();
  return {static_cast<double>(n) / secs, pct(lat, 0.5), pct(lat, 0.99)};
}

Figures ledgerConcurrent(const fs::path& dir, const std::shared_ptr<EVP_PKEY>& key, int threads,
                         int64_t per_thread) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto l = openLedger(dir, key);
  std::vector<std::vector<double>> lats(threads);
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int64_t i = 0; i < per_thread; ++i) {
        auto a = Clock::now();
        auto r = l->append("host/t" + std::to_string(t), hwl::ledger::kAnyVersion, "system",
                           {NewEvent{"", "telemetry.hourly", payload(i)}});
        lats[t].push_back(ms(Clock::now() - a));
        if (!r) std::exit(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  double secs = ms(Clock::now() - t0) / 1000;
  std::vector<double> all;
  for (auto& v : lats) all.insert(all.end(), v.begin(), v.end());
  l->close();
  return {static_cast<double>(threads * per_thread) / secs, pct(all, 0.5), pct(all, 0.99)};
}

// The reference: the same rows, the same durability, no hashing, no queue, no JSON work.
Figures plainSqlite(const fs::path& dir, int batch, int64_t total) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  sqlite3* db = nullptr;
  sqlite3_open((dir / "plain.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr);
  sqlite3_exec(db,
               "CREATE TABLE events(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream TEXT "
               "NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL, time_ms INTEGER NOT NULL, "
               "actor TEXT NOT NULL, data TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT "
               "NULL, UNIQUE(stream, version)); CREATE INDEX events_type ON events(type, seq);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO events VALUES(?,?,?,?,?,?,?,?,?,?)", -1, &st, nullptr);
  std::string data = bj::serialize(payload(1));
  char blob[32] = {};
  std::vector<double> lat;
  auto t0 = Clock::now();
  int64_t n = 0;
  while (n < total) {
    auto a = Clock::now();
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (int i = 0; i < batch; ++i, ++n) {
      std::string id = "ev_" + std::to_string(n);
      std::string stream = "host/h" + std::to_string(n % 97);
      sqlite3_bind_int64(st, 1, n + 1);
      sqlite3_bind_text(st, 2, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 3, stream.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 4, n + 1);
      sqlite3_bind_text(st, 5, "telemetry.hourly", -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 6, 1'700'000'000'000 + n);
      sqlite3_bind_text(st, 7, "system", -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 8, data.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(st, 9, blob, 32, SQLITE_STATIC);
      sqlite3_bind_blob(st, 10, blob, 32, SQLITE_STATIC);
      sqlite3_step(st);
      sqlite3_reset(st);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    lat.push_back(ms(Clock::now() - a));
  }
  double secs = ms(Clock::now() - t0) / 1000;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return {static_cast<double>(n) / secs, pct(lat, 0.5), pct(lat, 0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int64_t verify_events = 1'000'000;
  fs::path base = fs::temp_directory_path() / ("hwl-bench-" + hwl::crypto::newId("", 4));
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
      verify_events = 100'000;
    } else if (std::strcmp(argv[i], "--verify-events") == 0 && i + 1 < argc) {
      verify_events = std::atoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      base = argv[++i];
    }
  }
  auto k = hwl::crypto::generateEd25519();
  std::shared_ptr<EVP_PKEY> key(k.release(), hwl::crypto::PkeyFree{});

  std::printf("durable appends (WAL, synchronous=FULL, ack after COMMIT) in %s\n", base.c_str());
  std::printf("%-34s %12s %10s %10s %12s %8s\n", "case", "events/s", "p50 ms", "p99 ms",
              "sqlite ev/s", "ratio");
  for (int batch : {1, 10, 100, 1000}) {
    int64_t total =
        quick ? std::max<int64_t>(batch * 20, 200) : std::max<int64_t>(batch * 200, 2000);
    auto l = ledgerSerial(base / "serial", key, batch, total);
    auto p = plainSqlite(base / "plain", batch, total);
    std::printf("%-34s %12.0f %10.2f %10.2f %12.0f %7.0f%%\n",
                ("ledger, batch " + std::to_string(batch)).c_str(), l.events_per_s, l.p50_ms,
                l.p99_ms, p.events_per_s, 100.0 * l.events_per_s / p.events_per_s);
  }
  {
    int64_t per = quick ? 20 : 100;
    auto c = ledgerConcurrent(base / "conc", key, 64, per);
    auto p = plainSqlite(base / "plain", 1, 64 * per);
    std::printf("%-34s %12.0f %10.2f %10.2f %12.0f %7.0f%%\n", "ledger, 64 appenders x 1 event",
                c.events_per_s, c.p50_ms, c.p99_ms, p.events_per_s,
                100.0 * c.events_per_s / p.events_per_s);
  }

  // Verify time over a large ledger.
  fs::remove_all(base / "verify");
  fs::create_directories(base / "verify");
  {
    auto l = openLedger(base / "verify", key);
    auto t0 = Clock::now();
    for (int64_t n = 0; n < verify_events; n += 1000) {
      std::vector<NewEvent> evs;
      for (int i = 0; i < 1000 && n + i < verify_events; ++i)
        evs.push_back({"", "telemetry.hourly", payload(n + i)});
      if (!l->append("host/h" + std::to_string(n % 997), hwl::ledger::kAnyVersion, "system",
                     std::move(evs)))
        return 1;
    }
    std::printf("filled %lld events in %.1f s\n", static_cast<long long>(verify_events),
                ms(Clock::now() - t0) / 1000);
    auto v0 = Clock::now();
    auto rep = l->verify();
    double vs = ms(Clock::now() - v0) / 1000;
    std::printf("verify %lld events: %.2f s (%.0f events/s), ok=%s, checkpoints checked %lld\n",
                static_cast<long long>(rep.events), vs, static_cast<double>(rep.events) / vs,
                rep.ok ? "true" : "false", static_cast<long long>(rep.checkpoints_checked));
    l->close();
  }
  fs::remove_all(base);
  return 0;
}
