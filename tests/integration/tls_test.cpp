// TLS: the server speaks TLS 1.3 only, and a client that does not trust the fleet CA (or checks
// a name the certificate does not carry) gets nothing.
#include <gtest/gtest.h>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_.init();
    srv_.start();
    events_ = srv_.eventCount();
  }
  void TearDown() override { EXPECT_EQ(srv_.eventCount(), events_); }

  RunResult sClient(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{
        "openssl", "s_client", "-connect", srv_.address(), "-verify_return_error",
        "-brief",  "-ign_eof"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunOptions ro;
    ro.input = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    ro.timeout = std::chrono::seconds(20);
    return run(argv, ro);
  }
  RunResult curl(const std::vector<std::string>& extra, const std::string& url) {
    std::vector<std::string> argv{"curl", "-sS",       "--max-time", "20",
                                  "-o",   "/dev/null", "-w",         "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return run(argv);
  }

  TempDir tmp_;
  LedgerServer srv_{tmp_.path(), "data"};
  int64_t events_ = 0;
};

TEST_F(Tls, Tls13ClientIsServed) {
  auto r = sClient({"-CAfile", srv_.caCert().string(), "-tls1_3"});
  EXPECT_EQ(r.code(), 0) << r.out << r.err;
  EXPECT_NE(r.err.find("TLSv1.3"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("HTTP/1.1 200"), std::string::npos) << r.out;
}

TEST_F(Tls, Tls12OnlyClientIsRefused) {
  auto c =
      curl({"--cacert", srv_.caCert().string(), "--tls-max", "1.2"}, srv_.url() + "/v1/health");
  EXPECT_EQ(c.code(), 35) << "curl: " << c.out << c.err;  // CURLE_SSL_CONNECT_ERROR
  EXPECT_EQ(c.out, "000");

  auto s = sClient({"-CAfile", srv_.caCert().string(), "-tls1_2"});
  EXPECT_NE(s.code(), 0) << s.out << s.err;
  EXPECT_EQ(s.out.find("HTTP/1.1"), std::string::npos) << s.out;
}

TEST_F(Tls, ClientThatDoesNotTrustTheCaIsRefused) {
  // The system trust store does not know the fleet CA.
  auto sys = curl({}, srv_.url() + "/v1/health");
  EXPECT_EQ(sys.code(), 60) << sys.err;  // CURLE_PEER_FAILED_VERIFICATION
  // Neither does another fleet's CA.
  LedgerServer other(tmp_.path(), "other");
  other.init();
  auto wrong = curl({"--cacert", other.caCert().string()}, srv_.url() + "/v1/health");
  EXPECT_EQ(wrong.code(), 60) << wrong.err;
  auto s = sClient({"-CAfile", other.caCert().string()});
  EXPECT_NE(s.code(), 0) << s.out << s.err;
  EXPECT_EQ(s.out.find("HTTP/1.1"), std::string::npos) << s.out;

  // The right CA with the right name works; a name the certificate lacks does not.
  auto good = curl(
      {"--cacert", srv_.caCert().string(), "--resolve", "localhost:" + srv_.port() + ":127.0.0.1"},
      "https://localhost:" + srv_.port() + "/v1/health");
  EXPECT_EQ(good.code(), 0) << good.err;
  EXPECT_EQ(good.out, "200");
  auto bad_name = curl({"--cacert", srv_.caCert().string(), "--resolve",
                        "ledger.example.com:" + srv_.port() + ":127.0.0.1"},
                       "https://ledger.example.com:" + srv_.port() + "/v1/health");
  EXPECT_EQ(bad_name.code(), 60) << bad_name.err;
}

TEST_F(Tls, PlainHttpOnTheTlsPortGetsNoAnswer) {
  auto r = curl({}, "http://" + srv_.address() + "/v1/health");
  EXPECT_NE(r.code(), 0);
  EXPECT_EQ(r.out, "000");
}

}  // namespace
}  // namespace hwl::itest
