// Enrollment: the real agent joins the fleet and both directions of mutual TLS work; tokens are
// single use, expire and must exist; the agent sends nothing to a server whose CA does not match
// its pin; a CSR cannot make itself a CA; an admin client certificate stands in for a bearer token.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "hwl/crypto.hpp"
#include "hwl/http.hpp"
#include "hwl/pki.hpp"
#include "pki_support.hpp"

namespace hwl::itest::pki {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

fs::perms mode(const fs::path& p) { return fs::status(p).permissions() & fs::perms::all; }

// "sha256:<hex>" of a certificate's SubjectPublicKeyInfo, computed by openssl alone.
std::string opensslPin(const fs::path& cert) {
  std::string pub = openssl({"x509", "-in", cert.string(), "-noout", "-pubkey"});
  std::string der = openssl({"pkey", "-pubin", "-outform", "DER"}, pub);
  std::string dgst = openssl({"dgst", "-sha256", "-r"}, der);
  return "sha256:" + dgst.substr(0, dgst.find(' '));
}

std::string text(const fs::path& cert) {
  return openssl({"x509", "-in", cert.string(), "-noout", "-text"});
}

size_t hostCount(const LedgerServer& srv) {
  auto h = srv.get("/v1/hosts");
  if (h.status != 200) throw std::runtime_error("GET /v1/hosts: " + h.body);
  return h.obj().at("hosts").as_array().size();
}

class Enrollment : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_.init();
    srv_.start();
  }

  // POST /v1/enroll with curl, trusting only the fleet CA.
  Http enrollWithCurl(const std::string& token, const fs::path& csr, const std::string& name = "") {
    bj::object body{{"token", token}, {"csr", readFile(csr)}};
    if (!name.empty()) body["name"] = name;
    return curlTls("POST", srv_.url() + "/v1/enroll", Creds{srv_.caCert(), {}, {}},
                   bj::serialize(body));
  }

  TempDir tmp_{"hwl-pki"};
  LedgerServer srv_{tmp_.path(), "data"};
};

