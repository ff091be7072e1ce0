// HTTP limits, driven by curl and openssl s_client: oversized headers and bodies and slow headers
// are refused with the right status, and none of them reaches the ledger.
#include <gtest/gtest.h>

#include <thread>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class HttpLimits : public ::testing::Test {
 protected:
  void SetUp() override { srv_.init(); }
  TempDir tmp_;
  LedgerServer srv_{tmp_.path(), "data"};
};

TEST_F(HttpLimits, OversizedHeaderIs431) {
  srv_.start();
  const int64_t events = srv_.eventCount();
  auto big =
      srv_.request("GET", "/v1/health", "", {}, {"-H", "X-Pad: " + std::string(9 * 1024, 'a')});
  EXPECT_EQ(big.status, 431) << big.body << big.err;
  EXPECT_NE(big.body.find("header_too_large"), std::string::npos) << big.body;
  // The same request with a header well inside the limit is served.
  auto ok =
      srv_.request("GET", "/v1/health", "", {}, {"-H", "X-Pad: " + std::string(6 * 1024, 'a')});
  EXPECT_EQ(ok.status, 200) << ok.body << ok.err;
  // An oversized Authorization header on a command is refused before any handler runs.
  auto cmd = srv_.request("POST", "/v1/tokens", srv_.adminToken() + std::string(9 * 1024, 'x'),
                          R"({"role":"viewer"})");
  EXPECT_EQ(cmd.status, 431) << cmd.body << cmd.err;
  EXPECT_EQ(srv_.eventCount(), events);
}

TEST_F(HttpLimits, OversizedBodyIs413) {
  srv_.start();
  const int64_t events = srv_.eventCount();
  // 2 MiB: over the server's 1 MiB default and the route's 16 KiB. curl sends Expect: 100-continue.
  std::string two_mib = R"({"role":"viewer","note":")" + std::string(2 << 20, 'n') + R"("})";
  auto h = srv_.post("/v1/tokens", two_mib);
  EXPECT_EQ(h.status, 413) << h.body << h.err;
  EXPECT_NE(h.errorMessage().find("16384 bytes"), std::string::npos) << h.body;

  // 20 KiB sent at once, without waiting for 100-continue.
  std::string twenty_kib = R"({"role":"viewer","note":")" + std::string(20 << 10, 'n') + R"("})";
  auto h2 = srv_.request("POST", "/v1/tokens", srv_.adminToken(), twenty_kib, {"-H", "Expect:"});
  EXPECT_EQ(h2.status, 413) << h2.body << h2.err;

  // The same 20 KiB chunked, so the server only learns the size while reading.
  auto h3 = srv_.request("POST", "/v1/tokens", srv_.adminToken(), twenty_kib,
                         {"-H", "Expect:", "-H", "Transfer-Encoding: chunked"});
  EXPECT_EQ(h3.status, 413) << h3.body << h3.err;

  // Just under the route's limit the body is read and judged on its content.
  std::string fifteen_kib = R"({"role":"viewer","note":")" + std::string(15 << 10, 'n') + R"("})";
  auto h4 = srv_.request("POST", "/v1/tokens", srv_.adminToken(), fifteen_kib, {"-H", "Expect:"});
  EXPECT_EQ(h4.status, 400) << h4.body << h4.err;
  EXPECT_NE(h4.errorMessage().find("\"note\""), std::string::npos) << h4.body;

  // Routes without a limit of their own get the server's 1 MiB.
  auto h5 = srv_.request("GET", "/v1/events", srv_.adminToken(), two_mib);
  EXPECT_EQ(h5.status, 413) << h5.body << h5.err;
  EXPECT_NE(h5.errorMessage().find("1048576 bytes"), std::string::npos) << h5.body;

  EXPECT_EQ(srv_.eventCount(), events);
}

// The body limit is looked up on the decoded path, the one the router routes: an escaped
// letter in the path no longer lands a request on /v1/tokens or /v1/jobs under the 1 MiB
// default.
TEST_F(HttpLimits, EscapedPathGetsTheLimitOfTheRouteItReaches) {
  srv_.start();
  const int64_t events = srv_.eventCount();
  const int64_t rows = std::stoll(sqlite(srv_.db(), "SELECT count(*) FROM events"));
  // 40 KB to POST /v1/%74okens (route limit 16 KiB).
  std::string forty_kb = R"({"role":"viewer","note":")" + std::string(40'000, 'n') + R"("})";
  auto t = srv_.request("POST", "/v1/%74okens", srv_.adminToken(), forty_kb,
                        {"-H", "Expect: 100-continue"});
  EXPECT_EQ(t.status, 413) << t.body << t.err;
  EXPECT_NE(t.errorMessage().find("16384 bytes"), std::string::npos) << t.body;
  // A job with a 1 MB name to POST /v1/%6Aobs (route limit 64 KiB), under the 1 MiB default.
  std::string big_job =
      R"({"name":")" + std::string(1'000'000, 'j') + R"(","command":["true"],"gpus":1})";
  auto j = srv_.request("POST", "/v1/%6Aobs", srv_.adminToken(), big_job);
  EXPECT_EQ(j.status, 413) << j.body.substr(0, 300) << j.err;
  EXPECT_NE(j.errorMessage().find("65536 bytes"), std::string::npos) << j.body.substr(0, 300);
  // Escapes that would change the path's shape are refused before any handler.
  for (const char* path : {"/v1/tokens%2F", "/v1%2Ftokens", "/v1/tokens%00", "/v1/tok%0D%0Aens"}) {
    auto r = srv_.request("POST", path, srv_.adminToken(), R"({"role":"viewer"})");
    EXPECT_EQ(r.status, 400) << path << ": " << r.body << r.err;
  }
  EXPECT_EQ(srv_.eventCount(), events);
  EXPECT_EQ(std::stoll(sqlite(srv_.db(), "SELECT count(*) FROM events")), rows);
  // The escaped path still routes: a small body is served.
  auto ok = srv_.request("POST", "/v1/%74okens", srv_.adminToken(), R"({"role":"viewer"})");
  EXPECT_EQ(ok.status, 201) << ok.body << ok.err;
  EXPECT_EQ(srv_.eventCount(), events + 1);
}

