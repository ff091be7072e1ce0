// Every client the agent API (and, where the same trust decision applies, the server) must refuse
// is refused in the TLS handshake — curl and openssl s_client get an alert, never an HTTP answer —
// and the ledger does not move. Each refusal has a positive control that differs from it only in
// the property under test, so a refusal for another reason would not pass.
#include <gtest/gtest.h>

#include <chrono>

#include "pki_support.hpp"

namespace hwl::itest::pki {
namespace {

using namespace std::chrono_literals;

class Refusal : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_.init();
    srv_.start();
    agent_.enrollWith(srv_, {"--advertise", "127.0.0.1:9443"});
    agent_.start();
    // The server's identity reaches the agent: every refusal below is for its own reason.
    auto ok = curlTls("GET", agent_.url() + "/v1/health", serverIdentity(srv_));
    ASSERT_EQ(ok.status, 200) << ok.err << ok.body;
    seq_ = srv_.eventCount();
  }
  void TearDown() override {
    // The collector's first scrape of the agent may record host.reachable at any moment: only
    // that may follow, nothing a refused client caused.
    EXPECT_TRUE(typesAfter(srv_, seq_).empty()) << "a refused client changed the ledger";
    // The agent still serves its rightful client.
    EXPECT_EQ(curlTls("GET", agent_.url() + "/v1/health", serverIdentity(srv_)).status, 200);
    EXPECT_TRUE(agent_.running()) << agent_.err();
  }

  // Both peers trust the fleet CA; only the client certificate varies.
  Creds presenting(const CaFiles& c) const { return {srv_.caCert(), c.cert, c.key}; }
  Http toAgent(const Creds& c) { return curlTls("GET", agent_.url() + "/v1/health", c); }
  // A request that would append to the ledger if it were handled.
  Http renewAtServer(const Creds& c) {
    fs::path csr = makeKeyAndCsr(tmp_.path(), "renew-" + std::to_string(++n_));
    return curlTls("POST", srv_.url() + "/v1/pki/renew", c,
                   R"({"csr":")" + escapePem(readFile(csr)) + R"("})");
  }
  static std::string escapePem(const std::string& pem) {
    std::string out;
    for (char c : pem) {
      if (c == '\n')
        out += "\\n";
      else
        out.push_back(c);
    }
    return out;
  }
  // A fleet certificate for the server's own key (the key agents pin), valid from `from` to `to`.
  CaFiles serverKeyCert(const std::string& name, const std::string& from, const std::string& to) {
    return fleetCa().issueFor(name, srv_.dataDir() / "server.key", "URI:hwledger://server", from,
                              to);
  }
  OpensslCa& fleetCa() {
    if (!fleet_)
      fleet_ = std::make_unique<OpensslCa>(tmp_ / "fleet-openssl",
                                           CaFiles{srv_.caCert(), srv_.dataDir() / "ca.key"});
    return *fleet_;
  }

  TempDir tmp_{"hwl-pki"};
  LedgerServer srv_{tmp_.path(), "data"};
  Agent agent_{tmp_.path(), "agent"};
  std::unique_ptr<OpensslCa> fleet_;
  int64_t seq_ = 0;
  int n_ = 0;
};

TEST_F(Refusal, NoClientCertificate) {
  EXPECT_TRUE(refusedByTls(toAgent(Creds{srv_.caCert(), {}, {}}), "certificate required"));
  auto s = run(
      {"openssl", "s_client", "-connect", agent_.address(), "-CAfile", srv_.caCert().string(),
       "-brief", "-ign_eof"},
      {.input = "GET /v1/health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", .timeout = 20s});
  EXPECT_EQ(s.out.find("HTTP/1.1"), std::string::npos) << s.out;
  EXPECT_NE(s.err.find("alert certificate required"), std::string::npos) << s.err;
  // The server takes anonymous TLS clients (operators use bearer tokens); a host-only route
  // answers 401 there, and only the refusal is recorded.
  auto anon = renewAtServer(Creds{srv_.caCert(), {}, {}});
  EXPECT_EQ(anon.status, 401) << anon.body;
  for (const auto& type : typesAfter(srv_, seq_)) EXPECT_EQ(type, "auth.denied");
  seq_ = srv_.eventCount();
}

TEST_F(Refusal, CertificateFromAForeignCa) {
  auto foreign_ca = makeOpensslCa(tmp_.path(), "foreign-ca");
  OpensslCa foreign(tmp_ / "foreign", foreign_ca);
  const auto from = asn1Time(-1h), to = asn1Time(24h);
  // The server's identity and a host identity, as another CA would make them.
  auto as_server = foreign.issue("as-server", "URI:hwledger://server", from, to);
  auto as_host = foreign.issue("as-host", "URI:hwledger://host/" + agent_.hostId(), from, to);
  EXPECT_TRUE(refusedByTls(toAgent(presenting(as_server)), "unknown ca"));
  EXPECT_TRUE(refusedByTls(renewAtServer(presenting(as_host)), "unknown ca"));
  // Control: the same openssl path with the fleet CA, for the pinned key, is accepted.
  auto fleet = serverKeyCert("fleet-server", from, to);
  auto ok = toAgent(presenting(fleet));
  EXPECT_EQ(ok.status, 200) << ok.err;
}

