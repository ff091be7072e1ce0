// The shared parts of the adapters: base URLs, keys, retries and backoff against a fake provider.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "fake_provider.hpp"
#include "rentals/provider.hpp"
#include "rentals/provider_http.hpp"

namespace hwl::rentals {
namespace {

TEST(BaseUrl, HttpsAnyHostHttpLoopbackOnly) {
  auto a = parseBaseUrl("https://console.vast.ai/api/v0");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->host, "console.vast.ai");
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->prefix, "/api/v0");
  EXPECT_EQ(a->origin(), "https://console.vast.ai:443");
  auto b = parseBaseUrl("http://127.0.0.1:8080/");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_FALSE(b->tls);
  EXPECT_EQ(b->prefix, "");
  EXPECT_TRUE(parseBaseUrl("http://[::1]:9000/graphql"));
  EXPECT_TRUE(parseBaseUrl("http://127.8.9.1:9000"));
  // Plain http anywhere but loopback would send the key in clear text.
  for (const char* bad :
       {"http://api.runpod.io/graphql", "http://10.0.0.1:80", "http://localhost:80",
        "http://[::2]:80", "ftp://x", "https://user:pw@host/", "https://host/a?b=c",
        "https://host/a#f", "https://host/a b", "https://ho st/", "https://host:0/",
        "https://host:99999/", "", "https://", "https://host/%2e%2e/"}) {
    EXPECT_FALSE(parseBaseUrl(bad)) << bad;
  }
}

TEST(ApiKey, PrintableWithoutSpaces) {
  EXPECT_TRUE(checkApiKey("abc-DEF_123.xyz"));
  EXPECT_FALSE(checkApiKey(""));
  EXPECT_FALSE(checkApiKey("a b"));
  EXPECT_FALSE(checkApiKey("a\r\nX-Evil: 1"));
  EXPECT_FALSE(checkApiKey(std::string(600, 'k')));
}

TEST(RetryAfter, SecondsAndDates) {
  auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  EXPECT_EQ(parseRetryAfter("3", now), std::chrono::milliseconds(3000));
  EXPECT_EQ(parseRetryAfter("0", now), std::chrono::milliseconds(0));
  EXPECT_FALSE(parseRetryAfter("soon", now));
  EXPECT_FALSE(parseRetryAfter("-4", now));
  // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
  EXPECT_EQ(parseRetryAfter("Tue, 14 Nov 2023 22:13:25 GMT", now), std::chrono::milliseconds(5000));
  EXPECT_EQ(parseRetryAfter("Tue, 14 Nov 2023 22:13:00 GMT", now), std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace hwl::rentals
