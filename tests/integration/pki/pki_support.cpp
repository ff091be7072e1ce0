// The agent wrapper, curl/openssl helpers and ledger bookkeeping shared by the PKI tests.
#include "pki_support.hpp"

#include <signal.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <ctime>
#include <random>
#include <stdexcept>
#include <thread>

namespace hwl::itest::pki {

namespace bj = boost::json;
using namespace std::chrono_literals;

std::string agentBin() { return HWL_PKI_AGENT_BIN; }

std::string replayProbe() {
  return "replay:" + std::string(HWL_PKI_TELEMETRY_DIR) + "/nvidia-h100-query-gpu.csv";
}

Http curlTls(const std::string& method, const std::string& url, const Creds& creds,
             const std::optional<std::string>& body, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{"curl", "-sS",  "--max-time", "20",
                                "-X",   method, "-w",         "\n%{http_code}"};
  if (!creds.cacert.empty()) argv.insert(argv.end(), {"--cacert", creds.cacert.string()});
  if (creds.p12) {
    argv.insert(argv.end(), {"--cert-type", "P12", "--cert", creds.cert.string() + ":"});
  } else {
    if (!creds.cert.empty()) argv.insert(argv.end(), {"--cert", creds.cert.string()});
    if (!creds.key.empty()) argv.insert(argv.end(), {"--key", creds.key.string()});
  }
  RunOptions ro;
  ro.timeout = 30s;
  if (body) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    ro.input = *body;
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return httpFromCurl(run(argv, ro));
}

::testing::AssertionResult refusedByTls(const Http& h, const std::string& alert) {
  auto fail = [&](const std::string& why) {
    return ::testing::AssertionFailure()
           << why << " (curl exit " << h.curl_exit << ", HTTP " << h.status << ", stderr: " << h.err
           << ", body: " << h.body.substr(0, 300) << ")";
  };
  if (h.status != 0) return fail("an HTTP response came back");
  if (h.curl_exit != 35 && h.curl_exit != 56)
    return fail("curl did not fail in TLS (35 SSL_CONNECT_ERROR or 56 RECV_ERROR expected)");
  if (h.err.find("alert") == std::string::npos) return fail("no TLS alert from the peer");
  if (!alert.empty() && h.err.find(alert) == std::string::npos)
    return fail("the TLS alert is not \"" + alert + "\"");
  return ::testing::AssertionSuccess();
}

EnrollToken createEnrollToken(const LedgerServer& srv, std::optional<int64_t> ttl_s,
                              const std::string& host_hint) {
  bj::object body;
  if (ttl_s) body["ttl_s"] = *ttl_s;
  if (!host_hint.empty()) body["host_hint"] = host_hint;
  auto h = srv.post("/v1/enroll-tokens", bj::serialize(body));
  if (h.status != 201)
    throw std::runtime_error("POST /v1/enroll-tokens: " + std::to_string(h.status) + " " + h.body +
                             h.err);
  auto o = h.obj();
  return {std::string(o.at("id").as_string()), std::string(o.at("token").as_string()),
          std::string(o.at("ca_pin").as_string()), o.at("expires_ms").as_int64()};
}

std::vector<bj::object> eventsAfter(const LedgerServer& srv, int64_t after) {
  std::vector<bj::object> out;
  for (auto& e : srv.allEvents())
    if (e.at("seq").as_int64() > after) out.push_back(std::move(e));
  return out;
}

std::vector<std::string> typesAfter(const LedgerServer& srv, int64_t after) {
  std::vector<std::string> out;
  for (const auto& e : eventsAfter(srv, after)) {
    const std::string type(e.at("type").as_string());
    // The collector's own reachability events for enrolled agents that a test never starts come
    // whenever its scrapes time out; no request under test causes them.
    const bool collector = e.at("actor").as_string() == "system" &&
                           (type == "host.unreachable" || type == "host.reachable");
    if (!collector) out.push_back(type);
  }
  return out;
}

Agent::Agent(const fs::path& root, const std::string& name)
    : root_(root), dir_(root / name), name_(name) {}

Agent::~Agent() {
  if (proc_) proc_->kill();
}

RunResult Agent::enroll(const std::string& server_url, const std::string& token,
                        const std::string& ca_pin, const std::vector<std::string>& extra) const {
  std::vector<std::string> argv{agentBin(), "enroll",   "--server", server_url,    "--token",
                                token,      "--ca-pin", ca_pin,     "--state-dir", dir_.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunOptions ro;
  ro.timeout = 60s;
  return run(argv, ro);
}

void Agent::enrollWith(const LedgerServer& srv, const std::vector<std::string>& extra) {
  auto t = createEnrollToken(srv);
  auto r = enroll(srv.url(), t.token, t.ca_pin, extra);
  if (!r.status.success())
    throw std::runtime_error("hwledger-agent enroll failed (" + r.status.describe() +
                             "): " + r.err + r.out);
}

void Agent::start(const std::vector<std::string>& extra) {
  if (proc_ && proc_->running()) throw std::runtime_error("the agent is already running");
  std::vector<std::string> argv{agentBin(), "run",         "--state-dir", dir_.string(),
                                "--listen", "127.0.0.1:0", "--probe",     replayProbe()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  SpawnOptions so;
  so.stdout_file = root_ / (name_ + ".agent.out");
  so.stderr_file = root_ / (name_ + ".agent.err");
  proc_ = std::make_unique<Process>(argv, so);
  const std::string marker = "listening on https://";
  if (!proc_->waitForOutput(marker, 20s)) {
    auto st = proc_->kill();
    throw std::runtime_error("hwledger-agent did not start (" + st.describe() +
                             "): " + proc_->err() + proc_->out());
  }
  for (int i = 0; i < 100; ++i) {
    std::string out = proc_->out();
    auto at = out.find(marker) + marker.size();
    auto end = out.find_first_of(" \n", at);
    if (end != std::string::npos) {
      addr_ = out.substr(at, end - at);
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("no complete address in: " + proc_->out());
}

void Agent::stop() {
  if (!proc_) return;
  proc_->signal(SIGTERM);
  if (!proc_->wait(20s)) proc_->kill();
}

std::string Agent::hostId() const {
  auto o = bj::parse(readFile(dir_ / "enrollment.json")).as_object();
  return std::string(o.at("host_id").as_string());
}

Creds serverIdentity(const LedgerServer& srv) {
  return {srv.caCert(), srv.dataDir() / "server.crt", srv.dataDir() / "server.key"};
}

std::string openssl(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions ro;
  ro.input = input;
  ro.timeout = 30s;
  auto r = run(argv, ro);
  if (!r.status.success()) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed (" + r.status.describe() + "): " + r.err);
  }
  return r.out;
}

fs::path makeKeyAndCsr(const fs::path& dir, const std::string& name,
                       const std::vector<std::string>& addext) {
  fs::path key = dir / (name + ".key");
  fs::path csr = dir / (name + ".csr");
  std::vector<std::string> args{
      "req",       "-new",    "-newkey",    "ec",    "-pkeyopt",    "ec_paramgen_curve:P-256",
      "-nodes",    "-keyout", key.string(), "-subj", "/CN=" + name, "-out",
      csr.string()};
  for (const auto& e : addext) args.insert(args.end(), {"-addext", e});
  openssl(args);
  return csr;
}

CaFiles makeOpensslCa(const fs::path& dir, const std::string& name) {
  CaFiles f{dir / (name + ".crt"), dir / (name + ".key")};
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", f.key.string(), "-out", f.cert.string(), "-subj", "/CN=" + name, "-days",
           "30", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
           "keyUsage=critical,keyCertSign,cRLSign"});
  return f;
}

CaFiles makeSelfSigned(const fs::path& dir, const std::string& name, const std::string& san) {
  CaFiles f{dir / (name + ".crt"), dir / (name + ".key")};
  openssl({"req",
           "-x509",
           "-newkey",
           "ec",
           "-pkeyopt",
           "ec_paramgen_curve:P-256",
           "-nodes",
           "-keyout",
           f.key.string(),
           "-out",
           f.cert.string(),
           "-subj",
           "/CN=" + name,
           "-days",
           "30",
           "-addext",
           "subjectAltName=" + san,
           "-addext",
           "basicConstraints=critical,CA:FALSE",
           "-addext",
           "extendedKeyUsage=clientAuth,serverAuth"});
  return f;
}

OpensslCa::OpensslCa(const fs::path& dir, CaFiles ca) : dir_(dir), ca_(std::move(ca)) {
  fs::create_directories(dir_);
  writeFile(dir_ / "index.txt", "");
  std::random_device rd;
  std::string serial;
  for (int i = 0; i < 16; ++i) {
    static const char* kHex = "0123456789ABCDEF";
    serial.push_back(kHex[1 + rd() % 7]);  // a positive, non-zero leading digit
  }
  writeFile(dir_ / "serial", serial + "\n");
  writeFile(dir_ / "ca.cnf",
            "[ ca ]\n"
            "default_ca = this_ca\n"
            "[ this_ca ]\n"
            "database = " +
                (dir_ / "index.txt").string() +
                "\n"
                "new_certs_dir = " +
                dir_.string() +
                "\n"
                "serial = " +
                (dir_ / "serial").string() +
                "\n"
                "default_md = sha256\n"
                "policy = any_name\n"
                "unique_subject = no\n"
                "copy_extensions = none\n"
                "email_in_dn = no\n"
                "[ any_name ]\n"
                "commonName = supplied\n");
}

CaFiles OpensslCa::issue(const std::string& name, const std::string& san, const std::string& start,
                         const std::string& end) {
  makeKeyAndCsr(dir_, name);
  return issueFor(name, dir_ / (name + ".key"), san, start, end);
}

CaFiles OpensslCa::issueFor(const std::string& name, const fs::path& key, const std::string& san,
                            const std::string& start, const std::string& end) {
  fs::path csr = dir_ / (name + ".csr");
  openssl({"req", "-new", "-key", key.string(), "-subj", "/CN=" + name, "-out", csr.string()});
  fs::path ext = dir_ / (name + ".ext");
  writeFile(ext,
            "basicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature\n"
            "extendedKeyUsage = clientAuth,serverAuth\n"
            "subjectAltName = " +
                san + "\n");
  CaFiles f{dir_ / (name + ".crt"), key};
  openssl({"ca", "-batch", "-notext", "-config", (dir_ / "ca.cnf").string(), "-cert",
           ca_.cert.string(), "-keyfile", ca_.key.string(), "-in", csr.string(), "-out",
           f.cert.string(), "-startdate", start, "-enddate", end, "-extfile", ext.string()});
  return f;
}

std::string asn1Time(std::chrono::seconds offset) {
  std::time_t t = std::time(nullptr) + offset.count();
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return buf;
}

std::string normaliseSerial(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto nz = s.find_first_not_of('0');
  return nz == std::string::npos ? "0" : s.substr(nz);
}

std::string serialOfPem(const std::string& cert_pem) {
  std::string out = openssl({"x509", "-noout", "-serial"}, cert_pem);
  auto eq = out.find('=');
  if (eq == std::string::npos) throw std::runtime_error("openssl x509 -serial: " + out);
  std::string hex = out.substr(eq + 1);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
  return normaliseSerial(hex);
}

std::string serialOf(const fs::path& cert_pem) { return serialOfPem(readFile(cert_pem)); }

std::string servedCertificate(const std::string& address, const Creds& creds) {
  std::vector<std::string> argv{"openssl", "s_client",   "-connect",
                                address,   "-showcerts", "-verify_return_error"};
  if (!creds.cacert.empty()) argv.insert(argv.end(), {"-CAfile", creds.cacert.string()});
  if (!creds.cert.empty()) argv.insert(argv.end(), {"-cert", creds.cert.string()});
  if (!creds.key.empty()) argv.insert(argv.end(), {"-key", creds.key.string()});
  RunOptions ro;
  ro.timeout = 20s;
  auto r = run(argv, ro);
  const std::string begin = "-----BEGIN CERTIFICATE-----";
  const std::string end = "-----END CERTIFICATE-----";
  auto b = r.out.find(begin);
  auto e = r.out.find(end, b == std::string::npos ? 0 : b);
  if (b == std::string::npos || e == std::string::npos)
    throw std::runtime_error("openssl s_client -showcerts " + address + " (" + r.status.describe() +
                             "): no certificate: " + r.err);
  return r.out.substr(b, e + end.size() - b) + "\n";
}

}  // namespace hwl::itest::pki
