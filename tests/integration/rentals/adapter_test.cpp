// Each adapter against its fake provider (tests/fakes/<provider>_fake.py, which follows the
// provider's documented endpoints): offers normalised to exact figures, a launch carrying our
// label and keys, status from provisioning to running with the SSH address, list, terminate, and
// the failure modes — 429 bursts (Retry-After honoured), a key refused, a launch refused, a spot
// launch outbid at once, provisioning that never finishes, a terminate acknowledged but still
// listed, an instance we never launched, and RunPod's GraphQL errors that come with HTTP 200.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <ostream>
#include <thread>

#include "fake_provider.hpp"
#include "rentals/lambda.hpp"
#include "rentals/provider.hpp"
#include "rentals/provider_http.hpp"
#include "rentals/runpod.hpp"
#include "rentals/vast.hpp"

namespace hwl::rentals {
namespace {

using itest::FakeProvider;
using namespace std::chrono_literals;

constexpr int64_t kGiB = 1LL << 30;
const char* kKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEj4n1a0lR9q2sYkS1m0lZ3hQx4oQ9l0Jc0VJv4m7Q8a "
    "test@hwledger";

struct Case {
  std::string provider;
  std::string prefix;     // the API's path under the fake's address
  std::string offer;      // a fixed offer of the fake
  std::string gpu_model;  // its figures as normalised
  int gpu_count;
  int64_t gpu_memory_bytes;
  double price;
  std::optional<double> spot;  // its spot price, when the provider has spot
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.provider; }

std::unique_ptr<Provider> make(const Case& c, FakeProvider& fake,
                               const std::string& key = "test-key", int attempts = 4) {
  Endpoint ep;
  ep.base_url = fake.baseUrl(c.prefix);
  ep.api_key = key;
  ep.max_attempts = attempts;
  ep.backoff_initial = 50ms;
  ep.timeout = 10s;
  if (c.provider == "vast") return makeVastProvider(ep, "");
  if (c.provider == "runpod") return makeRunpodProvider(ep, "");
  return makeLambdaProvider(ep, "", 0);
}

class Adapter : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(GetParam().provider);
    ASSERT_TRUE(fake_->ok());
    fake_->configure({{"ssh_host", "127.0.0.9"}, {"ssh_port", 2222}, {"provision_delay_s", 0.3}});
    p_ = make(GetParam(), *fake_);
  }
  Offer offer() {
    auto all = p_->offers({});
    EXPECT_TRUE(all) << all.error().message;
    for (const auto& o : *all)
      if (o.id == GetParam().offer) return o;
    ADD_FAILURE() << "no offer " << GetParam().offer;
    return {};
  }
  LaunchRequest request(bool spot = false) {
    LaunchRequest r;
    r.label = "hwledger-rental-0123456789abcdef";
    r.ssh_public_keys = {kKey};
    r.spot = spot;
    return r;
  }
  Instance waitFor(const std::string& id, InstanceState want, std::chrono::milliseconds t = 5s) {
    auto end = std::chrono::steady_clock::now() + t;
    Instance last;
    while (std::chrono::steady_clock::now() < end) {
      auto s = p_->status(id);
      if (s) {
        last = *s;
        if (s->state == want) break;
      }
      std::this_thread::sleep_for(100ms);
    }
    return last;
  }
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Provider> p_;
};

TEST_P(Adapter, OffersAreNormalisedWithTheirExactFigures) {
  const Case& c = GetParam();
  Offer o = offer();
  EXPECT_EQ(o.provider, c.provider);
  EXPECT_EQ(o.id, c.provider + ":" + o.offer_id);
  EXPECT_EQ(o.gpu_model, c.gpu_model);
  EXPECT_EQ(o.gpu_count, c.gpu_count);
  EXPECT_EQ(o.gpu_memory_bytes, c.gpu_memory_bytes);
  EXPECT_DOUBLE_EQ(o.price_hour_usd, c.price);
  EXPECT_EQ(o.spot_price_hour_usd.has_value(), c.spot.has_value());
  if (c.spot && o.spot_price_hour_usd) {
    EXPECT_DOUBLE_EQ(*o.spot_price_hour_usd, *c.spot);
  }
  // Ids are unique; the filter is applied.
  auto all = p_->offers({}).value();
  std::set<std::string> ids;
  for (const auto& x : all) EXPECT_TRUE(ids.insert(x.id).second) << x.id;
  OfferFilter f;
  f.max_price_hour_usd = c.price;
  f.min_gpu_memory_bytes = c.gpu_memory_bytes;
  auto filtered = p_->offers(f).value();
  EXPECT_FALSE(filtered.empty());
  for (const auto& x : filtered) {
    EXPECT_LE(x.price_hour_usd, c.price);
    EXPECT_GE(x.gpu_memory_bytes, c.gpu_memory_bytes);
  }
}

