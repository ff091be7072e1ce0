// What a certificate may do comes from the record of what was issued to whom, not from its SANs:
// an enrollment cannot smuggle SANs through `advertise`; a host certificate that carries admin or
// server URIs (as one made by signing with the fleet CA key would) gets no admin powers from the
// server and is refused by agents, before and after its host is revoked; CSR keys must be on the
// documented curves; enrollment tokens can be revoked.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>

#include "pki_support.hpp"

namespace hwl::itest::pki {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

constexpr const char* kInjection = "x,URI:hwledger://admin/pwned,URI:hwledger://server:1";

class Identity : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_.init();
    srv_.start();
  }

  Creds trustOnly() const { return {srv_.caCert(), {}, {}}; }

  // POST /v1/enroll from curl with a CSR made by the openssl CLI.
  Http enrollRaw(const std::string& token, const fs::path& csr,
                 const std::optional<std::string>& advertise = {}) {
    bj::object body{{"token", token}, {"csr", readFile(csr)}};
    if (advertise) body["advertise"] = *advertise;
    return curlTls("POST", srv_.url() + "/v1/enroll", trustOnly(), bj::serialize(body));
  }
  static std::string sanText(const std::string& cert_pem) {
    return openssl({"x509", "-noout", "-ext", "subjectAltName"}, cert_pem);
  }
  std::string reasonsAfter(int64_t seq) {
    std::string out;
    for (const auto& e : eventsAfter(srv_, seq))
      if (e.at("type").as_string() == "auth.denied")
        out += std::string(e.at("data").as_object().at("reason").as_string()) + " ";
    return out;
  }

  // A certificate for `key_pem_file`'s key, signed with the fleet CA's key by the openssl CLI
  // (the way a holder of a certificate from the old SAN-injection bug would have one), with the
  // given serial (hex) and SANs.
  fs::path forge(const std::string& name, const fs::path& key_file, const std::string& serial_hex,
                 const std::string& san) {
    fs::path csr = tmp_ / (name + ".csr");
    openssl(
        {"req", "-new", "-key", key_file.string(), "-subj", "/CN=" + name, "-out", csr.string()});
    fs::path ext = tmp_ / (name + ".ext");
    writeFile(ext,
              "basicConstraints=critical,CA:FALSE\n"
              "keyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=clientAuth,serverAuth\n"
              "subjectAltName=" +
                  san + "\n");
    fs::path crt = tmp_ / (name + ".crt");
    openssl({"x509", "-req", "-in", csr.string(), "-CA", srv_.caCert().string(), "-CAkey",
             (srv_.dataDir() / "ca.key").string(), "-set_serial", "0x" + serial_hex, "-days", "1",
             "-extfile", ext.string(), "-out", crt.string()});
    return crt;
  }

  TempDir tmp_;
  LedgerServer srv_{tmp_.path(), "data"};
};

