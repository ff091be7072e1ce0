// The evidence report by host over a period of telemetry.hourly events (HOSTS hosts x 8 GPUs x
// DAYS days, one event per GPU-hour), from the ledger as GET /v1/report and `hwledger report
// --db` compute it: read the events and the day sums, build the report, serialise it. Beside it,
// the reference: the same sums by one plain SQL aggregate (json_extract over the events table) on
// the same file. Prints the time of each, their ratio, and the RSS. Usage: report_bench [HOSTS]
// [DAYS] [--dir DIR]
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "evidence/report.hpp"
#include "hwl/crypto.hpp"
#include "hwl/proto/events.hpp"
#include "storage/sqlite.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/telemetry_days.hpp"

namespace fs = std::filesystem;
namespace bj = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

long rssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int hosts = argc > 1 && argv[1][0] != '-' ? std::atoi(argv[1]) : 100;
  int days = argc > 2 && argv[2][0] != '-' ? std::atoi(argv[2]) : 30;
  fs::path dir = fs::temp_directory_path() / ("hwl-report-bench-" + hwl::crypto::newId("", 6));
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  constexpr int64_t kHour = 3'600'000;
  constexpr int64_t kT0 = 1'798'761'600'000;  // a whole hour
  const int64_t hours = static_cast<int64_t>(days) * 24;
  const int64_t total = static_cast<int64_t>(hosts) * 8 * hours;
  {
    hwl::storage::LedgerOptions o;
    o.db_path = dir / "ledger.db";
    o.create = true;
    o.checkpoint_log = dir / "checkpoints.log";
    auto k = hwl::crypto::generateEd25519();
    o.signing_key = std::shared_ptr<EVP_PKEY>(k.release(), hwl::crypto::PkeyFree{});
    auto l = hwl::storage::SqliteLedger::open(std::move(o));
    if (!l) {
      std::fprintf(stderr, "open: %s\n", l.error().message.c_str());
      return 1;
    }
    const auto t0 = Clock::now();
    for (int h = 0; h < hosts; ++h) {
      const std::string host = "host-" + std::to_string(h);
      std::vector<hwl::ledger::NewEvent> evs;
      for (int64_t hour = 0; hour < hours; ++hour) {
        for (int g = 0; g < 8; ++g) {
          const double util = (hour + g) % 5 == 0 ? 0.0 : 70.0;
          evs.push_back({"", hwl::proto::event::kTelemetryHourly,
                         bj::object{{"host_id", host},
                                    {"gpu_uuid", "GPU-" + std::to_string(g)},
                                    {"hour_start_ms", kT0 + hour * kHour},
                                    {"samples", 360},
                                    {"energy_wh", util > 0 ? 540.0 : 70.0},
                                    {"energy_source", "counter"},
                                    {"util_mean_pct", util}}});
        }
      }
      auto r = (*l)->append("host/" + host, hwl::ledger::kAnyVersion, "system", std::move(evs));
      if (!r) {
        std::fprintf(stderr, "append: %s\n", r.error().message.c_str());
        return 1;
      }
    }
    (*l)->close();
    std::printf("events: %lld telemetry.hourly (%d hosts x 8 GPUs x %d days), written in %.1f s\n",
                static_cast<long long>(total), hosts, days, ms(Clock::now() - t0) / 1000);
  }
  const hwl::evidence::ReportQuery q{kT0, kT0 + hours * kHour, "host"};
  auto db = hwl::sqlite::Db::open(dir / "ledger.db", hwl::sqlite::Db::Mode::kReadOnly);
  if (!db) {
    std::fprintf(stderr, "open: %s\n", db.error().message.c_str());
    return 1;
  }
  const long rss0 = rssKb();
  // The report, as `hwledger report --db` computes it: the other evidence events, and the
  // telemetry as day sums (ev_gpu_days) with the edge hours from the events.
  auto t = Clock::now();
  std::vector<hwl::ledger::Event> events;
  for (const auto& type : hwl::evidence::reportEventTypes()) {
    auto e = hwl::storage::readEventsOfType(*db, type);
    if (!e) return 1;
    for (auto& x : *e) events.push_back(std::move(x));
  }
  auto r = hwl::evidence::buildReport(
      events, q, [&](int64_t f, int64_t to, bool days, const hwl::ledger::SpanVisitor& fn) {
        return hwl::storage::readTelemetrySpans(*db, f, to, days, fn);
      });
  const double report_ms = ms(Clock::now() - t);
  if (!r) return 1;
  const long rss1 = rssKb();
  t = Clock::now();
  const std::string body = bj::serialize(*r);
  const double serialize_ms = ms(Clock::now() - t);
  const long rss2 = rssKb();
  size_t seqs = 0;
  for (const auto& row : r->at("rows").as_array()) seqs += row.at("seqs").as_array().size();
  const double energy = r->at("totals").at("energy_wh").to_number<double>();
  // The reference: one SQL aggregate over the same rows.
  t = Clock::now();
  auto st = db->prepare(
      "SELECT json_extract(data, '$.host_id'), sum(json_extract(data, '$.energy_wh')), count(*) "
      "FROM events WHERE type = 'telemetry.hourly' AND json_extract(data, '$.hour_start_ms') >= ? "
      "AND json_extract(data, '$.hour_start_ms') < ? GROUP BY 1");
  if (!st) return 1;
  st->bind(1, q.from_ms).bind(2, q.to_ms);
  double ref_energy = 0;
  for (;;) {
    auto row = st->step();
    if (!row || !*row) break;
    ref_energy += sqlite3_column_double(st->get(), 1);
  }
  const double ref_ms = ms(Clock::now() - t);
  // The floor: the same sums by SQL over the day sums alone.
  t = Clock::now();
  auto dst = db->prepare(
      "SELECT host_id, sum(energy_wh), sum(hours) FROM ev_gpu_days WHERE day_ms >= ? AND day_ms "
      "< ? GROUP BY 1");
  if (!dst) return 1;
  dst->bind(1, q.from_ms).bind(2, q.to_ms);
  for (;;) {
    auto row = dst->step();
    if (!row || !*row) break;
  }
  const double days_ms = ms(Clock::now() - t);
  std::printf(
      "report by host: %.0f ms, %zu rows, %zu seqs named, %.0f Wh; its JSON (%.1f MB) in %.0f "
      "ms\n",
      report_ms, r->at("rows").as_array().size(), seqs, energy,
      static_cast<double>(body.size()) / 1e6, serialize_ms);
  std::printf("reference, one SQL aggregate (json_extract) over the events: %.0f ms, %.0f Wh\n",
              ref_ms, ref_energy);
  std::printf("floor, one SQL aggregate over the day sums (no seqs): %.0f ms\n", days_ms);
  std::printf("ratio report / reference: %.2f\n", report_ms / ref_ms);
  std::printf("RSS: %ld KiB before the report, %ld KiB after it, %ld KiB with its JSON\n", rss0,
              rss1, rss2);
  fs::remove_all(dir);
  return energy == ref_energy ? 0 : 2;
}