// A client that sends its whole body without waiting (no Expect: 100-continue) still reads the
// 413: the server drains the refused body before it closes, instead of resetting the connection
// under the client's writes (curl then failed with "Send failure: Broken pipe" and no status).
TEST_F(HttpLimits, ClientStillSendingARefusedBodyReadsThe413) {
  srv_.start();
  const int64_t events = srv_.eventCount();
  const std::string big_job =
      R"({"name":")" + std::string(1'000'000, 'j') + R"(","command":["true"],"gpus":1})";
  for (int i = 0; i < 20; ++i) {
    auto j = srv_.request("POST", "/v1/jobs", srv_.adminToken(), big_job, {"-H", "Expect:"});
    ASSERT_EQ(j.status, 413) << "attempt " << i << ": " << j.body.substr(0, 300) << j.err;
    EXPECT_NE(j.errorMessage().find("65536 bytes"), std::string::npos) << j.body.substr(0, 300);
  }
  EXPECT_EQ(srv_.eventCount(), events);
}

TEST_F(HttpLimits, SlowHeadersAre408) {
  writeFile(tmp_ / "config.json", R"({"header_timeout_ms": 1000})");
  srv_.start({"--config", (tmp_ / "config.json").string()});
  const int64_t events = srv_.eventCount();

  SpawnOptions so;
  so.stdin_pipe = true;
  so.stdout_file = tmp_ / "s_client.out";
  so.stderr_file = tmp_ / "s_client.err";
  Process client({"openssl", "s_client", "-connect", srv_.address(), "-CAfile",
                  srv_.caCert().string(), "-verify_return_error", "-quiet"},
                 so);
  // Part of a request: the blank line that ends the headers never comes.
  const auto sent = Clock::now();
  client.writeStdin("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bear");
  ASSERT_TRUE(client.waitForOutput("408", 10s)) << client.out() << client.err();
  const auto took = Clock::now() - sent;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 6s);
  EXPECT_NE(client.out().find("HTTP/1.1 408"), std::string::npos) << client.out();
  EXPECT_NE(client.out().find("request_timeout"), std::string::npos) << client.out();
  // The server closes the connection afterwards.
  auto st = client.wait(5s);
  EXPECT_TRUE(st.has_value()) << "the connection stayed open after the 408";

  // Trickling the headers a byte at a time does not keep the connection alive: the deadline is
  // for the whole header block.
  SpawnOptions so3 = so;
  so3.stdout_file = tmp_ / "s_client3.out";
  Process trickle({"openssl", "s_client", "-connect", srv_.address(), "-CAfile",
                   srv_.caCert().string(), "-verify_return_error", "-quiet"},
                  so3);
  const std::string slow =
      "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(200, 'z');
  const auto trickle_start = Clock::now();
  bool answered = false;
  for (char c : slow) {
    if (trickle.out().find("408") != std::string::npos || !trickle.running()) {
      answered = true;
      break;
    }
    trickle.writeStdin(std::string_view(&c, 1));
    std::this_thread::sleep_for(100ms);
  }
  answered = answered || trickle.waitForOutput("408", 5s);
  EXPECT_TRUE(answered);
  EXPECT_NE(trickle.out().find("HTTP/1.1 408"), std::string::npos) << trickle.out();
  EXPECT_LT(Clock::now() - trickle_start, 8s);

  // A client that sends its headers in time is served under the same setting.
  SpawnOptions so2 = so;
  so2.stdout_file = tmp_ / "s_client2.out";
  Process prompt({"openssl", "s_client", "-connect", srv_.address(), "-CAfile",
                  srv_.caCert().string(), "-verify_return_error", "-quiet"},
                 so2);
  prompt.writeStdin("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(prompt.waitForOutput("HTTP/1.1 200", 10s)) << prompt.out();

  EXPECT_EQ(srv_.eventCount(), events);
}

}  // namespace
}  // namespace hwl::itest