TEST_F(Refusal, ExpiredCertificate) {
  // openssl x509 -days cannot go below zero and OpenSSL 3.0's x509 has no -not_before/-not_after;
  // openssl ca takes explicit -startdate/-enddate, so the fleet CA's own key signs a certificate
  // that ended an hour ago.
  auto expired = serverKeyCert("expired", asn1Time(-48h), asn1Time(-1h));
  EXPECT_TRUE(refusedByTls(toAgent(presenting(expired)), "certificate expired"));
  auto expired_host = fleetCa().issue("expired-host", "URI:hwledger://host/" + agent_.hostId(),
                                      asn1Time(-48h), asn1Time(-1h));
  EXPECT_TRUE(refusedByTls(renewAtServer(presenting(expired_host)), "certificate expired"));
  // Control: the same certificate with a window around now is accepted.
  auto current = serverKeyCert("current", asn1Time(-48h), asn1Time(1h));
  auto ok = toAgent(presenting(current));
  EXPECT_EQ(ok.status, 200) << ok.err;
}

TEST_F(Refusal, NotYetValidCertificate) {
  auto future = serverKeyCert("future", asn1Time(1h), asn1Time(48h));
  EXPECT_TRUE(refusedByTls(toAgent(presenting(future))));
  auto future_host = fleetCa().issue("future-host", "URI:hwledger://host/" + agent_.hostId(),
                                     asn1Time(1h), asn1Time(48h));
  EXPECT_TRUE(refusedByTls(renewAtServer(presenting(future_host))));
  auto current = serverKeyCert("current", asn1Time(-1h), asn1Time(48h));
  auto ok = toAgent(presenting(current));
  EXPECT_EQ(ok.status, 200) << ok.err;
}

TEST_F(Refusal, SelfSignedCertificate) {
  auto self = makeSelfSigned(tmp_.path(), "self", "URI:hwledger://server");
  EXPECT_TRUE(refusedByTls(toAgent(presenting(self))));
  auto self_host =
      makeSelfSigned(tmp_.path(), "self-host", "URI:hwledger://host/" + agent_.hostId());
  EXPECT_TRUE(refusedByTls(renewAtServer(presenting(self_host))));
}

TEST_F(Refusal, FleetCertificateWithTheWrongIdentity) {
  // The agent's own certificate is valid and from the fleet CA, but it is not the server.
  EXPECT_TRUE(refusedByTls(toAgent(agent_.asSelf())));
  // Neither is another enrolled host, nor an admin.
  Agent other(tmp_.path(), "other");
  other.enrollWith(srv_);
  fs::path crt = tmp_ / "admin.crt", key = tmp_ / "admin.key";
  auto issue = run({serverBin(), "issue-admin-cert", "--data-dir", srv_.dataDir().string(),
                    "--cert-out", crt.string(), "--key-out", key.string()});
  ASSERT_TRUE(issue.status.success()) << issue.err;
  seq_ = srv_.eventCount();
  EXPECT_TRUE(refusedByTls(toAgent(other.asSelf())));
  EXPECT_TRUE(refusedByTls(toAgent(Creds{srv_.caCert(), crt, key})));
  // Nor a fleet certificate with the server's SAN and any other key: agents pin the server's key.
  auto wrong_key =
      fleetCa().issue("wrong-key", "URI:hwledger://server", asn1Time(-1h), asn1Time(1h));
  EXPECT_TRUE(refusedByTls(toAgent(presenting(wrong_key))));
  // Control: a fleet certificate from the same openssl path for the server's key is accepted.
  auto right = serverKeyCert("right", asn1Time(-1h), asn1Time(1h));
  auto ok = toAgent(presenting(right));
  EXPECT_EQ(ok.status, 200) << ok.err;
}

TEST_F(Refusal, Tls12OnlyClient) {
  for (const auto& url : {agent_.url() + "/v1/health", srv_.url() + "/v1/health"}) {
    SCOPED_TRACE(url);
    auto h = curlTls("GET", url, serverIdentity(srv_), {}, {"--tls-max", "1.2"});
    EXPECT_TRUE(refusedByTls(h));
    EXPECT_EQ(h.curl_exit, 35) << h.err;
    auto ok = curlTls("GET", url, serverIdentity(srv_));
    EXPECT_EQ(ok.status, 200) << ok.err;
  }
  for (const auto& addr : {agent_.address(), srv_.address()}) {
    SCOPED_TRACE(addr);
    auto id = serverIdentity(srv_);
    auto s = run({"openssl", "s_client", "-connect", addr, "-CAfile", id.cacert.string(), "-cert",
                  id.cert.string(), "-key", id.key.string(), "-tls1_2", "-brief", "-ign_eof"},
                 {.input = "GET /v1/health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                  .timeout = 20s});
    EXPECT_NE(s.code(), 0) << s.out << s.err;
    EXPECT_EQ(s.out.find("HTTP/1.1"), std::string::npos) << s.out;
    EXPECT_NE(s.err.find("alert protocol version"), std::string::npos) << s.err;
  }
}

}  // namespace
}  // namespace hwl::itest::pki
