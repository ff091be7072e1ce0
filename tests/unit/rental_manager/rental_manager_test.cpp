#include "rentals/rental_manager.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>

#include "hwl/clock.hpp"
#include "hwl/crypto.hpp"
#include "hwl/proto/events.hpp"
#include "storage/sqlite_ledger.hpp"

namespace hwl::rentals {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kT0 = 1'800'000'000'000;

// An account at a provider, in memory: what the manager's bookkeeping is tested against.
class MemoryProvider final : public Provider {
 public:
  [[nodiscard]] std::string_view name() const override { return kLambda; }
  Result<std::vector<Offer>> offers(const OfferFilter&) override { return std::vector<Offer>{}; }
  Result<Launched> launch(const Offer& offer, const LaunchRequest& req) override {
    ++launches;
    Instance i;
    i.instance_id = "i-" + std::to_string(launches);
    i.label = req.label;
    i.state = InstanceState::kRunning;
    i.ssh_host = "127.0.0.1";
    i.ssh_port = 22;
    i.ssh_user = "ubuntu";
    i.price_hour_usd = offer.price_hour_usd;
    i.gpu_count = offer.gpu_count;
    instances[i.instance_id] = i;
    return Launched{i.instance_id, offer.price_hour_usd};
  }
  Result<Instance> status(const std::string& id) override {
    auto it = instances.find(id);
    if (it == instances.end()) return notFound("no instance " + id);
    return it->second;
  }
  Status terminate(const std::string& id) override {
    ++terminates;
    instances.erase(id);
    return {};
  }
  Result<std::vector<Instance>> list() override {
    std::vector<Instance> out;
    for (const auto& [id, i] : instances) out.push_back(i);
    return out;
  }
  std::map<std::string, Instance> instances;
  int launches = 0;
  int terminates = 0;
};

Offer h100(double price) {
  Offer o;
  o.provider = "lambda";
  o.offer_id = "gpu_2x_h100:us-east-1";
  o.id = "lambda:" + o.offer_id;
  o.gpu_model = "H100";
  o.gpu_count = 2;
  o.gpu_memory_bytes = 80LL << 30;
  o.price_hour_usd = price;
  return o;
}

class Manager : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hwl-rentman-" + crypto::newId("", 6));
    fs::create_directories(dir_);
    openLedger();
    provider_ = std::make_shared<MemoryProvider>();
  }
  void TearDown() override {
    manager_.reset();
    ledger_.reset();
    fs::remove_all(dir_);
  }
  void openLedger() {
    storage::LedgerOptions o;
    o.db_path = dir_ / "ledger.db";
    o.create = true;
    o.clock = &clock_;
    ledger_ = std::move(storage::SqliteLedger::open(std::move(o)).value());
  }
  RentalManager& open(RentalsConfig cfg = {}, double price = 2.0) {
    ManagerDeps d;
    d.ledger = ledger_.get();
    d.clock = &clock_;
    d.providers = {provider_};
    d.config = cfg;
    d.find_offer = [price](std::string_view) -> Result<Offer> { return h100(price); };
    d.enroll = [](const Rental&, const std::string&) -> Result<std::string> {
      return std::string("host-rented");
    };
    d.key_dir = (dir_ / "keys").string();
    d.job_gpu_ms = [this](const std::string& host, int64_t from, int64_t to) {
      std::map<std::string, int64_t> out;
      if (host == "host-rented") {
        // job-a held one of the two GPUs for the first half of every hour it overlaps.
        int64_t a = std::max(from, job_from_), b = std::min(to, job_to_);
        if (b > a) out["job-a"] = (b - a);
      }
      return out;
    };
    manager_.reset();
    manager_ = std::move(RentalManager::open(std::move(d)).value());
    return *manager_;
  }
  std::vector<ledger::Event> events(const std::string& type) {
    ledger::EventQuery q;
    q.limit = 10'000;
    q.type = type;
    return ledger_->read(q).value();
  }
  std::string launchOne(RentalManager& m) {
    LaunchOrder o;
    o.offer = "lambda:gpu_2x_h100:us-east-1";
    auto r = m.launch(o, "tok_op");
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? std::string(r->at("id").as_string()) : "";
  }

  ManualClock clock_{kT0};
  fs::path dir_;
  std::unique_ptr<storage::SqliteLedger> ledger_;
  std::shared_ptr<MemoryProvider> provider_;
  std::unique_ptr<RentalManager> manager_;
  int64_t job_from_ = 0, job_to_ = 0;
};

