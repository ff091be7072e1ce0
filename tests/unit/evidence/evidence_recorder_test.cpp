// job.usage on a real SQLite ledger and time series: the figures of a job's GPUs between its
// start and end from samples with the real H100 capture's values (busy and idle), the energy
// source (power integrated, or the GPU's counter across a counter reset), hourly figures for a
// long job, and nothing appended twice across a restart.
#include "evidence/evidence_recorder.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hwl/clock.hpp"
#include "hwl/crypto.hpp"
#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/proto/events.hpp"
#include "hwl/test_fixtures.hpp"
#include "storage/fleet_projection.hpp"
#include "storage/hosts_projection.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/telemetry_store.hpp"

namespace hwl::evidence {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;

constexpr int64_t kT0 = 1'800'000'000'000;  // a whole minute (and hour)
constexpr int64_t kMin = 60'000;

// One GPU reading of a real capture: nvidia-smi --query-gpu on an H100 (busy under gpu-burn, or
// idle), as the agent's probe parses it.
probes::GpuSample capture(const std::string& file) {
  std::ifstream in(hwl::test_fixtures::find("telemetry", file));
  std::stringstream ss;
  ss << in.rdbuf();
  auto gpus = probes::parseQueryGpuCsv(ss.str());
  EXPECT_TRUE(gpus.has_value() && gpus->size() == 1U);
  return gpus->front();
}

// The real compute-apps capture: nvidia-smi --query-compute-apps on the H100 (memhog twice,
// gpu_burn).
Result<std::vector<probes::ComputeApp>> computeApps() {
  std::ifstream in(hwl::test_fixtures::find("telemetry", "nvidia-h100-compute-apps.csv"));
  std::stringstream ss;
  ss << in.rdbuf();
  return probes::parseComputeAppsCsv(ss.str());
}

ledger::GpuPoint point(const std::string& uuid, const probes::GpuSample& s,
                       std::optional<int64_t> energy_mj = std::nullopt) {
  ledger::GpuPoint p;
  p.uuid = uuid;
  p.util_pct = s.utilization_gpu_pct;
  p.mem_used_bytes =
      s.memory_used_bytes ? std::optional<int64_t>(*s.memory_used_bytes) : std::nullopt;
  p.power_w = s.power_w;
  p.temp_c = s.temperature_c;
  p.energy_mj = energy_mj;
  return p;
}

class EvidenceRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hwl-usage-" + crypto::newId("", 6));
    fs::create_directories(dir_);
    auto k = crypto::generateEd25519();
    key_ = std::shared_ptr<EVP_PKEY>(k.release(), crypto::PkeyFree{});
    open();
  }
  void TearDown() override {
    store_.reset();
    ledger_.reset();
    fs::remove_all(dir_);
  }
  void open() {
    storage::LedgerOptions o;
    o.db_path = dir_ / "ledger.db";
    o.create = true;
    o.checkpoint_log = dir_ / "checkpoints.log";
    o.signing_key = key_;
    o.clock = &clock_;
    o.projections.push_back(std::make_unique<storage::HostsProjection>());
    o.projections.push_back(std::make_unique<storage::FleetProjection>());
    auto l = storage::SqliteLedger::open(std::move(o));
    ASSERT_TRUE(l.has_value()) << l.error().message;
    ledger_ = std::move(*l);
    store_ = std::make_unique<storage::TelemetryStore>(*ledger_);
  }
  void restart() {
    store_.reset();
    ledger_.reset();
    open();
  }

  void append(const std::string& stream, const std::string& type, bj::object d) {
    ledger::AppendRequest req;
    req.actor = "system";
    req.parts.push_back({stream, ledger::kAnyVersion, {{"", type, bj::value(std::move(d))}}});
    auto r = ledger_->append(std::move(req));
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }
  // A job placed on host-1's GPUs, started at `start`, ended at `end` when given.
  void job(const std::string& id, const std::vector<std::string>& gpus, int64_t start,
           std::optional<int64_t> end, std::optional<int64_t> ready = std::nullopt) {
    bj::array g;
    for (const auto& u : gpus) g.emplace_back(u);
    append("job/" + id, proto::event::kJobSubmitted, {{"job_id", id}, {"name", id}});
    append("job/" + id, proto::event::kJobPlaced,
           {{"job_id", id}, {"host_id", "host-1"}, {"gpus", g}});
    append("job/" + id, proto::event::kJobStarted,
           {{"job_id", id}, {"state", "running"}, {"started_ms", start}});
    if (ready) {
      append("job/" + id, proto::event::kJobReady,
             {{"job_id", id}, {"state", "ready"}, {"ready_ms", *ready}});
    }
    if (end) {
      append("job/" + id, proto::event::kJobExited,
             {{"job_id", id}, {"state", "exited"}, {"ended_ms", *end}, {"exit_code", 0}});
    }
  }
  std::vector<bj::object> events(const std::string& stream, const char* type) {
    auto ev = ledger_->read({0, 100, stream, type});
    EXPECT_TRUE(ev.has_value());
    std::vector<bj::object> out;
    for (const auto& e : *ev) out.push_back(bj::parse(e.data).as_object());
    return out;
  }
  Result<int> tick(EvidenceRecorder::LiveGpus live = {}) {
    EvidenceRecorder r(*ledger_, *store_,
                       {.interval = std::chrono::hours(1), .unaccounted_after_ms = 0}, clock_,
                       std::move(live));
    if (auto s = r.load(); !s) return s.error();
    return r.tick();
  }

  fs::path dir_;
  std::shared_ptr<EVP_PKEY> key_;
  ManualClock clock_{kT0};
  std::unique_ptr<storage::SqliteLedger> ledger_;
  std::unique_ptr<storage::TelemetryStore> store_;
};