TEST_F(Enrollment, AgentEnrollsThenMutualTlsWorksInBothDirections) {
  const int64_t start = srv_.eventCount();
  auto t = createEnrollToken(srv_, 600, "gpu-node-1");
  EXPECT_EQ(t.ca_pin, opensslPin(srv_.caCert()));
  EXPECT_EQ(typesAfter(srv_, start), std::vector<std::string>{"token.created"});
  const int64_t before_enroll = srv_.eventCount();

  Agent agent(tmp_.path(), "agent");
  auto r = agent.enroll(srv_.url(), t.token, t.ca_pin,
                        {"--name", "gpu-a", "--advertise", "127.0.0.1:9443"});
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err << r.out;
  const std::string id = agent.hostId();
  EXPECT_TRUE(contains(r.out, "enrolled as " + id)) << r.out;

  // What the agent keeps: its key and certificate (private), the CA it pinned.
  EXPECT_EQ(mode(agent.identity()), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(readFile(agent.caCert()), readFile(srv_.caCert()));
  const std::string identity = readFile(agent.identity());
  EXPECT_TRUE(contains(identity, "PRIVATE KEY")) << "identity.pem holds the key";

  // The ledger: the token is used and the host enrolled, and nothing else.
  auto evs = eventsAfter(srv_, before_enroll);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].at("type").as_string(), "token.used");
  EXPECT_EQ(evs[1].at("type").as_string(), "host.enrolled");
  const auto& enrolled = evs[1].at("data").as_object();
  EXPECT_EQ(enrolled.at("host_id").as_string(), id);
  EXPECT_EQ(enrolled.at("name").as_string(), "gpu-a");
  EXPECT_EQ(enrolled.at("token_id").as_string(), t.id);
  EXPECT_EQ(normaliseSerial(std::string(enrolled.at("cert_serial").as_string())),
            serialOf(agent.identity()));

  // The certificate: this host's identity, a leaf, for both ends of a TLS connection.
  auto cert = text(agent.identity());
  EXPECT_TRUE(contains(cert, "CN = " + id)) << cert;
  EXPECT_TRUE(contains(cert, "URI:hwledger://host/" + id)) << cert;
  EXPECT_TRUE(contains(cert, "IP Address:127.0.0.1")) << cert;
  EXPECT_TRUE(contains(cert, "CA:FALSE")) << cert;
  EXPECT_TRUE(contains(cert, "TLS Web Client Authentication")) << cert;
  EXPECT_TRUE(contains(cert, "TLS Web Server Authentication")) << cert;
  auto verify =
      run({"openssl", "verify", "-CAfile", srv_.caCert().string(), agent.identity().string()});
  EXPECT_EQ(verify.code(), 0) << verify.out << verify.err;

  auto host = srv_.get("/v1/hosts/" + id);
  ASSERT_EQ(host.status, 200) << host.body;
  EXPECT_EQ(host.obj().at("name").as_string(), "gpu-a");
  EXPECT_EQ(host.obj().at("kind").as_string(), "agent");

  // Server identity -> agent API.
  agent.start();
  EXPECT_EQ(readFile(agent.stateDir() / "listen.addr"), agent.address() + "\n");
  auto health = curlTls("GET", agent.url() + "/v1/health", serverIdentity(srv_));
  ASSERT_EQ(health.status, 200) << health.err << health.body;
  EXPECT_EQ(health.obj().at("host_id").as_string(), id);
  auto info = curlTls("GET", agent.url() + "/v1/info", serverIdentity(srv_));
  EXPECT_EQ(info.status, 200) << info.err << info.body;

  // Agent identity -> server: renewal with a CSR for a new key.
  const int64_t before_renew = srv_.eventCount();
  fs::path csr = makeKeyAndCsr(tmp_.path(), "renew");
  const std::string renew_body = bj::serialize(bj::object{{"csr", readFile(csr)}});
  auto anon =
      curlTls("POST", srv_.url() + "/v1/pki/renew", Creds{srv_.caCert(), {}, {}}, renew_body);
  EXPECT_EQ(anon.status, 401) << "no client certificate, no renewal: " << anon.body;
  auto renewed = curlTls("POST", srv_.url() + "/v1/pki/renew", agent.asSelf(), renew_body);
  ASSERT_EQ(renewed.status, 200) << renewed.err << renewed.body;
  EXPECT_EQ(renewed.obj().at("host_id").as_string(), id);
  fs::path new_cert = tmp_ / "renewed.crt";
  writeFile(new_cert, std::string(renewed.obj().at("certificate").as_string()));
  EXPECT_EQ(openssl({"x509", "-in", new_cert.string(), "-noout", "-pubkey"}),
            openssl({"pkey", "-in", (tmp_ / "renew.key").string(), "-pubout"}))
      << "the renewed certificate is for the CSR's key";
  EXPECT_TRUE(contains(text(new_cert), "URI:hwledger://host/" + id));
  std::vector<std::string> kinds;
  for (const auto& e : eventsAfter(srv_, before_renew)) {
    std::string type(e.at("type").as_string());
    kinds.push_back(type);
    if (type == "host.cert_renewed") {
      const auto& d = e.at("data").as_object();
      EXPECT_EQ(normaliseSerial(std::string(d.at("previous_serial").as_string())),
                serialOf(agent.identity()));
      EXPECT_EQ(normaliseSerial(std::string(d.at("cert_serial").as_string())), serialOf(new_cert));
      EXPECT_EQ(e.at("actor").as_string(), "host:" + id);
    }
  }
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "host.cert_renewed"), 1);
  for (const auto& k : kinds) EXPECT_TRUE(k == "host.cert_renewed" || k == "auth.denied") << k;
}