TEST_F(Manager, LaunchesOnlyAfterReconcilingAndNotPastTheHourlyCap) {
  RentalsConfig cfg;
  cfg.max_hourly_usd = 3.0;
  auto& m = open(cfg);
  LaunchOrder o;
  o.offer = "lambda:gpu_2x_h100:us-east-1";
  auto early = m.launch(o, "tok_op");
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().reason, "reconciling");
  m.tick("lambda", true);
  ASSERT_FALSE(launchOne(m).empty());
  // 2 running + 2 more = 4 > 3: refused with the numbers, nothing recorded, nothing launched.
  int64_t head = ledger_->headSeq();
  auto second = m.launch(o, "tok_op");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Code::kConflict);
  EXPECT_EQ(second.error().reason, "budget_exceeded");
  EXPECT_NE(second.error().details.find("\"value_usd\":4"), std::string::npos)
      << second.error().details;
  EXPECT_EQ(ledger_->headSeq(), head);
  EXPECT_EQ(provider_->launches, 1);
}

TEST_F(Manager, CostIsAccruedEachHourAndProRataAtTheEndWithJobShares) {
  auto& m = open();
  m.tick("lambda", true);
  std::string id = launchOne(m);
  m.tick("lambda", false);  // running (address), then enrolled as host-rented
  m.tick("lambda", false);
  ASSERT_EQ(m.get(id)->at("host_id").as_string(), "host-rented");
  // job-a holds one GPU of two from 0:30 to 1:30 after launch.
  int64_t launched = m.get(id)->at("launched_ms").as_int64();
  job_from_ = launched + kHour / 2;
  job_to_ = launched + 3 * kHour / 2;
  clock_.advanceMs(2 * kHour + kHour / 2);
  m.tick("lambda", false);
  auto rows = events(proto::event::kCostAccrued);
  ASSERT_EQ(rows.size(), 2U);
  // Hour 1: 2.0 USD; job-a had 0.5 h of 1 GPU out of 2 GPU-hours: 2.0 * 0.5 / 2 = 0.5 USD.
  auto h1 = bj::parse(rows[0].data).as_object();
  EXPECT_DOUBLE_EQ(h1.at("amount_usd").as_double(), 2.0);
  EXPECT_EQ(h1.at("to_ms").as_int64() - h1.at("from_ms").as_int64(), kHour);
  ASSERT_EQ(h1.at("jobs").as_array().size(), 1U);
  EXPECT_DOUBLE_EQ(h1.at("jobs").as_array()[0].as_object().at("amount_usd").as_double(), 0.5);
  // Ticking again in the same hour adds nothing.
  m.tick("lambda", false);
  EXPECT_EQ(events(proto::event::kCostAccrued).size(), 2U);

  ASSERT_TRUE(m.terminate(id, "tok_op"));
  m.tick("lambda", false);  // confirmed gone by status and list
  ASSERT_EQ(m.get(id)->at("state").as_string(), "terminated");
  m.tick("lambda", false);
  rows = events(proto::event::kCostAccrued);
  ASSERT_EQ(rows.size(), 3U);
  // The last half hour: 1.0 USD, ending at the confirmation.
  auto last = bj::parse(rows[2].data).as_object();
  EXPECT_DOUBLE_EQ(last.at("amount_usd").as_double(), 1.0);
  auto by_rental = m.costs(0, kT0 + 10 * kHour, "rental").value();
  EXPECT_DOUBLE_EQ(by_rental.at("total_usd").as_double(), 5.0);
  auto by_job = m.costs(0, kT0 + 10 * kHour, "job").value();
  ASSERT_EQ(by_job.at("groups").as_array().size(), 1U);
  // 0.5 in hour 1 and 0.5 in hour 2.
  EXPECT_DOUBLE_EQ(by_job.at("groups").as_array()[0].as_object().at("amount_usd").as_double(), 1.0);
  // A window over the first half hour only: pro rata of hour 1.
  auto half = m.costs(launched, launched + kHour / 2, "provider").value();
  EXPECT_DOUBLE_EQ(half.at("total_usd").as_double(), 1.0);

  // A restart folds the same book from the ledger and appends nothing more.
  auto before = bj::serialize(m.list());
  int64_t head = ledger_->headSeq();
  auto& again = open();
  again.tick("lambda", true);
  EXPECT_EQ(bj::serialize(again.list()), before);
  EXPECT_EQ(ledger_->headSeq(), head);
}