TEST_F(Identity, AdvertiseWithSanSyntaxIsRefusedAndAppendsNothing) {
  auto t = createEnrollToken(srv_);
  fs::path csr = makeKeyAndCsr(tmp_.path(), "inj");
  const int64_t seq = srv_.eventCount();
  const std::vector<std::string> bad = {
      kInjection,
      "x,URI:hwledger://admin/pwned:9443",
      "host name:9443",
      "under_score:9443",
      "-lead.example:9443",
      "a..b:9443",
      "1.2.3.4",
      "1.2.3.4:0",
      "1.2.3.4:65536",
      "[not-v6]:9443",
      "[fe80::1%eth0]:9443",
      "::1:9443",
      "h\n:9443",
      std::string(254, 'a') + ":9443",
      std::string(300, 'a'),
  };
  for (const auto& a : bad) {
    SCOPED_TRACE(a.substr(0, 80));
    auto h = enrollRaw(t.token, csr, a);
    EXPECT_EQ(h.status, 400) << h.body << h.err;
    EXPECT_NE(h.errorMessage().find("advertise"), std::string::npos) << h.body;
  }
  EXPECT_EQ(srv_.eventCount(), seq) << "a refused enrollment appended something";
  EXPECT_EQ(sqlite(srv_.db(), "SELECT count(*) FROM hosts"), "0");

  // The token was not spent: a good address enrolls, and the certificate holds exactly the host
  // identity and that address.
  for (const auto& [addr, san] : std::vector<std::pair<std::string, std::string>>{
           {"gpu-7.example.org:9443", "DNS:gpu-7.example.org"}}) {
    auto ok = enrollRaw(t.token, csr, addr);
    ASSERT_EQ(ok.status, 201) << ok.body;
    std::string host = std::string(ok.obj().at("host_id").as_string());
    std::string sans = sanText(std::string(ok.obj().at("certificate").as_string()));
    EXPECT_NE(sans.find(san), std::string::npos) << sans;
    EXPECT_NE(sans.find("URI:hwledger://host/" + host), std::string::npos) << sans;
    EXPECT_EQ(sans.find("admin"), std::string::npos) << sans;
    EXPECT_EQ(sans.find("hwledger://server"), std::string::npos) << sans;
    EXPECT_EQ(std::count(sans.begin(), sans.end(), ','), 1) << "two SANs only: " << sans;
  }
  // IPv4 and IPv6 literals become IP SANs.
  for (const auto& [addr, san] : std::vector<std::pair<std::string, std::string>>{
           {"10.1.2.3:9443", "IP Address:10.1.2.3"},
           {"[::1]:9443", "IP Address:0:0:0:0:0:0:0:1"}}) {
    SCOPED_TRACE(addr);
    auto tok = createEnrollToken(srv_);
    auto ok =
        enrollRaw(tok.token, makeKeyAndCsr(tmp_.path(), "ip" + std::to_string(addr.size())), addr);
    ASSERT_EQ(ok.status, 201) << ok.body;
    std::string sans = sanText(std::string(ok.obj().at("certificate").as_string()));
    EXPECT_NE(sans.find(san), std::string::npos) << sans;
  }
}