TEST_P(Adapter, ALaunchCarriesTheLabelAndKeyAndIsFollowedToRunningThenTerminated) {
  auto l = p_->launch(offer(), request());
  ASSERT_TRUE(l) << l.error().message;
  auto st = fake_->state();
  ASSERT_EQ(st.at("launches").as_int64(), 1);
  const auto& inst = st.at("instances").as_array()[0].as_object();
  EXPECT_EQ(inst.at("label").as_string(), "hwledger-rental-0123456789abcdef");
  EXPECT_NE(boost::json::serialize(inst.at("ssh_keys")).find("test@hwledger"), std::string::npos)
      << boost::json::serialize(inst);
  auto first = p_->status(l->instance_id);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->state, InstanceState::kProvisioning);
  auto run = waitFor(l->instance_id, InstanceState::kRunning);
  ASSERT_EQ(run.state, InstanceState::kRunning) << run.provider_status;
  EXPECT_EQ(run.ssh_host, "127.0.0.9");
  if (GetParam().provider != "lambda") {
    EXPECT_EQ(run.ssh_port, 2222);  // Lambda does not say: its port is configured
  }
  EXPECT_FALSE(run.ssh_user.empty());
  EXPECT_EQ(run.label, "hwledger-rental-0123456789abcdef");
  auto all = p_->list();
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 1U);
  EXPECT_EQ((*all)[0].label, "hwledger-rental-0123456789abcdef");
  ASSERT_TRUE(p_->terminate(l->instance_id));
  auto gone = p_->status(l->instance_id);
  EXPECT_TRUE(!gone ? gone.error().code == Code::kNotFound
                    : gone->state == InstanceState::kTerminated)
      << (gone ? std::string(stateName(gone->state)) : gone.error().message);
  EXPECT_TRUE(p_->list()->empty());
  // Terminating what the provider no longer knows is success.
  EXPECT_TRUE(p_->terminate(l->instance_id));
}

TEST_P(Adapter, ATerminateAcknowledgedButStillListedIsSeenStillRunning) {
  auto l = p_->launch(offer(), request());
  ASSERT_TRUE(l) << l.error().message;
  ASSERT_EQ(waitFor(l->instance_id, InstanceState::kRunning).state, InstanceState::kRunning);
  fake_->configure({{"terminate_sticky", -1}});
  ASSERT_TRUE(p_->terminate(l->instance_id));
  auto st = p_->status(l->instance_id);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->state, InstanceState::kRunning);
  EXPECT_EQ(p_->list()->size(), 1U);
}

TEST_P(Adapter, AnInstanceWeNeverLaunchedIsListedWithItsLabel) {
  fake_->inject({{"label", "hwledger-rental-00000000deadbeef"}});
  auto all = p_->list();
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 1U);
  EXPECT_EQ((*all)[0].label, "hwledger-rental-00000000deadbeef");
  EXPECT_EQ((*all)[0].state, InstanceState::kRunning);
}

TEST_P(Adapter, A429BurstIsRetriedAfterRetryAfterAndALongerOneEndsRateLimited) {
  fake_->configure({{"rate_limit_burst", 2}, {"retry_after", 1}});
  auto t0 = std::chrono::steady_clock::now();
  auto all = p_->offers({});
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_FALSE(all->empty());
  EXPECT_GE(took, 1900ms);  // two waits of Retry-After: 1
  fake_->configure({{"rate_limit_burst", 10}, {"retry_after", 0}});
  auto limited = p_->list();
  ASSERT_FALSE(limited);
  EXPECT_EQ(limited.error().reason, kReasonRateLimited) << limited.error().message;
}