TEST_F(Enrollment, ReplayedExpiredAndUnknownTokensAre401AndEnrollNothing) {
  auto t = createEnrollToken(srv_, 600);
  auto expiring = createEnrollToken(srv_, 1);
  auto spare = createEnrollToken(srv_, 600);

  Agent first(tmp_.path(), "first");
  auto ok = first.enroll(srv_.url(), t.token, t.ca_pin);
  ASSERT_TRUE(ok.status.success()) << ok.err;
  ASSERT_EQ(hostCount(srv_), 1u);

  // Each refusal: 401 with the one message, no host, nothing in the ledger but auth.denied.
  auto expectRefused = [&](const Http& h, int64_t seq_before, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(h.status, 401) << h.err << h.body;
    if (h.status == 401) {
      auto e = h.obj().at("error").as_object();
      EXPECT_EQ(e.at("code").as_string(), "unauthenticated");
      EXPECT_EQ(e.at("message").as_string(), "the enrollment token is not valid");
    }
    EXPECT_EQ(hostCount(srv_), 1u);
    for (const auto& type : typesAfter(srv_, seq_before)) EXPECT_EQ(type, "auth.denied");
  };

  // The same token again, through the real agent and through curl.
  int64_t seq = srv_.eventCount();
  Agent replay(tmp_.path(), "replay");
  auto again = replay.enroll(srv_.url(), t.token, t.ca_pin);
  EXPECT_EQ(again.code(), 1) << again.out << again.err;
  EXPECT_TRUE(contains(again.err, "the enrollment token is not valid")) << again.err;
  EXPECT_FALSE(fs::exists(replay.identity()));
  EXPECT_EQ(hostCount(srv_), 1u);
  for (const auto& type : typesAfter(srv_, seq)) EXPECT_EQ(type, "auth.denied");
  fs::path csr = makeKeyAndCsr(tmp_.path(), "intruder");
  seq = srv_.eventCount();
  expectRefused(enrollWithCurl(t.token, csr), seq, "replayed token");

  // Expired (ttl_s 1).
  const int64_t wait_ms = expiring.expires_ms + 500 - nowMs();
  if (wait_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  seq = srv_.eventCount();
  expectRefused(enrollWithCurl(expiring.token, csr), seq, "expired token");

  // Unknown id, and a known id with the wrong secret.
  seq = srv_.eventCount();
  expectRefused(enrollWithCurl("enr_0123456789abcdef." + t.secret(), csr), seq, "unknown token");
  seq = srv_.eventCount();
  expectRefused(enrollWithCurl(spare.id + ".not-the-secret", csr), seq, "wrong secret");
  seq = srv_.eventCount();
  expectRefused(enrollWithCurl("no-dot-at-all", csr), seq, "malformed token");

  // The refusals consumed nothing: the spare token (its id was tried with a wrong secret) works.
  Agent second(tmp_.path(), "second");
  auto good = second.enroll(srv_.url(), spare.token, spare.ca_pin);
  EXPECT_TRUE(good.status.success()) << good.err;
  EXPECT_EQ(hostCount(srv_), 2u);
}

// A loopback HTTPS server with a CA of its own that records everything it is sent.
class Impostor {
 public:
  explicit Impostor(const fs::path& dir) {
    auto ca_key = hwl::pki::generateP256();
    hwl::pki::CertSpec ca_spec;
    ca_spec.common_name = "impostor CA";
    ca_spec.lifetime_s = 3600;
    auto ca = hwl::pki::makeCa(ca_key.get(), ca_spec);
    if (!ca) throw std::runtime_error(ca.error().message);
    auto key = hwl::pki::generateP256();
    hwl::pki::CertSpec spec;
    spec.common_name = "hwledger-server";
    spec.dns = {"localhost"};
    spec.ips = {"127.0.0.1"};
    spec.uris = {"hwledger://server"};
    spec.server_auth = true;
    spec.lifetime_s = 3600;
    auto cert = hwl::pki::issue(ca->get(), ca_key.get(), key.get(), spec);
    if (!cert) throw std::runtime_error(cert.error().message);
    ca_pem_ = hwl::pki::certPem(ca->get());
    pin_ = hwl::pki::spkiPin(ca->get());
    writeFile(dir / "impostor.crt", hwl::pki::certPem(cert->get()) + ca_pem_);
    writeFile(dir / "impostor.key", hwl::crypto::privateKeyPem(key.get()));
    http::ServerSettings ss;
    ss.listen = "127.0.0.1:0";
    ss.cert_file = (dir / "impostor.crt").string();
    ss.key_file = (dir / "impostor.key").string();
    ss.worker_threads = 2;
    server_ = std::make_unique<http::Server>(ss, [this](http::Request& r) { return handle(r); });
    if (auto s = server_->start(); !s) throw std::runtime_error(s.error().message);
  }
  ~Impostor() { server_->stop(); }

  struct Seen {
    std::string method, target, headers, body;
  };
  [[nodiscard]] std::vector<Seen> seen() const {
    std::lock_guard lk(mu_);
    return seen_;
  }
  [[nodiscard]] std::string url() const { return "https://" + server_->boundAddress(); }
  [[nodiscard]] const std::string& pin() const { return pin_; }

 private:
  http::Response handle(http::Request& r) {
    Seen s{r.method, r.target, "", r.body};
    for (const auto& [k, v] : r.headers) s.headers += k + ": " + v + "\n";
    {
      std::lock_guard lk(mu_);
      seen_.push_back(std::move(s));
    }
    if (r.method == "GET" && r.path == "/v1/pki/ca") {
      http::Response res;
      res.content_type = "application/x-pem-file";
      res.body = ca_pem_;
      return res;
    }
    return http::jsonError(401, "unauthenticated", "the enrollment token is not valid");
  }

  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  std::string ca_pem_;
  std::string pin_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(Enrollment, PinMismatchSendsNoTokenBytes) {
  auto t = createEnrollToken(srv_);
  Impostor impostor(tmp_.path());
  ASSERT_NE(impostor.pin(), t.ca_pin);

  Agent victim(tmp_.path(), "victim");
  auto r = victim.enroll(impostor.url(), t.token, t.ca_pin);
  EXPECT_EQ(r.code(), 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "CA pin mismatch")) << r.err;
  EXPECT_TRUE(contains(r.err, "nothing was sent")) << r.err;
  EXPECT_FALSE(fs::exists(victim.identity()));
  auto seen = impostor.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/v1/pki/ca");
  for (const auto& s : seen) {
    for (const auto* part : {&s.method, &s.target, &s.headers, &s.body}) {
      EXPECT_FALSE(contains(*part, t.secret())) << *part;
      EXPECT_FALSE(contains(*part, t.id)) << *part;
    }
  }

  // The recorder does see a token when the pin does match (here: the impostor's own pin).
  auto bait = createEnrollToken(srv_);
  auto control = victim.enroll(impostor.url(), bait.token, impostor.pin());
  EXPECT_EQ(control.code(), 1) << control.err;
  seen = impostor.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].method, "POST");
  EXPECT_EQ(seen[2].target, "/v1/enroll");
  EXPECT_TRUE(contains(seen[2].body, bait.secret())) << seen[2].body;

  // The first token never left the host: it still enrolls against the real server.
  auto real = victim.enroll(srv_.url(), t.token, t.ca_pin);
  EXPECT_TRUE(real.status.success()) << real.err;
}