TEST_F(Identity, CsrOnUndocumentedCurvesIsRefusedAndAppendsNothing) {
  auto t = createEnrollToken(srv_);
  auto csrWith = [&](const std::string& name, const std::vector<std::string>& keyopts) {
    fs::path key = tmp_ / (name + ".key"), csr = tmp_ / (name + ".csr");
    std::vector<std::string> args{"req", "-new", "-nodes", "-subj", "/CN=" + name};
    args.insert(args.end(), keyopts.begin(), keyopts.end());
    args.insert(args.end(), {"-keyout", key.string(), "-out", csr.string()});
    openssl(args);
    return csr;
  };
  const int64_t seq = srv_.eventCount();
  for (const auto& [name, opts] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"secp256k1", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"}},
           {"brainpoolP256r1", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1"}},
           {"brainpoolP384r1", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:brainpoolP384r1"}},
           {"explicit-P-256",
            {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-pkeyopt",
             "ec_param_enc:explicit"}},
           {"rsa-1024", {"-newkey", "rsa:1024"}},
           {"ed448", {"-newkey", "ed448"}}}) {
    SCOPED_TRACE(name);
    auto h = enrollRaw(t.token, csrWith(name, opts));
    EXPECT_EQ(h.status, 400) << h.body;
    EXPECT_NE(h.errorMessage().find("key type not allowed"), std::string::npos) << h.body;
  }
  EXPECT_EQ(srv_.eventCount(), seq);
  // The documented ones are accepted (each with its own token; the first one is still unspent).
  std::vector<std::pair<std::string, std::vector<std::string>>> good = {
      {"p256", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}},
      {"p384", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"}},
      {"ed25519", {"-newkey", "ed25519"}},
      {"rsa-2048", {"-newkey", "rsa:2048"}}};
  std::string token = t.token;
  for (const auto& [name, opts] : good) {
    SCOPED_TRACE(name);
    auto h = enrollRaw(token, csrWith(name, opts));
    EXPECT_EQ(h.status, 201) << h.body;
    token = createEnrollToken(srv_).token;
  }
}

TEST_F(Identity, HostCertificateWithAdminAndServerSansHasNoPowers) {
  Agent victim(tmp_.path(), "victim");
  victim.enrollWith(srv_, {"--advertise", "127.0.0.1:9443"});
  victim.start();
  Agent mallory(tmp_.path(), "mallory");
  mallory.enrollWith(srv_, {"--advertise", "127.0.0.1:9444"});
  const std::string mhost = mallory.hostId();
  const std::string mserial = serialOf(mallory.identity());
  ASSERT_EQ(sqlite(srv_.db(),
                   "SELECT host_id FROM host_certs WHERE ltrim(serial, '0') = '" + mserial + "'"),
            mhost);

  // The serial and key the CA issued to mallory's host, with the SANs the old bug let through.
  fs::path same_serial =
      forge("same-serial", mallory.identity(), mserial,
            "URI:hwledger://host/" + mhost + ",URI:hwledger://admin/pwned,URI:hwledger://server");
  // And one with a serial nobody recorded, for mallory's key.
  fs::path fresh_serial = forge("fresh-serial", mallory.identity(), "5eed5eed5eed",
                                "URI:hwledger://admin/pwned,URI:hwledger://server");
  const std::string job = R"({"id":"pwned","command":["sh","-c","echo pwned"]})";
  auto attempts = [&](const std::string& when) {
    for (const auto& crt : {same_serial, fresh_serial}) {
      SCOPED_TRACE(when + " " + crt.filename().string());
      Creds forged{srv_.caCert(), crt, mallory.identity()};
      const int64_t seq = srv_.eventCount();
      // The server: no admin token minted, no admin route answered.
      auto mint = curlTls("POST", srv_.url() + "/v1/tokens", forged, R"({"role":"admin"})");
      auto list = curlTls("GET", srv_.url() + "/v1/tokens", forged);
      for (const auto* h : {&mint, &list}) {
        EXPECT_TRUE(h->status == 403 || h->status == 401 || refusedByTls(*h))
            << h->status << " " << h->body << h->err;
      }
      // Even with a valid viewer token next to it.
      auto viewer = srv_.createToken("viewer");
      const int64_t seq2 = srv_.eventCount();
      auto both = curlTls("POST", srv_.url() + "/v1/tokens", forged, R"({"role":"admin"})",
                          {"-H", "Authorization: Bearer " + viewer.token});
      EXPECT_TRUE(both.status == 403 || both.status == 401 || refusedByTls(both)) << both.body;
      auto types = typesAfter(srv_, seq2);
      for (const auto& ty : types) EXPECT_EQ(ty, "auth.denied");
      auto after = typesAfter(srv_, seq);
      EXPECT_EQ(std::count(after.begin(), after.end(), "token.created"), 1)
          << "only the viewer token made by the test";
      // The agent: refused in the handshake, for reading and for starting a job.
      EXPECT_TRUE(refusedByTls(curlTls("GET", victim.url() + "/v1/health", forged)));
      EXPECT_TRUE(refusedByTls(curlTls("POST", victim.url() + "/v1/jobs", forged, job)));
    }
  };
  const int64_t before = srv_.eventCount();
  attempts("enrolled");
  EXPECT_NE(reasonsAfter(before).find("admin_cert_not_issued"), std::string::npos)
      << reasonsAfter(before);
  // Renewal with the doctored certificate is refused too (it is not the host's certificate).
  fs::path csr = makeKeyAndCsr(tmp_.path(), "renew");
  const int64_t seq_renew = srv_.eventCount();
  auto renew = curlTls("POST", srv_.url() + "/v1/pki/renew",
                       {srv_.caCert(), same_serial, mallory.identity()},
                       bj::serialize(bj::object{{"csr", readFile(csr)}}));
  EXPECT_EQ(renew.status, 401) << renew.body;
  for (const auto& ty : typesAfter(srv_, seq_renew)) EXPECT_EQ(ty, "auth.denied");

  auto rv = srv_.post("/v1/hosts/" + mhost + "/revoke", R"({"reason":"stolen"})");
  ASSERT_EQ(rv.status, 200) << rv.body;
  attempts("revoked");

  // Controls. The server's identity still reaches the agent, which ran nothing.
  auto jobs = curlTls("GET", victim.url() + "/v1/jobs", serverIdentity(srv_));
  ASSERT_EQ(jobs.status, 200) << jobs.err;
  EXPECT_TRUE(jobs.obj().at("jobs").as_array().empty()) << jobs.body;
  // A certificate issued by issue-admin-cert (recorded) acts as an admin.
  fs::path crt = tmp_ / "alice.crt", key = tmp_ / "alice.key";
  auto issue = run({serverBin(), "issue-admin-cert", "--data-dir", srv_.dataDir().string(),
                    "--name", "alice", "--cert-out", crt.string(), "--key-out", key.string()});
  ASSERT_TRUE(issue.status.success()) << issue.err;
  auto made =
      curlTls("POST", srv_.url() + "/v1/tokens", {srv_.caCert(), crt, key}, R"({"role":"viewer"})");
  EXPECT_EQ(made.status, 201) << made.body;
  // The dashboard signs in with it: GET /v1/whoami names the certificate's admin, no token.
  auto who = curlTls("GET", srv_.url() + "/v1/whoami", {srv_.caCert(), crt, key});
  ASSERT_EQ(who.status, 200) << who.body;
  EXPECT_TRUE(who.obj().at("signed_in").as_bool()) << who.body;
  EXPECT_EQ(who.obj().at("role").as_string(), "admin") << who.body;
  // The same name and SAN on a certificate the CA did not record as issued gets nothing.
  fs::path alice_twin = forge("alice-twin", key, "a11ce", "URI:hwledger://admin/alice");
  auto twin = curlTls("POST", srv_.url() + "/v1/tokens", {srv_.caCert(), alice_twin, key},
                      R"({"role":"viewer"})");
  EXPECT_EQ(twin.status, 403) << twin.body;
  auto twin_who = curlTls("GET", srv_.url() + "/v1/whoami", {srv_.caCert(), alice_twin, key});
  EXPECT_NE(twin_who.status, 200) << twin_who.body;
  // Deleting the record withdraws the certificate's powers.
  // (The record is named by the serial in OpenSSL's even-length hex, which may keep a leading 0.)
  size_t removed = 0;
  for (const auto& e : fs::directory_iterator(srv_.dataDir() / "admin-certs"))
    if (normaliseSerial(e.path().stem().string()) == serialOf(crt)) removed += fs::remove(e.path());
  ASSERT_EQ(removed, 1u);
  auto gone =
      curlTls("POST", srv_.url() + "/v1/tokens", {srv_.caCert(), crt, key}, R"({"role":"viewer"})");
  EXPECT_EQ(gone.status, 403) << gone.body;
}

TEST_F(Identity, AgentAcceptsOnlyThePinnedServerKey) {
  Agent agent(tmp_.path(), "agent");
  agent.enrollWith(srv_, {"--advertise", "127.0.0.1:9443"});
  agent.start();
  auto state = bj::parse(readFile(agent.stateDir() / "enrollment.json")).as_object();
  const std::string pin(state.at("server_spki").as_string());
  auto spki =
      openssl({"x509", "-noout", "-pubkey", "-in", (srv_.dataDir() / "server.crt").string()});
  auto der = openssl({"pkey", "-pubin", "-outform", "DER"}, spki);
  auto digest = openssl({"dgst", "-sha256", "-r"}, der);
  EXPECT_EQ(digest.substr(0, 64), pin) << "the pin is the SPKI of the server's identity";

  OpensslCa fleet(tmp_ / "fleet-openssl", CaFiles{srv_.caCert(), srv_.dataDir() / "ca.key"});
  // A fleet certificate with the server's SAN and another key: refused.
  auto other = fleet.issue("other", "URI:hwledger://server", asn1Time(-1h), asn1Time(1h));
  EXPECT_TRUE(refusedByTls(
      curlTls("GET", agent.url() + "/v1/health", {srv_.caCert(), other.cert, other.key})));
  // Control: a fresh fleet certificate for the server's own key is accepted (the key is pinned).
  fs::path crt =
      forge("server-again", srv_.dataDir() / "server.key", "5e77e7", "URI:hwledger://server");
  auto ok = curlTls("GET", agent.url() + "/v1/health",
                    {srv_.caCert(), crt, srv_.dataDir() / "server.key"});
  EXPECT_EQ(ok.status, 200) << ok.err << ok.body;
}

TEST_F(Identity, RevokedEnrollmentTokenCannotEnroll) {
  auto t = createEnrollToken(srv_);
  auto listed = srv_.get("/v1/tokens");
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.obj().at("enroll_tokens").as_array().size(), 1u) << listed.body;
  const int64_t seq = srv_.eventCount();
  auto del = srv_.request("DELETE", "/v1/tokens/" + t.id, srv_.adminToken());
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_TRUE(del.obj().at("revoked_ms").is_int64()) << del.body;
  EXPECT_EQ(typesAfter(srv_, seq), std::vector<std::string>{"token.revoked"});
  EXPECT_EQ(srv_.request("DELETE", "/v1/tokens/" + t.id, srv_.adminToken()).status, 409);

  const int64_t before = srv_.eventCount();
  auto h = enrollRaw(t.token, makeKeyAndCsr(tmp_.path(), "late"));
  EXPECT_EQ(h.status, 401) << h.body;
  EXPECT_EQ(typesAfter(srv_, before), std::vector<std::string>{"auth.denied"});
  EXPECT_EQ(reasonsAfter(before), "enroll_token_revoked ");
  EXPECT_EQ(sqlite(srv_.db(), "SELECT count(*) FROM hosts"), "0");
  // The agent's own enroll command is refused the same way.
  Agent agent(tmp_.path(), "agent");
  auto r = agent.enroll(srv_.url(), t.token, t.ca_pin);
  EXPECT_FALSE(r.status.success());
  EXPECT_EQ(sqlite(srv_.db(), "SELECT count(*) FROM hosts"), "0");

  // A used token cannot be revoked (it is spent), an unknown one is 404, and an operator may not.
  auto used = createEnrollToken(srv_);
  ASSERT_TRUE(agent.enroll(srv_.url(), used.token, used.ca_pin).status.success());
  EXPECT_EQ(srv_.request("DELETE", "/v1/tokens/" + used.id, srv_.adminToken()).status, 409);
  EXPECT_EQ(srv_.request("DELETE", "/v1/tokens/enr_nosuch", srv_.adminToken()).status, 404);
  auto op = srv_.createToken("operator");
  auto fresh = createEnrollToken(srv_);
  EXPECT_EQ(srv_.request("DELETE", "/v1/tokens/" + fresh.id, op.token).status, 403);
  auto after = srv_.get("/v1/tokens").obj().at("enroll_tokens").as_array();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_TRUE(after[0].as_object().at("revoked_ms").is_int64());
  EXPECT_TRUE(after[1].as_object().at("used_ms").is_int64());
  EXPECT_TRUE(after[2].as_object().at("revoked_ms").is_null());

  // The projection comes back the same from the events.
  srv_.stop();
  auto rb = run({serverBin(), "rebuild", "--data-dir", srv_.dataDir().string()});
  EXPECT_TRUE(rb.status.success()) << rb.err;
  EXPECT_NE(rb.out.find("identical"), std::string::npos) << rb.out;
}

}  // namespace
}  // namespace hwl::itest::pki
