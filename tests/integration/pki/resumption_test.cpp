// TLS session resumption: ordinary clients offer the session of their previous connection when
// they connect again (curl does it for the next URL of the same run). Both the server and the
// agent ask for client certificates, so resumption needs its own care; a client that resumes
// must be served like one that does not (revoked ones are covered in revocation_test.cpp).
#include <gtest/gtest.h>

#include "pki_support.hpp"

namespace hwl::itest::pki {
namespace {

using namespace std::chrono_literals;

// curl fetching `url` twice on two connections (Connection: close), so the second handshake
// offers the first one's session.
RunResult twice(const std::string& url, const Creds& c) {
  std::vector<std::string> argv{"curl",       "-sS",
                                "--max-time", "20",
                                "--cacert",   c.cacert.string(),
                                "-H",         "Connection: close",
                                "-w",         "%{http_code} %{num_connects}\n"};
  if (!c.cert.empty())
    argv.insert(argv.end(), {"--cert", c.cert.string(), "--key", c.key.string()});
  argv.insert(argv.end(), {"-o", "/dev/null", url, "-o", "/dev/null", url});
  return run(argv);
}

// openssl s_client saving the session, then offering it on a second connection.
RunResult resumeWithSClient(const std::string& address, const Creds& c, const fs::path& sess) {
  const std::string request =
      "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::vector<std::string> base{"openssl", "s_client",        "-connect", address,
                                "-CAfile", c.cacert.string(), "-ign_eof"};
  if (!c.cert.empty()) base.insert(base.end(), {"-cert", c.cert.string(), "-key", c.key.string()});
  auto first = base;
  first.insert(first.end(), {"-sess_out", sess.string()});
  auto r = run(first, {.input = request, .timeout = 20s});
  if (r.out.find("HTTP/1.1 200") == std::string::npos) return r;
  auto second = base;
  second.insert(second.end(), {"-sess_in", sess.string()});
  return run(second, {.input = request, .timeout = 20s});
}

class Resumption : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_.init();
    srv_.start();
    agent_.enrollWith(srv_, {"--advertise", "127.0.0.1:9443"});
    agent_.start();
  }
  TempDir tmp_{"hwl-pki"};
  LedgerServer srv_{tmp_.path(), "data"};
  Agent agent_{tmp_.path(), "agent"};
};

TEST_F(Resumption, CurlsSecondConnectionIsServed) {
  struct Case {
    std::string what, url;
    Creds creds;
  };
  std::vector<Case> cases{
      {"operator client (no certificate) -> server", srv_.url() + "/v1/health",
       Creds{srv_.caCert(), {}, {}}},
      {"host identity -> server", srv_.url() + "/v1/health", agent_.asSelf()},
      {"server identity -> agent", agent_.url() + "/v1/health", serverIdentity(srv_)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = twice(c.url, c.creds);
    EXPECT_EQ(r.out, "200 1\n200 1\n") << r.err;
    EXPECT_EQ(r.code(), 0) << r.err;
  }
}

TEST_F(Resumption, OpensslResumedSessionIsServed) {
  struct Case {
    std::string what, address;
    Creds creds;
  };
  std::vector<Case> cases{
      {"operator client (no certificate) -> server", srv_.address(), Creds{srv_.caCert(), {}, {}}},
      {"server identity -> agent", agent_.address(), serverIdentity(srv_)},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = resumeWithSClient(c.address, c.creds, tmp_ / ("sess" + std::to_string(++n)));
    EXPECT_NE(r.out.find("HTTP/1.1 200"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("Reused, TLSv1.3"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace hwl::itest::pki