TEST_F(Manager, ReachingTheTotalCapAppendsBudgetExceededOnceAndTerminatesWhenAsked) {
  RentalsConfig cfg;
  cfg.max_total_usd = 3.0;
  cfg.terminate_on_budget = true;
  auto& m = open(cfg);
  m.tick("lambda", true);
  std::string id = launchOne(m);
  clock_.advanceMs(kHour + kHour / 2);  // 3.0 USD so far
  m.tick("lambda", false);
  m.tick("lambda", false);
  auto b = events(proto::event::kBudgetExceeded);
  ASSERT_EQ(b.size(), 1U);
  EXPECT_NE(b[0].data.find("\"cap\":\"max_total_usd\""), std::string::npos);
  EXPECT_NE(b[0].data.find("\"action\":\"terminate\""), std::string::npos);
  EXPECT_EQ(m.get(id)->at("state").as_string(), "terminated");
  EXPECT_EQ(provider_->terminates, 1);
}

TEST_F(Manager, ABilledFigureOffByMoreThanOnePercentIsADiscrepancy) {
  auto& m = open();
  m.tick("lambda", true);
  std::string id = launchOne(m);
  clock_.advanceMs(kHour);
  provider_->instances.begin()->second.billed_usd = 2.0;  // the same as the ledger: nothing
  m.tick("lambda", true);
  EXPECT_TRUE(events(proto::event::kCostDiscrepancy).empty());
  provider_->instances.begin()->second.billed_usd = 2.5;
  m.tick("lambda", true);
  auto d = events(proto::event::kCostDiscrepancy);
  ASSERT_EQ(d.size(), 1U);
  auto data = bj::parse(d[0].data).as_object();
  EXPECT_DOUBLE_EQ(data.at("provider_usd").as_double(), 2.5);
  EXPECT_DOUBLE_EQ(data.at("ledger_usd").as_double(), 2.0);
  // |2.0 - 2.5| / 2.5 = 20 %.
  EXPECT_DOUBLE_EQ(data.at("difference_pct").as_double(), 20.0);
  // The same figure again is not reported twice.
  m.tick("lambda", true);
  EXPECT_EQ(events(proto::event::kCostDiscrepancy).size(), 1U);
}

TEST_F(Manager, AfterACrashARequestedRentalIsAdoptedByItsLabelOrFailedButNeverLaunchedAgain) {
  // Two launches recorded before a crash: the provider made one of them.
  auto req = [&](const std::string& id) {
    bj::object d{{"rental", id},
                 {"provider", "lambda"},
                 {"offer_id", "gpu_2x_h100:us-east-1"},
                 {"label", "hwledger-" + id},
                 {"quoted_price_hour_usd", 2.0},
                 {"gpu_count", 2}};
    ASSERT_TRUE(ledger_->append("rental/" + id, 0, "tok_op",
                                {{"", proto::event::kRentalRequested, bj::value(d)}}));
  };
  req("rental-00000000000000aa");
  req("rental-00000000000000bb");
  Instance i;
  i.instance_id = "i-made";
  i.label = "hwledger-rental-00000000000000aa";
  i.state = InstanceState::kProvisioning;
  i.price_hour_usd = 2.1;
  provider_->instances[i.instance_id] = i;
  auto& m = open();
  m.tick("lambda", true);
  auto a = m.get("rental-00000000000000aa").value();
  EXPECT_EQ(a.at("state").as_string(), "provisioning");
  EXPECT_EQ(a.at("instance_id").as_string(), "i-made");
  EXPECT_DOUBLE_EQ(a.at("price_hour_usd").as_double(), 2.1);
  EXPECT_EQ(a.at("price_source").as_string(), "provider");
  auto b = m.get("rental-00000000000000bb").value();
  EXPECT_EQ(b.at("state").as_string(), "failed");
  EXPECT_EQ(provider_->launches, 0);
}

}  // namespace
}  // namespace hwl::rentals