TEST_F(Enrollment, CsrAskingForCaTrueGetsALeaf) {
  fs::path csr =
      makeKeyAndCsr(tmp_.path(), "wannabe",
                    {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"});
  ASSERT_TRUE(contains(openssl({"req", "-in", csr.string(), "-noout", "-text"}), "CA:TRUE"));
  auto t = createEnrollToken(srv_);
  auto h = enrollWithCurl(t.token, csr, "wannabe");
  ASSERT_EQ(h.status, 201) << h.err << h.body;
  fs::path issued = tmp_ / "wannabe.crt";
  writeFile(issued, std::string(h.obj().at("certificate").as_string()));
  auto txt = text(issued);
  EXPECT_TRUE(contains(txt, "CA:FALSE")) << txt;
  EXPECT_FALSE(contains(txt, "CA:TRUE")) << txt;
  EXPECT_FALSE(contains(txt, "Certificate Sign")) << txt;

  // Sign a certificate with it anyway: nobody who trusts the fleet CA accepts that.
  fs::path victim_csr = makeKeyAndCsr(tmp_.path(), "victim");
  auto signWith = [&](const fs::path& ca_cert, const std::string& out) {
    fs::path p = tmp_ / out;
    openssl({"x509", "-req", "-in", victim_csr.string(), "-CA", ca_cert.string(), "-CAkey",
             (tmp_ / "wannabe.key").string(), "-set_serial", "4242", "-days", "1", "-out",
             p.string()});
    return p;
  };
  fs::path forged = signWith(issued, "forged.crt");
  auto chain = run({"openssl", "verify", "-CAfile", srv_.caCert().string(), "-untrusted",
                    issued.string(), forged.string()});
  EXPECT_NE(chain.code(), 0) << chain.out;
  EXPECT_TRUE(contains(chain.out + chain.err, "invalid CA certificate")) << chain.out << chain.err;
  auto anchored =
      run({"openssl", "verify", "-partial_chain", "-CAfile", issued.string(), forged.string()});
  EXPECT_NE(anchored.code(), 0) << anchored.out;
  EXPECT_TRUE(contains(anchored.out + anchored.err, "invalid CA certificate"))
      << anchored.out << anchored.err;

  // Control: had the CA honoured the CSR's CA:TRUE, the same check would pass.
  fs::path honoured = tmp_ / "honoured.crt";
  openssl({"x509", "-req", "-in", csr.string(), "-CA", srv_.caCert().string(), "-CAkey",
           (srv_.dataDir() / "ca.key").string(), "-set_serial", "4243", "-days", "1",
           "-copy_extensions", "copy", "-out", honoured.string()});
  ASSERT_TRUE(contains(text(honoured), "CA:TRUE"));
  fs::path forged2 = signWith(honoured, "forged2.crt");
  auto control =
      run({"openssl", "verify", "-partial_chain", "-CAfile", honoured.string(), forged2.string()});
  EXPECT_EQ(control.code(), 0) << control.out << control.err;
}

TEST_F(Enrollment, AdminClientCertificateActsWithoutBearerToken) {
  fs::path p12 = tmp_ / "alice.p12";
  auto issue = run({serverBin(), "issue-admin-cert", "--data-dir", srv_.dataDir().string(),
                    "--name", "alice", "--out", p12.string()});
  ASSERT_TRUE(issue.status.success()) << issue.err;
  EXPECT_EQ(mode(p12), fs::perms::owner_read | fs::perms::owner_write);

  const std::string body = R"({"ttl_s":60,"host_hint":"by-cert"})";
  // Without the certificate and without a token: refused, nothing created.
  int64_t seq = srv_.eventCount();
  auto anon = curlTls("POST", srv_.url() + "/v1/enroll-tokens", Creds{srv_.caCert(), {}, {}}, body);
  EXPECT_EQ(anon.status, 401) << anon.body;
  for (const auto& type : typesAfter(srv_, seq)) EXPECT_EQ(type, "auth.denied");

  seq = srv_.eventCount();
  auto made =
      curlTls("POST", srv_.url() + "/v1/enroll-tokens", Creds{srv_.caCert(), p12, {}, true}, body);
  ASSERT_EQ(made.status, 201) << made.err << made.body;
  EXPECT_EQ(made.obj().at("host_hint").as_string(), "by-cert");
  auto evs = eventsAfter(srv_, seq);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].at("type").as_string(), "token.created");
  EXPECT_EQ(evs[0].at("actor").as_string(), "cert:alice");

  // The token it made is a real one.
  Agent agent(tmp_.path(), "agent");
  auto r = agent.enroll(srv_.url(), std::string(made.obj().at("token").as_string()),
                        std::string(made.obj().at("ca_pin").as_string()));
  EXPECT_TRUE(r.status.success()) << r.err;

  // The PEM form works the same way for an admin-only route.
  fs::path crt = tmp_ / "bob.crt", key = tmp_ / "bob.key";
  auto pem = run({serverBin(), "issue-admin-cert", "--data-dir", srv_.dataDir().string(), "--name",
                  "bob", "--cert-out", crt.string(), "--key-out", key.string()});
  ASSERT_TRUE(pem.status.success()) << pem.err;
  auto revoke = curlTls("POST", srv_.url() + "/v1/hosts/" + agent.hostId() + "/revoke",
                        Creds{srv_.caCert(), crt, key}, R"({"reason":"test"})");
  EXPECT_EQ(revoke.status, 200) << revoke.err << revoke.body;

  // An admin identity from another CA is refused in the handshake and creates nothing.
  auto foreign_ca = makeOpensslCa(tmp_.path(), "foreign-ca");
  OpensslCa foreign(tmp_ / "foreign", foreign_ca);
  auto mallory = foreign.issue("mallory", "URI:hwledger://admin/mallory",
                               asn1Time(-std::chrono::hours(1)), asn1Time(std::chrono::hours(24)));
  seq = srv_.eventCount();
  auto forged = curlTls("POST", srv_.url() + "/v1/enroll-tokens",
                        Creds{srv_.caCert(), mallory.cert, mallory.key}, body);
  EXPECT_TRUE(refusedByTls(forged, "unknown ca"));
  EXPECT_EQ(srv_.eventCount(), seq);
}

}  // namespace
}  // namespace hwl::itest::pki