double near(const bj::object& o, const char* k) { return o.at(k).to_number<double>(); }

TEST_F(EvidenceRecorderTest, AJobThatWorksAndOneThatIdles) {
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  const probes::GpuSample idle = capture("nvidia-h100-query-gpu-idle.csv");
  ASSERT_EQ(busy.power_w, 631.95);
  ASSERT_EQ(idle.power_w, 69.85);
  // Ten minutes at one sample every 10 s: GPU-0 busy, GPU-1 idle. Another GPU of the host is
  // busy too but is not the job's.
  for (int i = 0; i < 60; ++i) {
    store_->record("host-1", kT0 + i * 10'000,
                   {point("GPU-0", busy), point("GPU-1", idle), point("GPU-2", busy)});
  }
  ASSERT_TRUE(store_->flush().has_value());
  job("job-a", {"GPU-0", "GPU-1"}, kT0, kT0 + 10 * kMin);

  // Not before the window has settled.
  clock_.setMs(kT0 + 10 * kMin + 30'000);
  ASSERT_EQ(*tick(), 0);
  clock_.setMs(kT0 + 10 * kMin + 90'000);
  ASSERT_EQ(*tick(), 1);
  const auto u = events("job/job-a", proto::event::kJobUsage);
  ASSERT_EQ(u.size(), 1U);
  const bj::object& d = u[0];
  EXPECT_TRUE(d.at("final").as_bool());
  EXPECT_EQ(d.at("from_ms").as_int64(), kT0);
  EXPECT_EQ(d.at("to_ms").as_int64(), kT0 + 10 * kMin);
  // No energy counter in the capture: power integrated over the 59 gaps of 10 s.
  EXPECT_EQ(d.at("energy_source").as_string(), "power");
  const double busy_wh = 59 * 10 * 631.95 / 3600, idle_wh = 59 * 10 * 69.85 / 3600;
  EXPECT_NEAR(near(d, "energy_wh"), busy_wh + idle_wh, 0.002);
  EXPECT_NEAR(near(d, "gpu_hours"), 2 * 10.0 / 60, 0.001);
  EXPECT_NEAR(near(d, "util_mean_pct"), 50.0, 0.001);  // 100% and 0%, 60 samples each
  EXPECT_NEAR(near(d, "util_max_pct"), 100.0, 0.001);
  EXPECT_EQ(d.at("mem_used_max_bytes").as_int64(), 19818LL << 20);
  EXPECT_EQ(d.at("memory_source").as_string(), "gpu");
  const auto& per = d.at("gpus").as_array();
  ASSERT_EQ(per.size(), 2U);
  EXPECT_NEAR(near(per[0].as_object(), "energy_wh"), busy_wh, 0.001);
  EXPECT_NEAR(near(per[1].as_object(), "energy_wh"), idle_wh, 0.001);
  EXPECT_NEAR(near(per[1].as_object(), "util_max_pct"), 0.0, 0.001);
  // The job's state is not touched by its evidence.
  auto row = ledger_->withReader([](ledger::ReadView& v) { return v.findJob("job-a"); });
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((**row).state, "exited");
}

// A GPU with an energy counter: energy is the counter's difference, except across a reset (the
// driver reloaded), where the power of that gap is integrated instead.
TEST_F(EvidenceRecorderTest, EnergyFromTheCounterAcrossAReset) {
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  const int64_t per_gap_mj = 10 * 631'950;  // 631.95 W for 10 s, in mJ
  int64_t counter = 5'000'000'000;
  for (int i = 0; i < 30; ++i) {
    if (i == 15) counter = 1'000;  // reset
    store_->record("host-1", kT0 + i * 10'000, {point("GPU-0", busy, counter)});
    counter += per_gap_mj;
  }
  ASSERT_TRUE(store_->flush().has_value());
  job("job-c", {"GPU-0"}, kT0, kT0 + 5 * kMin);
  clock_.setMs(kT0 + 7 * kMin);
  ASSERT_EQ(*tick(), 1);
  const auto u = events("job/job-c", proto::event::kJobUsage);
  ASSERT_EQ(u.size(), 1U);
  EXPECT_EQ(u[0].at("energy_source").as_string(), "counter");
  // 28 gaps from the counter, the reset gap from power: 29 x 10 s x 631.95 W either way.
  EXPECT_NEAR(near(u[0], "energy_wh"), 29 * 10 * 631.95 / 3600, 0.001);
}

// A job still running after two hours and ten minutes has two hourly figures (cumulative from
// its start); a restarted server appends none of them again, nor the final one later.
TEST_F(EvidenceRecorderTest, HourlyWhileRunningAndNothingTwiceAcrossARestart) {
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  for (int64_t t = kT0; t < kT0 + 130 * kMin; t += kMin) {
    store_->record("host-1", t, {point("GPU-0", busy)});
  }
  ASSERT_TRUE(store_->flush().has_value());
  job("job-l", {"GPU-0"}, kT0, std::nullopt);
  clock_.setMs(kT0 + 130 * kMin);
  ASSERT_EQ(*tick(), 2);
  auto u = events("job/job-l", proto::event::kJobUsage);
  ASSERT_EQ(u.size(), 2U);
  EXPECT_FALSE(u[0].at("final").as_bool());
  EXPECT_EQ(u[0].at("to_ms").as_int64(), kT0 + 60 * kMin);
  EXPECT_EQ(u[1].at("to_ms").as_int64(), kT0 + 120 * kMin);
  EXPECT_NEAR(near(u[1], "gpu_hours"), 2.0, 0.001);
  // 119 gaps of a minute at 631.95 W in the first two hours.
  EXPECT_NEAR(near(u[1], "energy_wh"), 119 * 631.95 / 60, 0.01);

  restart();
  ASSERT_EQ(*tick(), 0);
  EXPECT_EQ(events("job/job-l", proto::event::kJobUsage).size(), 2U);
  append("job/job-l", proto::event::kJobExited,
         {{"job_id", "job-l"}, {"state", "exited"}, {"ended_ms", kT0 + 130 * kMin}});
  clock_.setMs(kT0 + 135 * kMin);
  ASSERT_EQ(*tick(), 1);
  restart();
  ASSERT_EQ(*tick(), 0);
  u = events("job/job-l", proto::event::kJobUsage);
  ASSERT_EQ(u.size(), 3U);
  EXPECT_TRUE(u[2].at("final").as_bool());
}

// A job that becomes ready, works ten minutes, then sits at the GPU's idle power (the idle
// capture's 69.85 W, 0%) for twenty: job.idle once it has idled fifteen closed minutes, from the
// first idle minute, with the GPU's own baseline; a working job gets none; a restart none again.
TEST_F(EvidenceRecorderTest, AJobThatIdlesAfterReady) {
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  const probes::GpuSample idle = capture("nvidia-h100-query-gpu-idle.csv");
  for (int64_t t = kT0; t < kT0 + 30 * kMin; t += 10'000) {
    const bool working = t < kT0 + 10 * kMin;
    store_->record("host-1", t, {point("GPU-0", working ? busy : idle), point("GPU-1", busy)});
  }
  ASSERT_TRUE(store_->flush().has_value());
  job("job-i", {"GPU-0"}, kT0, std::nullopt, kT0 + 30'000);
  job("job-w", {"GPU-1"}, kT0, std::nullopt, kT0 + 30'000);
  // At 10 + 14 minutes, fourteen idle minutes are closed: not yet.
  clock_.setMs(kT0 + 24 * kMin + 5'000);
  ASSERT_EQ(*tick(), 0);
  clock_.setMs(kT0 + 25 * kMin + 5'000);
  ASSERT_EQ(*tick(), 1);
  const auto ev = events("job/job-i", proto::event::kJobIdle);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].at("since_ms").as_int64(), kT0 + 10 * kMin);
  EXPECT_EQ(ev[0].at("idle_minutes").as_int64(), 15);
  const auto& g = ev[0].at("gpus").as_array()[0].as_object();
  EXPECT_NEAR(g.at("baseline_w").to_number<double>(), 69.85, 0.01);
  EXPECT_NEAR(g.at("threshold_w").to_number<double>(), 79.85, 0.01);  // + max(10 W, 10%)
  EXPECT_NEAR(g.at("power_mean_w").to_number<double>(), 69.85, 0.01);
  EXPECT_TRUE(events("job/job-w", proto::event::kJobIdle).empty());
  // The job is still ready: evidence does not change its state.
  auto row = ledger_->withReader([](ledger::ReadView& v) { return v.findJob("job-i"); });
  EXPECT_EQ((**row).state, "ready");
  // Later ticks and a restart find the same idle run: nothing new.
  clock_.setMs(kT0 + 29 * kMin + 5'000);
  ASSERT_EQ(*tick(), 0);
  restart();
  ASSERT_EQ(*tick(), 0);
}

// Two GPUs that went idle at different times: the job is idle from the later start, and each
// GPU's figures cover that same run (GPU-0 drew 69.85 W before it and 75 W in it).
TEST_F(EvidenceRecorderTest, AJobsIdleRunIsTheSameForAllItsGpus) {
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  const probes::GpuSample idle = capture("nvidia-h100-query-gpu-idle.csv");
  probes::GpuSample idle75 = idle;
  idle75.power_w = 75.0;  // above the 69.85 W baseline, below its 79.85 W threshold
  for (int64_t t = kT0; t < kT0 + 35 * kMin; t += 10'000) {
    const probes::GpuSample& g0 =
        t < kT0 + 10 * kMin ? busy : (t < kT0 + 15 * kMin ? idle : idle75);
    const probes::GpuSample& g1 = t < kT0 + 15 * kMin ? busy : idle;
    store_->record("host-1", t, {point("GPU-0", g0), point("GPU-1", g1)});
  }
  ASSERT_TRUE(store_->flush().has_value());
  job("job-2", {"GPU-0", "GPU-1"}, kT0, std::nullopt, kT0 + 30'000);
  clock_.setMs(kT0 + 31 * kMin + 5'000);
  ASSERT_EQ(*tick(), 1);
  const auto ev = events("job/job-2", proto::event::kJobIdle);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].at("since_ms").as_int64(), kT0 + 15 * kMin);
  const auto& gpus = ev[0].at("gpus").as_array();
  ASSERT_EQ(gpus.size(), 2U);
  EXPECT_NEAR(gpus[0].at("power_mean_w").to_number<double>(), 75.0, 0.01);
  EXPECT_EQ(gpus[0].at("minutes_with_samples").as_int64(), 16);
  EXPECT_NEAR(gpus[1].at("power_mean_w").to_number<double>(), 69.85, 0.01);
}

// The idle rule on its own: the baseline is the GPU's lowest idle-utilisation minute, and a
// missing minute (the host was away) ends an idle run.
TEST(IdleRule, BaselineAndRuns) {
  EvidenceSettings s;
  auto minute = [](int64_t i, double util, double power) {
    return ledger::GpuMinute{kT0 + i * kMin, 6, util, power, std::nullopt};
  };
  const std::vector<ledger::GpuMinute> m = {minute(0, 100, 600), minute(1, 0, 72), minute(2, 0, 70),
                                            minute(4, 0, 71), minute(5, 0, 79)};
  EXPECT_EQ(idleBaseline(m, 1.0), 70.0);
  EXPECT_EQ(idleSince(m, 70.0, s), kT0 + 4 * kMin);  // minute 3 is missing
  EXPECT_EQ(idleSince({minute(0, 0, 70), minute(1, 0, 81)}, 70.0, s), std::nullopt);
  EXPECT_EQ(idleSince({minute(0, 0, 70), minute(1, 3, 70)}, 70.0, s), std::nullopt);
  EXPECT_EQ(idleBaseline({minute(0, 50, 300)}, 1.0), std::nullopt);
}

// Processes on a GPU no job holds, as the real compute-apps capture lists them (memhog twice and
// gpu_burn on the H100): one gpu.unaccounted_use with their pids, names and memory; not again
// for the same processes; none for a GPU a running job holds.
TEST_F(EvidenceRecorderTest, ProcessesOnAGpuNoJobHolds) {
  auto apps = computeApps();
  ASSERT_TRUE(apps.has_value());
  ASSERT_EQ(apps->size(), 3U);
  auto live = [&](const std::string& uuid) {
    return [&apps, uuid] {
      LiveGpu g{"host-1", uuid, kT0 + 5'000, {}, false, 100.0};
      for (const auto& a : *apps) {
        g.processes.push_back({a.process.pid, a.process.name,
                               a.process.memory_bytes
                                   ? std::optional<int64_t>(*a.process.memory_bytes)
                                   : std::nullopt,
                               ""});
      }
      return std::vector<LiveGpu>{g};
    };
  };
  job("job-h", {"GPU-held"}, kT0, std::nullopt, kT0 + 1'000);
  EXPECT_EQ(*tick(live("GPU-held")), 0);
  ASSERT_EQ(*tick(live("GPU-free")), 1);
  const auto ev = events("host/host-1", proto::event::kGpuUnaccountedUse);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].at("gpu_uuid").as_string(), "GPU-free");
  const auto& procs = ev[0].at("processes").as_array();
  ASSERT_EQ(procs.size(), 3U);
  EXPECT_EQ(procs[0].at("pid").as_int64(), 11327);
  EXPECT_EQ(procs[0].at("name").as_string(), "/root/tools/memhog");
  EXPECT_EQ(procs[2].at("pid").as_int64(), 11345);
  EXPECT_EQ(procs[2].at("name").as_string(), "./gpu_burn");
  EXPECT_EQ(ev[0].at("processes_memory_bytes").as_int64(), (2566LL + 1542 + 15690) << 20);
  EXPECT_EQ(*tick(live("GPU-free")), 0);
  restart();
  EXPECT_EQ(*tick(live("GPU-free")), 0);

  // With unaccounted_after_ms, the same processes must be seen that long: a process that comes
  // and goes sooner leaves nothing.
  EvidenceRecorder r(*ledger_, *store_, {.unaccounted_after_ms = 60'000}, clock_,
                     live("GPU-later"));
  ASSERT_TRUE(r.load().has_value());
  EXPECT_EQ(*r.tick(), 0);
  clock_.advanceMs(30'000);
  EXPECT_EQ(*r.tick(), 0);
  clock_.advanceMs(30'000);
  EXPECT_EQ(*r.tick(), 1);
  const auto later = events("host/host-1", proto::event::kGpuUnaccountedUse);
  ASSERT_EQ(later.size(), 2U);
  EXPECT_EQ(later[1].at("first_seen_ms").as_int64(), clock_.nowMs() - 60'000);
}

// A rental billed two hours (cost.accrued) on host-1, whose one GPU sat at its idle power in
// the first and worked in the second: rental.idle_billed for the first hour with its cost, once;
// an hour with no samples proves nothing and gets none.
TEST_F(EvidenceRecorderTest, ARentalHourBilledWhileIdle) {
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  const probes::GpuSample idle = capture("nvidia-h100-query-gpu-idle.csv");
  append("host/host-1", proto::event::kHostInventoryChanged,
         {{"host_id", "host-1"},
          {"gpus", bj::array{bj::object{{"uuid", "GPU-0"}, {"index", 0}, {"name", "H100"}}}}});
  constexpr int64_t kHour = 60 * kMin;
  for (int64_t t = kT0; t < kT0 + 2 * kHour; t += kMin) {
    store_->record("host-1", t, {point("GPU-0", t < kT0 + kHour ? idle : busy)});
  }
  ASSERT_TRUE(store_->flush().has_value());
  for (int h = 0; h < 3; ++h) {  // the third hour has no samples
    append("rental/rent-1", proto::event::kCostAccrued,
           {{"rental", "rent-1"},
            {"provider", "vast"},
            {"host_id", "host-1"},
            {"from_ms", kT0 + h * kHour},
            {"to_ms", kT0 + (h + 1) * kHour},
            {"amount_usd", 2.5}});
  }
  clock_.setMs(kT0 + 3 * kHour + 2 * kMin);
  ASSERT_EQ(*tick(), 1);
  const auto ev = events("rental/rent-1", proto::event::kRentalIdleBilled);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].at("from_ms").as_int64(), kT0);
  EXPECT_EQ(ev[0].at("amount_usd").as_double(), 2.5);
  const auto& g = ev[0].at("gpus").as_array()[0].as_object();
  EXPECT_NEAR(g.at("baseline_w").to_number<double>(), 69.85, 0.01);
  EXPECT_EQ(g.at("minutes_with_samples").as_int64(), 60);
  restart();
  ASSERT_EQ(*tick(), 0);
}

// A job placed with the planner's prediction (job.placed "predicted"), ready, its GPU at the
// busy capture's 19818 MiB: job.reconciled at ready and again at the end, with the relative
// error of the prediction against the observed per-GPU memory.
TEST_F(EvidenceRecorderTest, PlannedVersusObservedMemory) {
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  for (int64_t t = kT0; t < kT0 + 10 * kMin; t += 10'000) {
    store_->record("host-1", t, {point("GPU-0", busy)});
  }
  ASSERT_TRUE(store_->flush().has_value());
  const int64_t predicted = 20'000LL << 20;  // 20000 MiB predicted, 19818 MiB observed
  append("job/job-p", proto::event::kJobSubmitted,
         {{"job_id", "job-p"},
          {"name", "vllm"},
          {"spec", bj::object{{"command", bj::array{"/usr/bin/vllm", "serve"}}}}});
  append("job/job-p", proto::event::kJobPlaced,
         {{"job_id", "job-p"},
          {"host_id", "host-1"},
          {"gpus", bj::array{"GPU-0"}},
          {"predicted", bj::object{{"model", "Llama-3.1-8B"},
                                   {"architecture", "llama"},
                                   {"per_gpu_bytes", predicted}}}});
  append("job/job-p", proto::event::kJobStarted,
         {{"job_id", "job-p"}, {"state", "running"}, {"started_ms", kT0}});
  append("job/job-p", proto::event::kJobReady,
         {{"job_id", "job-p"}, {"state", "ready"}, {"ready_ms", kT0 + kMin}});
  clock_.setMs(kT0 + 5 * kMin);
  ASSERT_EQ(*tick(), 1);
  append("job/job-p", proto::event::kJobExited,
         {{"job_id", "job-p"}, {"state", "exited"}, {"ended_ms", kT0 + 10 * kMin}});
  clock_.setMs(kT0 + 12 * kMin);
  ASSERT_GE(*tick(), 1);  // the end's reconciliation (and the final usage)
  const auto ev = events("job/job-p", proto::event::kJobReconciled);
  ASSERT_EQ(ev.size(), 2U);
  EXPECT_EQ(ev[0].at("stage").as_string(), "ready");
  EXPECT_EQ(ev[1].at("stage").as_string(), "end");
  for (const auto& e : ev) {
    EXPECT_EQ(e.at("predicted_per_gpu_bytes").as_int64(), predicted);
    EXPECT_EQ(e.at("observed_per_gpu_bytes").as_int64(), 19818LL << 20);
    EXPECT_NEAR(e.at("relative_error").as_double(), (19818.0 - 20000.0) / 20000.0, 0.0001);
    EXPECT_EQ(e.at("engine").as_string(), "vllm");
    EXPECT_EQ(e.at("model").as_string(), "Llama-3.1-8B");
  }
  restart();
  ASSERT_EQ(*tick(), 0);
}

// The real compute-apps capture on the H100 (memhog twice, gpu_burn), the memhogs being
// job-m's processes as its agent matched them: job.usage and job.reconciled take the job's own
// memory (2566 + 1542 MiB), not the whole GPU's (19818 MiB in the busy capture), and say so; a
// job whose agent reported no processes of its keeps the whole GPU's figure.
TEST_F(EvidenceRecorderTest, AJobsOwnMemoryFromItsProcesses) {
  auto apps = computeApps();
  ASSERT_TRUE(apps.has_value());
  ASSERT_EQ(apps->size(), 3U);
  int64_t own = 0;
  for (const auto& a : *apps)
    if (a.process.name == "/root/tools/memhog")
      own += static_cast<int64_t>(*a.process.memory_bytes);
  ASSERT_EQ(own, (2566LL + 1542) << 20);
  const probes::GpuSample busy = capture("nvidia-h100-query-gpu.csv");
  for (int i = 0; i < 60; ++i) {
    ledger::GpuPoint p0 = point("GPU-0", busy);
    // The first minute, the job's processes had not allocated all of it yet.
    p0.job_memory = {{"job-m", i < 6 ? own / 2 : own}};
    store_->record("host-1", kT0 + i * 10'000, {p0, point("GPU-1", busy)});
  }
  ASSERT_TRUE(store_->flush().has_value());
  append("job/job-m", proto::event::kJobSubmitted, {{"job_id", "job-m"}, {"name", "m"}});
  append("job/job-m", proto::event::kJobPlaced,
         {{"job_id", "job-m"},
          {"host_id", "host-1"},
          {"gpus", bj::array{"GPU-0"}},
          {"predicted", bj::object{{"model", "m"}, {"per_gpu_bytes", 4'000LL << 20}}}});
  append("job/job-m", proto::event::kJobStarted,
         {{"job_id", "job-m"}, {"state", "running"}, {"started_ms", kT0}});
  append("job/job-m", proto::event::kJobReady,
         {{"job_id", "job-m"}, {"state", "ready"}, {"ready_ms", kT0 + kMin}});
  append("job/job-m", proto::event::kJobExited,
         {{"job_id", "job-m"}, {"state", "exited"}, {"ended_ms", kT0 + 10 * kMin}});
  job("job-w", {"GPU-1"}, kT0, kT0 + 10 * kMin);
  clock_.setMs(kT0 + 12 * kMin);
  ASSERT_GE(*tick(), 3);
  const auto u = events("job/job-m", proto::event::kJobUsage);
  ASSERT_EQ(u.size(), 1U);
  EXPECT_EQ(u[0].at("memory_source").as_string(), "process");
  EXPECT_EQ(u[0].at("mem_used_max_bytes").as_int64(), own);
  const auto& g = u[0].at("gpus").as_array()[0].as_object();
  EXPECT_EQ(g.at("memory_source").as_string(), "process");
  EXPECT_EQ(g.at("gpu_mem_used_max_bytes").as_int64(), 19818LL << 20);
  const auto rec = events("job/job-m", proto::event::kJobReconciled);
  ASSERT_EQ(rec.size(), 2U);
  for (const auto& e : rec) {
    EXPECT_EQ(e.at("memory_source").as_string(), "process");
    EXPECT_EQ(e.at("observed_per_gpu_bytes").as_int64(), own);
  }
  const auto w = events("job/job-w", proto::event::kJobUsage);
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0].at("memory_source").as_string(), "gpu");
  EXPECT_EQ(w[0].at("mem_used_max_bytes").as_int64(), 19818LL << 20);
}

// Where the agent matched a GPU's processes to its jobs, a process on a GPU a job holds that is
// not that job's (gpu_burn beside job-h's memhogs, or another job's process) is unaccounted use;
// the job's own are not; a GPU whose processes were not matched is left alone.
TEST_F(EvidenceRecorderTest, ProcessesNotOfTheJobHoldingTheGpu) {
  auto apps = computeApps();
  ASSERT_TRUE(apps.has_value());
  auto live = [&](bool matched, const std::string& burn_job) {
    return [&apps, matched, burn_job] {
      LiveGpu g{"host-1", "GPU-held", kT0 + 5'000, {}, matched, 100.0};
      for (const auto& a : *apps) {
        const bool memhog = a.process.name == "/root/tools/memhog";
        g.processes.push_back({a.process.pid, a.process.name,
                               static_cast<int64_t>(*a.process.memory_bytes),
                               memhog ? "job-h" : burn_job});
      }
      return std::vector<LiveGpu>{g};
    };
  };
  job("job-h", {"GPU-held"}, kT0, std::nullopt, kT0 + 1'000);
  EXPECT_EQ(*tick(live(false, "")), 0);  // not matched: nothing to say
  const auto* none = "";
  ASSERT_EQ(*tick(live(true, none)), 1);
  auto ev = events("host/host-1", proto::event::kGpuUnaccountedUse);
  ASSERT_EQ(ev.size(), 1U);
  const auto& procs = ev[0].at("processes").as_array();
  ASSERT_EQ(procs.size(), 1U);
  EXPECT_EQ(procs[0].at("name").as_string(), "./gpu_burn");
  EXPECT_EQ(procs[0].at("pid").as_int64(), 11345);
  EXPECT_EQ(ev[0].at("processes_memory_bytes").as_int64(), 15690LL << 20);
  EXPECT_EQ(ev[0].at("held_by").as_array(), (bj::array{"job-h"}));
  // A process of another job on job-h's GPU is named with its job.
  ASSERT_EQ(*tick(live(true, "job-other")), 1);
  ev = events("host/host-1", proto::event::kGpuUnaccountedUse);
  ASSERT_EQ(ev.size(), 2U);
  EXPECT_EQ(ev[1].at("processes").as_array()[0].at("job").as_string(), "job-other");
  // All of them job-h's: nothing.
  ASSERT_EQ(*tick(live(true, "job-h")), 0);
}

}  // namespace
}  // namespace hwl::evidence
