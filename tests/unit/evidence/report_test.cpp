// The evidence report from events: which events a period takes, the latest cumulative job.usage,
// cost shares, idle hours, unaccounted use, rentals, and the seqs each row names.
#include "evidence/report.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "hwl/proto/events.hpp"

namespace hwl::evidence {
namespace {

namespace bj = boost::json;

constexpr int64_t kH = 3'600'000;
constexpr int64_t kT0 = 1'800'000'000'000 - 1'800'000'000'000 % kH;

struct Events {
  std::vector<ledger::Event> list;
  void add(const char* type, const bj::object& data) {
    ledger::Event e;
    e.seq = static_cast<int64_t>(list.size()) + 1;
    e.type = type;
    e.data = bj::serialize(data);
    list.push_back(std::move(e));
  }
};

Events sample() {
  Events ev;
  // Two hours of GPU-0 on host-1 (one busy, one idle) and one of GPU-1; one hour outside.
  for (auto [gpu, hour, wh, util] : std::vector<std::tuple<const char*, int, double, double>>{
           {"GPU-0", 0, 600, 95}, {"GPU-0", 1, 70, 0}, {"GPU-1", 0, 300, 40}, {"GPU-0", 5, 1, 0}}) {
    ev.add(proto::event::kTelemetryHourly, {{"host_id", "host-1"},
                                            {"gpu_uuid", gpu},
                                            {"hour_start_ms", kT0 + hour * kH},
                                            {"energy_wh", wh},
                                            {"energy_source", "power"},
                                            {"util_mean_pct", util}});
  }
  // job-a: an hourly usage then its final one (cumulative: the final is used); job-b idled.
  ev.add(proto::event::kJobUsage, {{"job_id", "job-a"},
                                   {"host_id", "host-1"},
                                   {"to_ms", kT0 + kH},
                                   {"energy_wh", 600.0},
                                   {"energy_source", "power"},
                                   {"gpu_hours", 1.0},
                                   {"util_mean_pct", 95.0},
                                   {"final", false}});
  ev.add(proto::event::kJobUsage, {{"job_id", "job-a"},
                                   {"host_id", "host-1"},
                                   {"to_ms", kT0 + 2 * kH},
                                   {"energy_wh", 670.0},
                                   {"energy_source", "power"},
                                   {"gpu_hours", 2.0},
                                   {"util_mean_pct", 47.5},
                                   {"final", true}});
  ev.add(proto::event::kJobIdle,
         {{"job_id", "job-b"}, {"host_id", "host-1"}, {"since_ms", kT0 + 30 * 60'000}});
  // A rental on host-1 billed two hours, job-a's share 3 of 5 dollars.
  ev.add(proto::event::kCostAccrued,
         {{"rental", "rent-1"},
          {"provider", "vast"},
          {"host_id", "host-1"},
          {"from_ms", kT0},
          {"to_ms", kT0 + 2 * kH},
          {"amount_usd", 5.0},
          {"jobs", bj::array{bj::object{{"job", "job-a"}, {"amount_usd", 3.0}}}}});
  ev.add(proto::event::kRentalIdleBilled,
         {{"rental", "rent-1"}, {"host_id", "host-1"}, {"from_ms", kT0 + kH}, {"amount_usd", 2.5}});
  ev.add(proto::event::kGpuUnaccountedUse,
         {{"host_id", "host-1"}, {"gpu_uuid", "GPU-1"}, {"seen_ms", kT0 + 10 * 60'000}});
  return ev;
}

bj::object reportOf(const std::string& group) {
  auto r = buildReport(sample().list, {kT0, kT0 + 3 * kH, group});
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return r ? *r : bj::object{};
}

std::vector<int64_t> seqs(const bj::value& row) {
  std::vector<int64_t> out;
  for (const auto& s : row.at("seqs").as_array()) out.push_back(s.as_int64());
  return out;
}

TEST(EvidenceReport, ByJobTakesTheLatestUsageCostSharesAndIdleEvents) {
  const auto r = reportOf("job");
  const auto& rows = r.at("rows").as_array();
  ASSERT_EQ(rows.size(), 2U);
  const auto& a = rows[0].as_object();
  EXPECT_EQ(a.at("job_id").as_string(), "job-a");
  EXPECT_EQ(a.at("energy_wh").as_double(), 670.0);  // not 600 + 670
  EXPECT_EQ(a.at("gpu_hours").as_double(), 2.0);
  EXPECT_EQ(a.at("cost_usd").as_double(), 3.0);
  EXPECT_EQ(seqs(a), (std::vector<int64_t>{6, 8}));  // the final usage, the cost
  const auto& b = rows[1].as_object();
  EXPECT_EQ(b.at("idle_events").as_int64(), 1);
  EXPECT_TRUE(b.at("cost_usd").is_null());  // no cost is known: not 0
  EXPECT_EQ(r.at("totals").at("cost_usd").as_double(), 3.0);
}

TEST(EvidenceReport, ByHostAndGpuFromHourlyEvents) {
  const auto host = reportOf("host");
  const auto& h = host.at("rows").as_array()[0].as_object();
  EXPECT_EQ(h.at("energy_wh").as_double(), 970.0);  // the hour outside the period is left out
  EXPECT_EQ(h.at("gpu_hours").as_double(), 3.0);
  EXPECT_NEAR(h.at("idle_fraction").as_double(), 1.0 / 3, 0.001);  // one idle GPU-hour of three
  EXPECT_EQ(h.at("cost_usd").as_double(), 5.0);
  EXPECT_EQ(h.at("unaccounted_use_events").as_int64(), 1);
  EXPECT_EQ(seqs(h), (std::vector<int64_t>{1, 2, 3, 8, 10}));
  const auto gpu = reportOf("gpu");
  const auto& rows = gpu.at("rows").as_array();
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[1].at("gpu_uuid").as_string(), "GPU-1");
  EXPECT_EQ(rows[1].at("unaccounted_use_events").as_int64(), 1);
  EXPECT_TRUE(rows[1].at("cost_usd").is_null());
}

TEST(EvidenceReport, ByRentalWithItsHostsEnergy) {
  const auto r = reportOf("rental");
  const auto& rows = r.at("rows").as_array();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].at("rental").as_string(), "rent-1");
  EXPECT_EQ(rows[0].at("cost_usd").as_double(), 5.0);
  EXPECT_EQ(rows[0].at("gpu_hours").as_double(), 2.0);
  // The host's hours inside the two billed hours (all three GPU-hours of the period are).
  EXPECT_EQ(rows[0].at("energy_wh").as_double(), 970.0);
  EXPECT_EQ(rows[0].at("idle_billed_usd").as_double(), 2.5);
  auto narrower = sample();
  narrower.list[7].data = bj::serialize(bj::object{{"rental", "rent-1"},
                                                   {"provider", "vast"},
                                                   {"host_id", "host-1"},
                                                   {"from_ms", kT0 + kH},
                                                   {"to_ms", kT0 + 2 * kH},
                                                   {"amount_usd", 2.5}});
  auto r2 = buildReport(narrower.list, {kT0, kT0 + 3 * kH, "rental"});
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->at("rows").as_array()[0].at("energy_wh").as_double(), 70.0);
}

TEST(EvidenceReport, BadQueriesAreRefused) {
  EXPECT_FALSE(buildReport({}, {kT0, kT0 + kH, "team"}).has_value());
  EXPECT_FALSE(buildReport({}, {kT0, kT0, "job"}).has_value());
  EXPECT_TRUE(buildReport({}, {kT0, kT0 + kH, "job"})->at("rows").as_array().empty());
}

// Accuracy: per job the end's reconciliation over the ready one, grouped by model and engine.
TEST(EvidenceAccuracy, ByModelAndEngine) {
  Events ev;
  auto rec = [&](const char* job, const char* stage, const char* model, double err) {
    ev.add(proto::event::kJobReconciled, {{"job_id", job},
                                          {"stage", stage},
                                          {"model", model},
                                          {"engine", "vllm"},
                                          {"relative_error", err}});
  };
  rec("job-1", "ready", "Llama-3.1-8B", 0.30);
  rec("job-1", "end", "Llama-3.1-8B", -0.10);
  rec("job-2", "ready", "Llama-3.1-8B", 0.20);
  rec("job-3", "end", "Qwen3-30B-A3B", 0.05);
  const auto a = buildAccuracy(ev.list);
  const auto& groups = a.at("groups").as_array();
  ASSERT_EQ(groups.size(), 2U);
  const auto& l = groups[0].as_object();
  EXPECT_EQ(l.at("jobs").as_int64(), 2);
  EXPECT_NEAR(l.at("mean_relative_error").as_double(), 0.05, 1e-9);      // (-0.10 + 0.20) / 2
  EXPECT_NEAR(l.at("mean_abs_relative_error").as_double(), 0.15, 1e-9);  // (0.10 + 0.20) / 2
  EXPECT_NEAR(l.at("max_abs_relative_error").as_double(), 0.20, 1e-9);
  EXPECT_EQ(l.at("seqs").as_array().size(), 2U);
  EXPECT_EQ(groups[1].at("model").as_string(), "Qwen3-30B-A3B");
}

}  // namespace
}  // namespace hwl::evidence
