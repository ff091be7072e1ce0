// The offer catalogue: one refresh for concurrent callers, a provider that fails keeps its last
// offers (and is named), one that does not answer in time does not hold the others up, and
// offers without a usable id or price are left out.
#include "rentals/offer_catalog.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace hwl::rentals {
namespace {

using namespace std::chrono_literals;

class ScriptedProvider final : public Provider {
 public:
  ScriptedProvider(std::string_view name, std::chrono::milliseconds delay)
      : name_(name), delay_(delay) {}
  [[nodiscard]] std::string_view name() const override { return name_; }
  Result<std::vector<Offer>> offers(const OfferFilter&) override {
    ++calls;
    std::this_thread::sleep_for(delay_);
    if (fail) return badGateway("provider_error", std::string(name_) + ": HTTP 503");
    Offer o;
    o.provider = std::string(name_);
    o.offer_id = "x1";
    o.id = o.provider + ":" + o.offer_id;
    o.gpu_count = 1;
    o.price_hour_usd = price;
    Offer bad = o;
    bad.offer_id = "../bad";
    bad.id = o.provider + ":" + bad.offer_id;
    return std::vector<Offer>{o, bad};
  }
  Result<Launched> launch(const Offer&, const LaunchRequest&) override { return internal("no"); }
  Result<Instance> status(const std::string&) override { return internal("no"); }
  Status terminate(const std::string&) override { return internal("no"); }
  Result<std::vector<Instance>> list() override { return internal("no"); }

  std::atomic<int> calls{0};
  std::atomic<bool> fail{false};
  double price = 1.0;

 private:
  std::string_view name_;
  std::chrono::milliseconds delay_;
};

TEST(OfferCatalog, ConcurrentCallersShareOneRefreshAndAFailureKeepsTheLastOffers) {
  auto vast = std::make_shared<ScriptedProvider>(kVast, 200ms);
  auto lambda = std::make_shared<ScriptedProvider>(kLambda, 0ms);
  lambda->price = 0.5;
  OfferCatalog c({vast, lambda}, 0s, 5s);
  std::vector<std::thread> callers;
  callers.reserve(4);
  for (int i = 0; i < 4; ++i) callers.emplace_back([&] { (void)c.get({}); });
  for (auto& t : callers) t.join();
  EXPECT_LE(vast->calls.load(), 2);  // not one call per caller
  auto s = c.get({});
  ASSERT_EQ(s.offers.size(), 2U);
  EXPECT_EQ(s.offers[0].provider, "lambda");  // cheapest first
  // The offer with a bad id was left out, and said so.
  EXPECT_NE(s.errors.at("vast").find("left out"), std::string::npos);
  vast->fail = true;
  s = c.get({});
  ASSERT_EQ(s.offers.size(), 2U);  // vast's last offers are still there
  EXPECT_NE(s.errors.at("vast").find("HTTP 503"), std::string::npos);
  EXPECT_NE(s.errors.at("vast").find("listed before"), std::string::npos);
  EXPECT_EQ(c.get({}, "lambda").offers.size(), 1U);
  EXPECT_TRUE(c.find(s.offers[0].id));
  auto missing = c.find("lambda:nothing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
}

TEST(OfferCatalog, AProviderThatDoesNotAnswerInTimeHoldsNothingUp) {
  auto slow = std::make_shared<ScriptedProvider>(kRunpod, 1500ms);
  auto fast = std::make_shared<ScriptedProvider>(kLambda, 0ms);
  OfferCatalog c({slow, fast}, 0s, 300ms);
  auto t0 = std::chrono::steady_clock::now();
  auto s = c.get({});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1200ms);
  ASSERT_EQ(s.offers.size(), 1U);
  EXPECT_EQ(s.offers[0].provider, "lambda");
  EXPECT_NE(s.errors.at("runpod").find("no answer within"), std::string::npos);
  // Its answer, when it comes, serves a later refresh; it was not asked twice meanwhile.
  std::this_thread::sleep_for(1500ms);
  s = c.get({});
  EXPECT_EQ(s.offers.size(), 2U);
  EXPECT_EQ(slow->calls.load(), 1);
}

}  // namespace
}  // namespace hwl::rentals
