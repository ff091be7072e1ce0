// The "providers" section: keys from the config or the environment (a provider without one is an
// error naming the variable), base URLs (https anywhere, http only to loopback), caps, unknown
// keys.
#include "rentals/rentals_config.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>

#include "rentals/rental_manager.hpp"

namespace hwl::rentals {
namespace {

namespace bj = boost::json;

std::function<const char*(const char*)> envOf(std::map<std::string, std::string> m) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(m));
  return [shared](const char* k) -> const char* {
    auto it = shared->find(k);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(RentalsConfig, KeysFromTheFileOrTheEnvironmentAndDefaultsToTheRealApis) {
  auto c = parseRentalsConfig(
      bj::parse(
          R"({"lambda":{},"vast":{"api_key":"vk-1"},"max_hourly_usd":40,"reconcile_interval_s":120})")
          .as_object(),
      envOf({{"HWLEDGER_LAMBDA_API_KEY", "lk-2"}}));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->providers.at("lambda").base_url, "https://cloud.lambda.ai/api/v1");
  EXPECT_EQ(c->providers.at("vast").base_url, "https://console.vast.ai/api/v0");
  EXPECT_EQ(*c->max_hourly_usd, 40.0);
  EXPECT_FALSE(c->max_total_usd);
  EXPECT_EQ(c->reconcile_interval_s, 120);
  auto lep =
      endpointOf("lambda", c->providers.at("lambda"), envOf({{"HWLEDGER_LAMBDA_API_KEY", "lk-2"}}));
  ASSERT_TRUE(lep);
  EXPECT_EQ(lep->api_key, "lk-2");
  // The file's key wins over the environment.
  auto vep =
      endpointOf("vast", c->providers.at("vast"), envOf({{"HWLEDGER_VAST_API_KEY", "other"}}));
  EXPECT_EQ(vep->api_key, "vk-1");
}

TEST(RentalsConfig, RefusesWhatCouldLeakAKeyOrBillUnseen) {
  auto env = envOf({});
  struct Bad {
    const char* json;
    const char* says;
  };
  for (const Bad& b : {
           Bad{R"({"runpod":{}})", "HWLEDGER_RUNPOD_API_KEY"},
           Bad{R"({"vast":{"api_key":"k","base_url":"http://api.example.com/v0"}})", "loopback"},
           Bad{R"({"vast":{"api_key":"k","base_url":"https://user:pw@example.com"}})", "user info"},
           Bad{R"({"vast":{"api_key":"k x"}})", "printable"},
           Bad{R"({"aws":{}})", "aws"},
           Bad{R"({"vast":{"api_key":"k","region":"x"}})", "region"},
           Bad{R"({"max_hourly_usd":-1})", "max_hourly_usd"},
           Bad{R"({"max_total_usd":"lots"})", "max_total_usd"},
           Bad{R"({"reconcile_interval_s":0})", "reconcile_interval_s"},
           Bad{R"({"lambda":{"api_key":"k","ssh_user":"-oProxyCommand=x"}})", "ssh_user"},
       }) {
    auto c = parseRentalsConfig(bj::parse(b.json).as_object(), env);
    ASSERT_FALSE(c) << b.json;
    EXPECT_NE(c.error().message.find(b.says), std::string::npos) << c.error().message;
    EXPECT_EQ(c.error().message.find("\"k x\""), std::string::npos);
  }
}

TEST(LaunchOrder, ChecksEveryFieldAndThePublicKey) {
  auto ok = parseLaunchOrder(
      bj::parse(R"({"offer":"vast:5002","name":"llama-1","spot":true,"bid_hour_usd":1.5,
                   "ssh_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEj4n1a0lR9q2sYkS1m0lZ3hQx4oQ9l0Jc0VJv4m7Q8a me@laptop\n"})")
          .as_object());
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->ssh_key.back(), 'p');  // the trailing newline dropped
  for (
      const char* bad : {
          R"({"offer":"vast:5002","x":1})",
          R"({"offer":"ec2:t3"})",
          R"({"offer":"vast:../5002"})",
          R"({"offer":"vast:5002","name":"a b"})",
          R"({"offer":"vast:5002","bid_hour_usd":1})",
          R"({"offer":"vast:5002","spot":true,"bid_hour_usd":0})",
          R"({"offer":"vast:5002","ssh_key":"ssh-dss AAAAB3NzaC1kc3M= x"})",
          R"({"offer":"vast:5002","ssh_key":"ssh-ed25519 AAAAB3NzaC1yc2E= mismatched-type"})",
          R"({"offer":"vast:5002","ssh_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEj4n1a0lR9q2sYkS1m0lZ3hQx4oQ9l0Jc0VJv4m7Q8a a\nssh-rsa AAAA evil"})",
          R"({"offer":5002})",
      }) {
    EXPECT_FALSE(parseLaunchOrder(bj::parse(bad).as_object())) << bad;
  }
}

}  // namespace
}  // namespace hwl::rentals
