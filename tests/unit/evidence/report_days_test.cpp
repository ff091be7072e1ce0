// The report's telemetry read as day sums (the ev_gpu_days projection, on a real SQLite ledger)
// equals the report from the telemetry.hourly events one by one, for periods aligned to days or
// not, with hours appended late and out of order; a database from before the day sums gets them
// from its events when it is opened; a rebuild from the events gives the same table.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <random>

#include "evidence/report.hpp"
#include "hwl/crypto.hpp"
#include "hwl/proto/events.hpp"
#include "storage/sqlite.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/telemetry_days.hpp"

namespace hwl::evidence {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;

constexpr int64_t kH = 3'600'000;
constexpr int64_t kDay = 24 * kH;
constexpr int64_t kT0 = 1'800'000'000'000 - 1'800'000'000'000 % kDay;  // a UTC midnight

class ReportDaysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hwl-days-" + crypto::newId("", 6));
    fs::create_directories(dir_);
    auto k = crypto::generateEd25519();
    key_ = std::shared_ptr<EVP_PKEY>(k.release(), crypto::PkeyFree{});
    open();
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }
  void open() {
    storage::LedgerOptions o;
    o.db_path = dir_ / "ledger.db";
    o.create = true;
    o.checkpoint_log = dir_ / "checkpoints.log";
    o.signing_key = key_;
    auto l = storage::SqliteLedger::open(std::move(o));
    ASSERT_TRUE(l.has_value()) << l.error().message;
    ledger_ = std::move(*l);
  }
  // Three days and a bit of two hosts x two GPUs, some hours missing, some without utilisation,
  // sources mixed, appended in a shuffled order (as late uploads would be).
  void fill() {
    std::mt19937 rng(7);
    std::vector<bj::object> hours;
    for (const char* host : {"host-a", "host-b"}) {
      for (const char* gpu : {"GPU-0", "GPU-1"}) {
        for (int64_t h = 0; h < 3 * 24 + 7; ++h) {
          if (rng() % 9 == 0) continue;  // no samples that hour
          bj::object d{{"host_id", host},
                       {"gpu_uuid", gpu},
                       {"hour_start_ms", kT0 + h * kH},
                       {"samples", 360},
                       {"energy_wh", static_cast<double>(rng() % 700000) / 1000.0},
                       {"energy_source", rng() % 4 == 0 ? "power" : "counter"}};
          if (rng() % 7 != 0) d["util_mean_pct"] = rng() % 3 == 0 ? 0.5 : (rng() % 1000) / 10.0;
          hours.push_back(std::move(d));
        }
      }
    }
    std::shuffle(hours.begin(), hours.end(), rng);
    for (size_t i = 0; i < hours.size(); i += 40) {
      ledger::AppendRequest req;
      req.actor = "system";
      std::vector<ledger::NewEvent> evs;
      for (size_t j = i; j < std::min(hours.size(), i + 40); ++j)
        evs.push_back({"", proto::event::kTelemetryHourly, hours[j]});
      req.parts.push_back({"host/telemetry", ledger::kAnyVersion, std::move(evs)});
      auto r = ledger_->append(std::move(req));
      ASSERT_TRUE(r.has_value()) << r.error().message;
    }
  }
  std::vector<ledger::Event> all() {
    auto e = ledger::readAll(*ledger_, {0, 1000, "", proto::event::kTelemetryHourly});
    EXPECT_TRUE(e.has_value());
    return e ? *e : std::vector<ledger::Event>{};
  }
  bj::object fromDays(const ReportQuery& q) {
    auto r = buildReport({}, q, [&](int64_t f, int64_t t, bool d, const ledger::SpanVisitor& fn) {
      return ledger_->telemetrySpans(f, t, d, fn);
    });
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : bj::object{};
  }
  // How many day spans a period reads (0 when it has no whole day).
  int64_t daySpans(int64_t from, int64_t to) {
    int64_t n = 0;
    auto s = ledger_->telemetrySpans(from, to, true, [&](const ledger::TelemetrySpan& t) {
      if (t.hours > 1 || t.start_ms % kDay == 0) n += t.hours > 1 ? 1 : 0;
    });
    EXPECT_TRUE(s.has_value());
    return n;
  }

  fs::path dir_;
  std::shared_ptr<EVP_PKEY> key_;
  std::unique_ptr<storage::SqliteLedger> ledger_;
};