TEST_P(Adapter, ARefusedKeyIsAnAuthErrorThatNeverNamesTheKey) {
  auto bad = make(GetParam(), *fake_, "not-the-key-8c1f", 2);
  auto r = bad->offers({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, kReasonAuth) << r.error().message;
  EXPECT_EQ(r.error().message.find("not-the-key-8c1f"), std::string::npos);
  auto l = bad->list();
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().message.find("not-the-key-8c1f"), std::string::npos);
}

TEST_P(Adapter, ARefusedLaunchCarriesTheProvidersMessage) {
  fake_->configure({{"launch_error", "no capacity left in this region"}});
  auto l = p_->launch(offer(), request());
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message.find("no capacity left in this region"), std::string::npos)
      << l.error().message;
  EXPECT_EQ(fake_->state().at("launches").as_int64(), 0);
}

TEST_P(Adapter, ProvisioningThatNeverFinishesStaysProvisioning) {
  fake_->configure({{"provision_never", true}});
  auto l = p_->launch(offer(), request());
  ASSERT_TRUE(l) << l.error().message;
  std::this_thread::sleep_for(600ms);
  auto st = p_->status(l->instance_id);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->state, InstanceState::kProvisioning);
  EXPECT_TRUE(st->ssh_host.empty());
}

TEST_P(Adapter, ASpotLaunchOutbidAtOnceIsStoppedNeverRunning) {
  if (!GetParam().spot) {
    // No spot market: a spot launch is refused before anything is sent.
    auto l = p_->launch(offer(), request(true));
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().code, Code::kInvalidArgument);
    EXPECT_EQ(fake_->state().at("launches").as_int64(), 0);
    return;
  }
  fake_->configure({{"outbid_spot", true}});
  auto l = p_->launch(offer(), request(true));
  ASSERT_TRUE(l) << l.error().message;
  std::this_thread::sleep_for(600ms);
  auto st = p_->status(l->instance_id);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->state, InstanceState::kStopped) << st->provider_status;
  EXPECT_FALSE(st->message.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Providers, Adapter,
    ::testing::Values(
        // Vast.ai ask 5002: 1 x H100 SXM, gpu_ram 81559 MiB, dph_total 2.10, min_bid 1.40.
        Case{"vast", "/api/v0", "vast:5002", "H100 SXM", 1, 81559LL << 20, 2.10, 1.40},
        // RunPod: H100 SXM (80 GB) on the secure cloud, 2 GPUs at 2.99 each, bid 1.75 each.
        Case{"runpod", "/graphql", "runpod:NVIDIA H100 80GB HBM3/SECURE/2", "H100 SXM", 2,
             80 * kGiB, 5.98, 3.5},
        // Lambda: gpu_1x_h100_pcie in us-west-1, 249 cents/h, "H100 (80 GB PCIe)".
        Case{"lambda", "/api/v1", "lambda:gpu_1x_h100_pcie:us-west-1", "H100", 1, 80 * kGiB, 2.49,
             std::nullopt}),
    [](const auto& info) { return info.param.provider; });

TEST(RunpodGraphql, AnErrorWithHttp200IsAnErrorNotAnEmptyAnswer) {
  FakeProvider fake("runpod");
  ASSERT_TRUE(fake.ok());
  Case c{"runpod", "/graphql", "", "", 0, 0, 0, std::nullopt};
  auto p = make(c, fake);
  fake.configure({{"graphql_error", "Something went wrong. Please try again later"}});
  auto r = p->list();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kBadGateway);
  EXPECT_NE(r.error().message.find("Something went wrong"), std::string::npos);
  // The next call is answered normally.
  EXPECT_TRUE(p->list());
  // A pod the provider does not know.
  auto st = p->status("pod999999");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::kNotFound);
}

}  // namespace
}  // namespace hwl::rentals
