// The real hwledger-server renting from the loopback fake providers: launch, follow to running,
// terminate with the provider's confirmation, the cost recorded; budget caps, refused requests,
// orphans, provisioning that never ends, a terminate the provider keeps listing, an outbid spot
// launch, a refused key, and a SIGKILL between the launch and its record.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <thread>

#include "fake_provider.hpp"
#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

namespace bj = boost::json;
using std::chrono::milliseconds;

std::filesystem::path makeTemp() {
  auto d = std::filesystem::temp_directory_path() /
           ("hwl-rent-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(d);
  return d;
}

bool waitFor(const std::function<bool()>& cond, milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return cond();
}

int64_t countType(const std::vector<bj::object>& events, const std::string& type) {
  int64_t n = 0;
  for (const auto& e : events)
    if (e.at("type").as_string() == type) ++n;
  return n;
}

const bj::object* firstOfType(const std::vector<bj::object>& events, const std::string& type) {
  for (const auto& e : events)
    if (e.at("type").as_string() == type) return &e;
  return nullptr;
}

class Rentals : public ::testing::Test {
 protected:
  void SetUp() override { tmp_ = makeTemp(); }
  void TearDown() override {
    if (srv_) srv_->crash();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(tmp_, ec);
  }

  // Starts the fake and a server renting from it.
  void start(const std::string& provider, const bj::object& extra = {},
             const std::string& key = "test-key", const std::vector<std::string>& fake_args = {}) {
    if (!fake_) fake_ = std::make_unique<FakeProvider>(provider, fake_args, tmp_);
    ASSERT_TRUE(fake_->ok());
    provider_ = provider;
    std::string prefix = provider == "vast"     ? "/api/v0"
                         : provider == "runpod" ? "/graphql"
                                                : "/api/v1";
    bj::object p{{"base_url", fake_->baseUrl(prefix)},
                 {"api_key", key},
                 {"max_attempts", 4},
                 {"backoff_initial_ms", 50}};
    if (provider != "lambda") p["image"] = "ghcr.io/hwledger/test:1";
    bj::object providers{{provider, p},
                         {"poll_interval_ms", 100},
                         {"reconcile_interval_s", 1},
                         {"offers_ttl_s", 1},
                         {"enroll", false}};
    for (const auto& [k, v] : extra) providers[k] = v;
    std::ofstream(tmp_ / "config.json") << bj::serialize(bj::object{{"providers", providers}});
    if (!srv_) {
      srv_ = std::make_unique<LedgerServer>(tmp_, "srv");
      srv_->init();
    }
    srv_->start({"--config", (tmp_ / "config.json").string()});
  }

  std::string firstOffer(const std::string& query = "") {
    std::string id;
    waitFor(
        [&] {
          auto r = srv_->get("/v1/offers" + query);
          if (r.status != 200) return false;
          auto offers = r.obj().at("offers").as_array();
          if (offers.empty()) return false;
          id = std::string(offers[0].as_object().at("id").as_string());
          return true;
        },
        milliseconds(10'000));
    return id;
  }

  Http launch(const std::string& offer, bool spot = false) {
    bj::object body{{"offer", offer}, {"name", "trial"}, {"spot", spot}};
    Http r;
    // Launches wait for the first reconcile (503 meanwhile).
    waitFor(
        [&] {
          r = srv_->post("/v1/rentals", bj::serialize(body));
          return r.status != 503;
        },
        milliseconds(10'000));
    return r;
  }

  std::string stateOf(const std::string& id) {
    auto r = srv_->get("/v1/rentals/" + id);
    if (r.status != 200) return "http " + std::to_string(r.status);
    return std::string(r.obj().at("state").as_string());
  }

  bool waitState(const std::string& id, const std::string& state,
                 milliseconds t = milliseconds(15'000)) {
    return waitFor([&] { return stateOf(id) == state; }, t);
  }

  // GET /v1/rentals; a failed answer fails the test with its body.
  bj::array rentalList() {
    auto r = srv_->get("/v1/rentals");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.obj().at("rentals").as_array() : bj::array{};
  }

  std::vector<bj::object> rentalEvents(const std::string& id) {
    return srv_->allEvents("&stream=rental/" + id);
  }

  std::filesystem::path tmp_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<LedgerServer> srv_;
  std::string provider_;
};

TEST_F(Rentals, LaunchIsFollowedToRunningThenTerminatedWithTheProvidersConfirmationAndItsCost) {
  start("lambda");
  std::string offer = firstOffer();
  ASSERT_FALSE(offer.empty()) << srv_->get("/v1/offers").body;
  auto r = launch(offer);
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(r.obj().at("id").as_string());
  double price = r.obj().at("price_hour_usd").as_double();
  EXPECT_GT(price, 0);
  ASSERT_TRUE(waitState(id, "running")) << stateOf(id);
  auto rental = srv_->get("/v1/rentals/" + id).obj();
  EXPECT_EQ(rental.at("address").as_object().at("host").as_string(), "127.0.0.1");

  // The provider holds exactly one instance, labelled with the rental.
  auto st = fake_->state();
  ASSERT_EQ(st.at("launches").as_int64(), 1);
  EXPECT_EQ(st.at("instances").as_array()[0].as_object().at("label").as_string(), "hwledger-" + id);

  auto events = rentalEvents(id);
  const auto* launched = firstOfType(events, "rental.launched");
  ASSERT_NE(launched, nullptr);
  auto data = launched->at("data").as_object();
  EXPECT_EQ(data.at("price_hour_usd").as_double(), price);
  EXPECT_FALSE(data.at("price_source").as_string().empty());
  EXPECT_EQ(countType(events, "rental.running"), 1);

  std::this_thread::sleep_for(milliseconds(1500));
  auto del = srv_->request("DELETE", "/v1/rentals/" + id, srv_->adminToken());
  ASSERT_EQ(del.status, 202) << del.body;
  ASSERT_TRUE(waitState(id, "terminated")) << stateOf(id);
  events = rentalEvents(id);
  EXPECT_EQ(countType(events, "rental.terminate_requested"), 1);
  EXPECT_EQ(countType(events, "rental.terminated"), 1);
  // Pro rata at the end: price x (end - launch).
  ASSERT_TRUE(waitFor([&] { return countType(rentalEvents(id), "cost.accrued") == 1; },
                      milliseconds(5000)));
  events = rentalEvents(id);
  auto cost = firstOfType(events, "cost.accrued")->at("data").as_object();
  int64_t span = cost.at("to_ms").as_int64() - cost.at("from_ms").as_int64();
  EXPECT_GT(span, 1000);
  EXPECT_NEAR(cost.at("amount_usd").as_double(), price * static_cast<double>(span) / 3.6e6, 1e-5);
  auto costs = srv_->get("/v1/costs?group_by=rental").obj();
  ASSERT_EQ(costs.at("groups").as_array().size(), 1U);
  EXPECT_NEAR(costs.at("total_usd").as_double(), cost.at("amount_usd").as_double(), 1e-6);
  // A second terminate is refused: it has ended.
  EXPECT_EQ(srv_->request("DELETE", "/v1/rentals/" + id, srv_->adminToken()).status, 409);
}

TEST_F(Rentals, BudgetCapRefusesTheLaunchWithTheNumbersAndAppendsNothing) {
  start("lambda", {{"max_hourly_usd", 0.01}});
  std::string offer = firstOffer();
  ASSERT_FALSE(offer.empty());
  // Wait for readiness with a request that fails the cap anyway.
  auto r = launch(offer);
  int64_t before = srv_->eventCount();
  r = launch(offer);
  ASSERT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("max_hourly_usd"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("limit_usd"), std::string::npos) << r.body;
  EXPECT_EQ(srv_->eventCount(), before);
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 0);
  // GET /v1/rentals says where spending stands against the caps (the dashboard shows it).
  auto list = srv_->get("/v1/rentals");
  ASSERT_EQ(list.status, 200) << list.body;
  const auto doc = list.obj();
  const auto& budget = doc.at("budget").as_object();
  EXPECT_EQ(budget.at("max_hourly_usd").as_double(), 0.01);
  EXPECT_TRUE(budget.at("max_total_usd").is_null());
  EXPECT_EQ(budget.at("hourly_usd").to_number<double>(), 0.0);
  EXPECT_EQ(budget.at("total_usd").to_number<double>(), 0.0);
}

TEST_F(Rentals, BadRequestsAndViewersAreRefusedAndNothingIsAppended) {
  start("lambda");
  std::string offer = firstOffer();
  ASSERT_FALSE(offer.empty());
  auto viewer = srv_->createToken("viewer");
  int64_t before = srv_->eventCount();
  auto v = srv_->request("POST", "/v1/rentals", viewer.token,
                         bj::serialize(bj::object{{"offer", offer}}));
  EXPECT_EQ(v.status, 403) << v.body;
  for (const std::string& body :
       {std::string(R"({"offer":")") + offer + R"(","extra":1})",
        std::string(R"({"offer":"nowhere:x"})"), std::string(R"({"offer":"lambda:../../x"})"),
        std::string(R"({"offer":")") + offer + R"(","ssh_key":"ssh-ed25519 AAAA\nroot"})",
        std::string(R"({"offer":")") + offer +
            R"(","ssh_key":"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA=="})",
        std::string(R"({"offer":")") + offer + R"(","name":"a b;rm -rf /"})",
        std::string(R"({"offer":")") + offer + R"(","bid_hour_usd":1})", std::string("[1]"),
        std::string("{not json")}) {
    auto r = srv_->post("/v1/rentals", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  EXPECT_EQ(srv_->request("DELETE", "/v1/rentals/rental-0000000000000000", viewer.token).status,
            403);
  EXPECT_EQ(srv_->request("DELETE", "/v1/rentals/..%2f..%2fx", srv_->adminToken()).status / 100, 4);
  // The refusals of the viewer are recorded (auth.denied); nothing of a rental is.
  for (const auto& e : srv_->allEvents()) {
    if (e.at("seq").as_int64() <= before) continue;
    EXPECT_EQ(e.at("type").as_string(), "auth.denied") << bj::serialize(e);
  }
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 0);
}

TEST_F(Rentals, AnInstanceWithOurLabelTheLedgerNeverLaunchedIsReportedAndTerminated) {
  start("lambda", {{"terminate_orphans", true}});
  auto injected = fake_->inject({{"label", "hwledger-rental-00000000deadbeef"}, {"price", 1.5}});
  ASSERT_FALSE(injected.empty());
  // The account's own machines (no label of ours) are left alone.
  fake_->inject({{"label", "my-own-box"}});
  std::string orphan;
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& r : rentalList())
          if (r.as_object().at("label").as_string() == "hwledger-rental-00000000deadbeef")
            orphan = std::string(r.as_object().at("id").as_string());
        return !orphan.empty();
      },
      milliseconds(10'000)));
  auto events = rentalEvents(orphan);
  ASSERT_GE(countType(events, "rental.orphan_found"), 1);
  ASSERT_TRUE(waitState(orphan, "terminated")) << stateOf(orphan);
  int own_running = 0;
  auto st = fake_->state();
  for (const auto& i : st.at("instances").as_array())
    if (i.as_object().at("label").as_string() == "my-own-box" &&
        i.as_object().at("state").as_string() == "running")
      ++own_running;
  EXPECT_EQ(own_running, 1);
  EXPECT_EQ(rentalList().size(), 1U);
}

TEST_F(Rentals, ProvisioningThatNeverFinishesIsTerminatedAndRecordedFailed) {
  start("lambda", {{"provision_timeout_s", 2}});
  fake_->configure({{"provision_never", true}});
  std::string offer = firstOffer();
  auto r = launch(offer);
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(r.obj().at("id").as_string());
  ASSERT_TRUE(waitState(id, "terminated")) << stateOf(id);
  auto events = rentalEvents(id);
  const auto* failed = firstOfType(events, "rental.failed");
  ASSERT_NE(failed, nullptr);
  EXPECT_NE(bj::serialize(failed->at("data")).find("after 2 s"), std::string::npos);
  EXPECT_EQ(countType(events, "rental.running"), 0);
  EXPECT_EQ(countType(events, "rental.terminated"), 1);
}

TEST_F(Rentals, ATerminateTheProviderKeepsListingBecomesAnOrphanUntilItIsGone) {
  start("lambda", {{"terminate_confirm_timeout_s", 2}});
  std::string offer = firstOffer();
  auto r = launch(offer);
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(r.obj().at("id").as_string());
  ASSERT_TRUE(waitState(id, "running"));
  fake_->configure({{"terminate_sticky", -1}});
  ASSERT_EQ(srv_->request("DELETE", "/v1/rentals/" + id, srv_->adminToken()).status, 202);
  ASSERT_TRUE(waitState(id, "orphan")) << stateOf(id);
  auto events = rentalEvents(id);
  EXPECT_EQ(countType(events, "rental.terminated"), 0);
  EXPECT_GE(countType(events, "rental.orphan_found"), 1);
  // Terminates are retried; once the provider lets go it is recorded terminated.
  int64_t terminates = fake_->state().at("terminates").as_int64();
  EXPECT_GE(terminates, 1);
  fake_->configure({{"terminate_sticky", 0}});
  ASSERT_TRUE(waitState(id, "terminated", milliseconds(30'000))) << stateOf(id);
}

TEST_F(Rentals, ARefusedKeyIsReportedPerProviderWithoutTheKeyAndNoLaunchIsAccepted) {
  start("lambda", {}, "wrong-key-1234567");
  auto r = srv_->get("/v1/offers");
  ASSERT_EQ(r.status, 200) << r.body;
  auto errors = r.obj().at("errors").as_object();
  ASSERT_TRUE(errors.contains("lambda")) << r.body;
  EXPECT_EQ(r.body.find("wrong-key-1234567"), std::string::npos);
  int64_t before = srv_->eventCount();
  auto l = srv_->post("/v1/rentals", R"({"offer":"lambda:gpu_1x_h100_pcie:us-west-1"})");
  EXPECT_EQ(l.status / 100, 5) << l.body;
  EXPECT_EQ(l.body.find("wrong-key-1234567"), std::string::npos);
  EXPECT_EQ(srv_->eventCount(), before);
  EXPECT_EQ(srv_->serverErr().find("wrong-key-1234567"), std::string::npos);
  EXPECT_EQ(srv_->serverOut().find("wrong-key-1234567"), std::string::npos);
}

TEST_F(Rentals, ASigkillBetweenTheLaunchAndItsRecordNeverLaunchesTwiceNorForgetsTheInstance) {
  start("lambda");
  std::string offer = firstOffer();
  // Readiness first, with a launch that is then terminated.
  {
    auto r = launch(offer);
    ASSERT_EQ(r.status, 201) << r.body;
    std::string first(r.obj().at("id").as_string());
    ASSERT_EQ(srv_->request("DELETE", "/v1/rentals/" + first, srv_->adminToken()).status, 202);
    ASSERT_TRUE(waitState(first, "terminated"));
  }
  // The provider makes the instance at once but answers 3 s later: the server is killed before
  // it learns the instance id.
  fake_->configure({{"launch_answer_delay_s", 3}});
  std::thread client([&] {
    (void)srv_->post("/v1/rentals", bj::serialize(bj::object{{"offer", offer}, {"name", "crash"}}));
  });
  ASSERT_TRUE(
      waitFor([&] { return fake_->state().at("launches").as_int64() == 2; }, milliseconds(10'000)));
  srv_->crash();
  client.join();
  fake_->configure({{"launch_answer_delay_s", 0}});
  srv_->start({"--config", (tmp_ / "config.json").string()});
  std::string id;
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& r : rentalList())
          if (r.as_object().at("name").as_string() == "crash" &&
              r.as_object().at("state").as_string() == "running")
            id = std::string(r.as_object().at("id").as_string());
        return !id.empty();
      },
      milliseconds(20'000)))
      << srv_->get("/v1/rentals").body;
  auto events = rentalEvents(id);
  const auto* launched = firstOfType(events, "rental.launched");
  ASSERT_NE(launched, nullptr);
  EXPECT_TRUE(launched->at("data").as_object().at("adopted").as_bool());
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 2);  // never launched again
  ASSERT_EQ(srv_->request("DELETE", "/v1/rentals/" + id, srv_->adminToken()).status, 202);
  ASSERT_TRUE(waitState(id, "terminated"));
}

TEST_F(Rentals, ASpotLaunchOutbidAtOnceIsRecordedFailedWithTheProvidersMessageAndTerminated) {
  start("vast");
  fake_->configure({{"outbid_spot", true}});
  std::string offer = firstOffer("?provider=vast&gpu=H100");
  ASSERT_FALSE(offer.empty());
  auto r = launch(offer, true);
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(r.obj().at("id").as_string());
  EXPECT_TRUE(r.obj().at("spot").as_bool());
  ASSERT_TRUE(waitState(id, "terminated")) << stateOf(id);
  auto events = rentalEvents(id);
  const auto* failed = firstOfType(events, "rental.failed");
  ASSERT_NE(failed, nullptr);
  EXPECT_NE(bj::serialize(failed->at("data")).find("outbid"), std::string::npos)
      << bj::serialize(failed->at("data"));
  EXPECT_EQ(countType(events, "rental.running"), 0);
  EXPECT_EQ(countType(events, "rental.terminated"), 1);
  // The price recorded is the bid the provider put on the instance.
  const auto* launched = firstOfType(events, "rental.launched");
  ASSERT_NE(launched, nullptr);
  EXPECT_EQ(launched->at("data").as_object().at("price_source").as_string(), "provider");
}

TEST_F(Rentals,
       PlacementsRankOffersBesideHostsAndRentTakesTheCheapestFitSayingWhyCheaperOnesDoNot) {
  start("lambda");
  ASSERT_FALSE(firstOffer().empty());
  const std::string model =
      (std::filesystem::path(HWL_FIXTURES_DIR) / "models/Llama-3.1-8B.config.json").string();
  // Llama 3.1 8B at 131072 tokens needs more than the A10's 24 GB and fits an H100's 80 GB.
  std::ifstream in(model);
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto p =
      srv_->post("/v1/placements", "{\"model\":" + config + ",\"context\":131072,\"max_price\":5}");
  ASSERT_EQ(p.status, 200) << p.body;
  auto placed = p.obj();
  ASSERT_FALSE(placed.at("offers").as_array().empty()) << p.body;
  const auto& best = placed.at("offers").as_array()[0].as_object();
  EXPECT_EQ(best.at("id").as_string(), "lambda:gpu_1x_h100_pcie:us-east-1");
  EXPECT_EQ(best.at("tp").as_int64(), 1);
  bool a10_explained = false;
  for (const auto& r : placed.at("offers_rejected").as_array())
    if (r.as_object().at("id").as_string() == "lambda:gpu_1x_a10:us-west-1") {
      a10_explained = true;
      EXPECT_NE(std::string(r.as_object().at("reason").as_string()).find("the offer has 24.00 GiB"),
                std::string::npos);
    }
  EXPECT_TRUE(a10_explained) << p.body;
  // The 8 x A100 at 14.32 USD/h fits but costs more than the maximum: not among the offers.
  for (const auto& o : placed.at("offers").as_array())
    EXPECT_LE(o.as_object().at("price_hour_usd").to_number<double>(), 5.0);

  auto env = srv_->cliEnv(srv_->adminToken());
  auto dry = cli({"rent", "--model", model, "--context", "131072", "--dry-run"}, env);
  ASSERT_EQ(dry.code(), 0) << dry.out << dry.err;
  EXPECT_NE(dry.out.find("lambda:gpu_1x_a10:us-west-1 ($0.7500/h): needs"), std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find("cheapest fit: lambda:gpu_1x_h100_pcie:us-east-1 at $2.4900/h"),
            std::string::npos)
      << dry.out;
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 0);
  // Nothing fits under 1 USD/h.
  auto none = cli({"rent", "--model", model, "--context", "131072", "--max-price", "1"}, env);
  EXPECT_EQ(none.code(), 1) << none.out << none.err;
  EXPECT_NE(none.err.find("no offer fits"), std::string::npos);
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 0);
  // Rented for real: one launch, labelled, followed.
  auto rented =
      cli({"rent", "--model", model, "--context", "131072", "--name", "llama", "-o", "json"}, env);
  ASSERT_EQ(rented.code(), 0) << rented.out << rented.err;
  auto j = bj::parse(rented.out).as_object();
  std::string id(j.at("rental").as_object().at("id").as_string());
  EXPECT_EQ(j.at("offer").as_string(), "lambda:gpu_1x_h100_pcie:us-east-1");
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 1);
  ASSERT_TRUE(waitState(id, "running"));
  auto listed = cli({"rentals"}, env);
  EXPECT_NE(listed.out.find(id), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("running"), std::string::npos) << listed.out;
  auto offers = cli({"offers", "--gpu", "h100"}, env);
  ASSERT_EQ(offers.code(), 0) << offers.err;
  EXPECT_NE(offers.out.find("lambda:gpu_1x_h100_pcie:us-west-1"), std::string::npos) << offers.out;
  EXPECT_EQ(offers.out.find("a10"), std::string::npos) << offers.out;
  auto term = cli({"rentals", "terminate", id}, env);
  ASSERT_EQ(term.code(), 0) << term.err;
  ASSERT_TRUE(waitState(id, "terminated"));
  auto costs = cli({"costs", "--group-by", "provider"}, env);
  ASSERT_EQ(costs.code(), 0) << costs.err;
  EXPECT_NE(costs.out.find("lambda"), std::string::npos) << costs.out;
  EXPECT_NE(costs.out.find("total: $"), std::string::npos) << costs.out;
  // A rental id is checked before it goes into a URL.
  EXPECT_NE(cli({"rentals", "terminate", "../tokens"}, env).code(), 0);
}

TEST_F(Rentals, ASigkillAfterTheLaunchBeforeRunningIsFollowedToRunningAfterTheRestart) {
  start("runpod");
  fake_->configure({{"provision_delay_s", 4}});
  std::string offer = firstOffer("?provider=runpod&gpu=4090");
  ASSERT_FALSE(offer.empty());
  auto r = launch(offer);
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(r.obj().at("id").as_string());
  EXPECT_EQ(r.obj().at("state").as_string(), "provisioning");
  srv_->crash();
  srv_->start({"--config", (tmp_ / "config.json").string()});
  ASSERT_TRUE(waitState(id, "running", milliseconds(20'000))) << stateOf(id);
  auto events = rentalEvents(id);
  EXPECT_EQ(countType(events, "rental.launched"), 1);
  EXPECT_EQ(countType(events, "rental.running"), 1);
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 1);
}

TEST_F(Rentals, AStopDoesNotWaitOutAProvidersRetryAfter) {
  start("lambda", {{"reconcile_interval_s", 1}});
  ASSERT_FALSE(firstOffer().empty());
  // Every call now answers 429 with Retry-After: 20: the reconciler waits between attempts.
  fake_->configure({{"rate_limit_burst", 100000}, {"retry_after", 20}});
  std::this_thread::sleep_for(milliseconds(2500));
  auto t0 = std::chrono::steady_clock::now();
  auto st = srv_->stop();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(st.success()) << st.describe();
  EXPECT_LT(took, milliseconds(10'000));
  srv_.reset();
}

TEST(RentalOffers, ThreeProvidersAreListedTogetherAndOneFailingEmptiesNothingElse) {
  auto tmp = makeTemp();
  FakeProvider vast("vast", {}, tmp), runpod("runpod", {}, tmp), lambda("lambda", {}, tmp);
  ASSERT_TRUE(vast.ok() && runpod.ok() && lambda.ok());
  auto p = [](const std::string& url, const std::string& key) {
    return bj::object{{"base_url", url},
                      {"api_key", key},
                      {"max_attempts", 2},
                      {"backoff_initial_ms", 20},
                      {"image", "img:1"}};
  };
  bj::object providers{{"vast", p(vast.baseUrl("/api/v0"), "test-key")},
                       {"runpod", p(runpod.baseUrl("/graphql"), "test-key")},
                       {"lambda", p(lambda.baseUrl("/api/v1"), "a-wrong-key-77")},
                       {"offers_ttl_s", 0}};
  std::ofstream(tmp / "config.json") << bj::serialize(bj::object{{"providers", providers}});
  LedgerServer srv(tmp, "srv");
  srv.init();
  srv.start({"--config", (tmp / "config.json").string()});
  auto r = srv.get("/v1/offers");
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> seen;
  double last = 0;
  auto all = r.obj();
  for (const auto& o : all.at("offers").as_array()) {
    seen.insert(std::string(o.as_object().at("provider").as_string()));
    double price = o.as_object().at("price_hour_usd").to_number<double>();
    EXPECT_GE(price, last);  // cheapest first
    last = price;
  }
  EXPECT_TRUE(seen.contains("vast"));
  EXPECT_TRUE(seen.contains("runpod"));
  EXPECT_FALSE(seen.contains("lambda"));
  auto errors = all.at("errors").as_object();
  ASSERT_TRUE(errors.contains("lambda")) << r.body;
  EXPECT_NE(std::string(errors.at("lambda").as_string()).find("refused the key"),
            std::string::npos);
  EXPECT_EQ(r.body.find("a-wrong-key-77"), std::string::npos);
  // Filters: per provider, GPU memory, price; bad values are refused.
  auto only = srv.get("/v1/offers?provider=runpod&min_gpu_memory=80&max_price=3");
  ASSERT_EQ(only.status, 200) << only.body;
  auto some = only.obj();
  for (const auto& o : some.at("offers").as_array()) {
    EXPECT_EQ(o.as_object().at("provider").as_string(), "runpod");
    EXPECT_GE(o.as_object().at("gpu_memory_bytes").as_int64(), 80LL << 30);
    EXPECT_LE(o.as_object().at("price_hour_usd").to_number<double>(), 3.0);
  }
  EXPECT_FALSE(some.at("offers").as_array().empty());
  for (const char* q :
       {"?provider=aws", "?max_price=-1", "?max_price=abc", "?min_gpu_memory=1e400", "?nonsense=1"})
    EXPECT_EQ(srv.get(std::string("/v1/offers") + q).status, 400) << q;
  srv.stop();
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
}

}  // namespace
}  // namespace hwl::itest