// Row by row: the same keys, figures and seqs.
void expectSame(const bj::object& a, const bj::object& b) {
  const auto& ra = a.at("rows").as_array();
  const auto& rb = b.at("rows").as_array();
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    const auto& x = ra[i].as_object();
    const auto& y = rb[i].as_object();
    EXPECT_EQ(x.at("host_id"), y.at("host_id"));
    EXPECT_EQ(x.if_contains("gpu_uuid") != nullptr, y.if_contains("gpu_uuid") != nullptr);
    EXPECT_NEAR(x.at("energy_wh").to_number<double>(), y.at("energy_wh").to_number<double>(),
                0.0015);
    EXPECT_EQ(x.at("energy_source"), y.at("energy_source"));
    EXPECT_EQ(x.at("gpu_hours"), y.at("gpu_hours"));
    EXPECT_EQ(x.at("idle_fraction"), y.at("idle_fraction"));
    EXPECT_NEAR(x.at("util_mean_pct").to_number<double>(),
                y.at("util_mean_pct").to_number<double>(), 0.0015);
    EXPECT_EQ(x.at("seqs"), y.at("seqs"));
  }
}

TEST_F(ReportDaysTest, DaySumsGiveTheReportOfTheEventsOneByOne) {
  fill();
  const auto events = all();
  ASSERT_GT(events.size(), 250U);
  const std::vector<std::pair<int64_t, int64_t>> periods = {
      {kT0, kT0 + 3 * kDay},                     // three whole days
      {kT0 + 5 * kH, kT0 + 2 * kDay + 3 * kH},   // edges on both sides of a whole day
      {kT0 - kDay, kT0 + 10 * kDay},             // beyond the data
      {kT0 + kH, kT0 + 20 * kH},                 // no whole day
      {kT0 + 90 * 60'000, kT0 + kDay + kH / 2},  // not on hours
  };
  for (const auto& [f, t] : periods) {
    for (const char* g : {"host", "gpu"}) {
      SCOPED_TRACE(std::string(g) + " " + std::to_string((f - kT0) / 60'000) + " min to " +
                   std::to_string((t - kT0) / 60'000) + " min");
      auto one = buildReport(events, {f, t, g});
      ASSERT_TRUE(one.has_value());
      const bj::object days = fromDays({f, t, g});
      EXPECT_FALSE(days.at("rows").as_array().empty());
      expectSame(*one, days);
    }
  }
  // The whole-day periods did read day spans (a report of hours alone would pass the above too).
  EXPECT_EQ(daySpans(kT0, kT0 + 3 * kDay), 12);  // 2 hosts x 2 GPUs x 3 days
  EXPECT_EQ(daySpans(kT0 + kH, kT0 + 20 * kH), 0);
}

TEST_F(ReportDaysTest, AnOlderDatabaseGetsItsDaySumsFromItsEventsWhenOpened) {
  fill();
  const bj::object before = fromDays({kT0, kT0 + 3 * kDay, "gpu"});
  auto digest = ledger_->tableDigest("ev_gpu_days");
  ASSERT_TRUE(digest.has_value());
  ledger_.reset();
  {
    // As the database was before the day sums existed.
    auto db = sqlite::Db::open(dir_ / "ledger.db", sqlite::Db::Mode::kReadWrite);
    ASSERT_TRUE(db.has_value());
    ASSERT_TRUE(db->exec("DROP TABLE ev_gpu_days; DROP INDEX events_hourly; DROP TABLE "
                         "ts_job_mem; DELETE FROM schema_migrations WHERE version >= 7")
                    .has_value());
  }
  open();
  expectSame(before, fromDays({kT0, kT0 + 3 * kDay, "gpu"}));
  EXPECT_EQ(daySpans(kT0, kT0 + 3 * kDay), 12);
  // A rebuild from the events gives the same rows as the migration did.
  auto migrated = ledger_->tableDigest("ev_gpu_days");
  ASSERT_TRUE(ledger_->rebuildProjections().has_value());
  auto rebuilt = ledger_->tableDigest("ev_gpu_days");
  ASSERT_TRUE(migrated.has_value() && rebuilt.has_value());
  EXPECT_EQ(*digest, *rebuilt);
}

TEST_F(ReportDaysTest, TheEdgesAreReadThroughTheHourIndex) {
  fill();
  // Hours at the edge only: the index on the hour finds them without the rest.
  auto plan = ledger_->withDb([](sqlite::Db& db) -> std::string {
    auto st = db.prepare(
        "EXPLAIN QUERY PLAN SELECT seq, data FROM events INDEXED BY events_hourly WHERE type = "
        "'telemetry.hourly' AND json_extract(data, '$.hour_start_ms') >= 1 AND "
        "json_extract(data, '$.hour_start_ms') < 2");
    std::string out;
    for (;;) {
      auto row = st ? st->step() : Result<bool>(false);
      if (!row || !*row) break;
      out += std::string(st->text(3)) + "\n";
    }
    return out;
  });
  EXPECT_NE(plan.find("USING INDEX events_hourly"), std::string::npos) << plan;
  int64_t hours = 0;
  auto s = ledger_->telemetrySpans(kT0 + 2 * kH, kT0 + 4 * kH, true,
                                   [&](const ledger::TelemetrySpan& t) { hours += t.hours; });
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_GT(hours, 0);
  EXPECT_LE(hours, 8);
}

}  // namespace
}  // namespace hwl::evidence
