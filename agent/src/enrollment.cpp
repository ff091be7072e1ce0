// Enrollment and renewal against hwledger-server.
#include "enrollment.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>

#include "agent_config.hpp"
#include "hwl/crypto.hpp"
#include "hwl/files.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"
#include "hwl/pki.hpp"
#include "hwl/probes/procfs.hpp"

namespace hwl::agent {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kServerUri = "hwledger://server";

Result<bj::object> postJson(http::Client& c, const std::string& target, const bj::object& body) {
  auto r = c.request("POST", target, bj::serialize(body));
  if (!r) return r.error();
  auto v = json::parseObject(r->body);
  if (r->status >= 300) {
    std::string msg = "the server answered HTTP " + std::to_string(r->status);
    if (v && v->contains("error") && v->at("error").is_object()) {
      const auto& e = v->at("error").as_object();
      if (e.contains("message") && e.at("message").is_string())
        msg += ": " + std::string(e.at("message").as_string());
    }
    return Error{r->status == 401 ? Code::kUnauthenticated : Code::kFailedPrecondition, msg};
  }
  if (!v) return internal("the server sent invalid JSON");
  return std::move(*v);
}

Status storeIdentity(const fs::path& dir, const std::string& cert_pem, const std::string& key_pem) {
  return files::writeFileAtomic(dir / "identity.pem", cert_pem + key_pem, 0600);
}

Status storeEnrollment(const fs::path& dir, const bj::object& state) {
  return files::writeFileAtomic(dir / "enrollment.json", bj::serialize(state), 0600);
}

}  // namespace

bool isSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bj::object platformFacts() {
  bj::object p;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) p["hostname"] = host;
  struct utsname u {};
  if (::uname(&u) == 0) p["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
  std::ifstream os("/etc/os-release");
  std::string line;
  while (std::getline(os, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      p["os"] = v;
    }
  if (auto cpu = files::readFile("/proc/cpuinfo")) {
    auto info = probes::parseCpuinfo(*cpu);
    if (!info.model.empty()) p["cpu"] = info.model;
    if (info.logical_cpus > 0) p["cpu_cores"] = info.logical_cpus;
  }
  if (auto mem = files::readFile("/proc/meminfo")) {
    auto m = probes::parseMeminfo(*mem);
    if (m.total_bytes) p["memory_bytes"] = *m.total_bytes;
  }
  p["agent_version"] = kAgentVersion;
  return p;
}

Result<std::string> detectAdvertise(const std::string& server_url, std::uint16_t port) {
  auto url = boost::urls::parse_uri(server_url);
  if (!url || url->host().empty())
    return invalidArgument("--server " + server_url + " has no host to find the route to");
  const std::string host = url->host_address();
  const std::string service = url->has_port() ? std::string(url->port()) : "443";
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return unavailable("cannot resolve " + host + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  std::string why = "no address of " + host + " is routable";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    const bool ok = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0;
    if (!ok) why = std::string("no route to ") + host + ": " + std::strerror(errno);
    ::close(fd);
    if (!ok) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (local.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&local);
      if (in->sin_addr.s_addr == htonl(INADDR_ANY)) continue;
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      return std::string(text) + ":" + std::to_string(port);
    }
    if (local.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&local);
      if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) || IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr))
        continue;  // a link-local address needs a zone the certificate cannot carry
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      return "[" + std::string(text) + "]:" + std::to_string(port);
    }
  }
  return unavailable(why + "; pass --advertise HOST:PORT");
}

Result<Identity> enroll(const EnrollOptions& o) {
  if (o.ca_pin.rfind("sha256:", 0) != 0 || o.ca_pin.size() != 7 + 64)
    return invalidArgument("--ca-pin must be sha256:<64 hex digits>");
  // 1. Fetch the CA without trusting anything yet, and pin it.
  http::Client fetch({.base_url = o.server, .insecure_skip_verify = true});
  auto ca_res = fetch.request("GET", "/v1/pki/ca");
  if (!ca_res) return ca_res.error();
  if (ca_res->status != 200)
    return unavailable("GET /v1/pki/ca answered HTTP " + std::to_string(ca_res->status));
  auto ca = pki::certFromPem(ca_res->body);
  if (!ca) return invalidArgument("the server's /v1/pki/ca is not a PEM certificate");
  std::string pin = pki::spkiPin(ca->get());
  if (!crypto::constantTimeEqual(pin, o.ca_pin))
    return permissionDenied("CA pin mismatch: the server's CA is " + pin + ", expected " +
                            o.ca_pin + "; nothing was sent");
  std::string ca_pem = pki::certPem(ca->get());

  // 2. The key is made here and never leaves the host; only a CSR does.
  auto key = pki::generateP256();
  auto csr = pki::makeCsr(key.get(), o.name.empty() ? "hwledger-agent" : o.name);
  if (!csr) return csr.error();

  // 3. A connection that trusts only the pinned CA and needs the server's identity: the token
  //    goes out only if the server's certificate chains to that CA.
  http::Client client({.base_url = o.server,
                       .ca_pem = ca_pem,
                       .verify_hostname = false,
                       .expected_uri = kServerUri});
  bj::object body{{"token", o.token}, {"csr", pki::csrPem(csr->get())}, {"platform", o.platform}};
  if (!o.name.empty()) body["name"] = o.name;
  if (!o.advertise.empty()) body["advertise"] = o.advertise;
  auto res = postJson(client, "/v1/enroll", body);
  if (!res) return res.error();
  auto host_id = json::requiredString(*res, "host_id");
  auto cert_pem = json::requiredString(*res, "certificate");
  auto name = json::requiredString(*res, "name");
  auto server_spki = json::requiredString(*res, "server_spki");
  if (!host_id || !cert_pem || !name) return internal("the enrollment answer is incomplete");
  if (!server_spki || !isSha256Hex(*server_spki))
    return internal("the enrollment answer has no server identity to pin (\"server_spki\")");
  auto cert = pki::certFromPem(*cert_pem);
  if (!cert) return internal("the server sent an invalid certificate");
  if (X509_check_private_key(cert->get(), key.get()) != 1)
    return internal("the server's certificate is not for this host's key");

  std::error_code ec;
  fs::create_directories(o.state_dir, ec);
  fs::permissions(o.state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (auto s = storeIdentity(o.state_dir, *cert_pem, crypto::privateKeyPem(key.get())); !s)
    return s.error();
  if (auto s = files::writeFileAtomic(o.state_dir / "ca.crt", ca_pem, 0644); !s) return s.error();
  bj::object state{{"host_id", *host_id},      {"server", o.server}, {"name", *name},
                   {"advertise", o.advertise}, {"ca_pin", pin},      {"server_spki", *server_spki}};
  if (auto s = storeEnrollment(o.state_dir, state); !s) return s.error();
  auto id = loadIdentity(o.state_dir);
  if (!id) return id.error();
  if (!id->has_value()) return internal("the stored identity cannot be read back");
  return **id;
}

Result<std::optional<Identity>> loadIdentity(const fs::path& dir) {
  if (!fs::exists(dir / "enrollment.json")) return std::optional<Identity>{};
  auto text = files::readFile(dir / "enrollment.json");
  if (!text) return text.error();
  auto o = json::parseObject(*text);
  if (!o) return invalidArgument("enrollment.json: " + o.error().message);
  Identity id;
  auto h = json::requiredString(*o, "host_id");
  auto s = json::requiredString(*o, "server");
  if (!h || !s) return invalidArgument("enrollment.json lacks host_id or server");
  id.host_id = *h;
  id.server = *s;
  if (auto n = json::optionalString(*o, "name"); n && *n) id.name = **n;
  if (auto a = json::optionalString(*o, "advertise"); a && *a) id.advertise = **a;
  if (auto p = json::optionalString(*o, "server_spki"); p && *p) {
    if (!isSha256Hex(**p)) return invalidArgument("enrollment.json: server_spki is not a SHA-256");
    id.server_spki = **p;
  }
  id.identity_pem = dir / "identity.pem";
  id.ca_pem = dir / "ca.crt";
  auto cert = pki::loadCert(id.identity_pem);
  if (!cert) return cert.error();
  id.not_after_ms = pki::notAfterMs(cert->get());
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notBefore(cert->get()), &tm) == 1)
    id.not_before_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return std::optional<Identity>(id);
}

Result<Identity> renewOnce(const Identity& cur) {
  auto ca = files::readFile(cur.ca_pem);
  if (!ca) return ca.error();
  http::Client client({.base_url = cur.server,
                       .ca_pem = *ca,
                       .cert_file = cur.identity_pem.string(),
                       .key_file = cur.identity_pem.string(),
                       .verify_hostname = false,
                       .expected_uri = kServerUri});
  auto key = pki::generateP256();
  auto csr = pki::makeCsr(key.get(), cur.name.empty() ? cur.host_id : cur.name);
  if (!csr) return csr.error();
  auto res = postJson(client, "/v1/pki/renew", bj::object{{"csr", pki::csrPem(csr->get())}});
  if (!res) return res.error();
  // Only the pinned server may hand this host a certificate; an identity without a pin (stored
  // before pins existed) learns it here, from the server it has always trusted.
  auto presented = pki::certFromPem(client.peerCertificatePem());
  if (!presented) return internal("no server certificate on the renewal connection");
  std::string presented_spki = pki::spkiSha256Hex(X509_get0_pubkey(presented->get()));
  if (!cur.server_spki.empty() && !crypto::constantTimeEqual(presented_spki, cur.server_spki))
    return permissionDenied("the renewal server is not the pinned server identity");
  std::string learned;
  if (cur.server_spki.empty()) {
    auto p = json::optionalString(*res, "server_spki");
    if (!p || !*p || !isSha256Hex(**p) || !crypto::constantTimeEqual(**p, presented_spki))
      return internal("the renewal answer has no usable server identity to pin");
    learned = **p;
  }
  auto cert_pem = json::requiredString(*res, "certificate");
  if (!cert_pem) return internal("the renewal answer has no certificate");
  auto cert = pki::certFromPem(*cert_pem);
  if (!cert || X509_check_private_key(cert->get(), key.get()) != 1)
    return internal("the renewed certificate is not for the new key");
  // One file holds certificate and key, replaced atomically: never a mismatched pair.
  auto dir = cur.identity_pem.parent_path();
  if (auto s = storeIdentity(dir, *cert_pem, crypto::privateKeyPem(key.get())); !s)
    return s.error();
  if (!learned.empty()) {
    auto text = files::readFile(dir / "enrollment.json");
    if (!text) return text.error();
    auto state = json::parseObject(*text);
    if (!state) return invalidArgument("enrollment.json: " + state.error().message);
    (*state)["server_spki"] = learned;
    if (auto s = storeEnrollment(dir, *state); !s) return s.error();
    spdlog::info("pinned the server identity sha256:{}", learned);
  }
  auto id = loadIdentity(dir);
  if (!id) return id.error();
  return **id;
}

Renewer::Renewer(Identity id, std::function<void(const Identity&)> on_renewed)
    : id_(std::move(id)), on_renewed_(std::move(on_renewed)) {}

Renewer::~Renewer() { stop(); }

void Renewer::start() {
  thread_ = std::thread([this] { run(); });
}

void Renewer::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Renewer::run() {
  std::mt19937_64 rng(std::random_device{}());
  for (;;) {
    int64_t life = std::max<int64_t>(id_.not_after_ms - id_.not_before_ms, 1000);
    // About two thirds of the lifetime, plus or minus 5% so a fleet does not renew in lockstep.
    std::uniform_int_distribution<int64_t> jitter(-life / 20, life / 20);
    int64_t at = id_.not_before_ms + life * 2 / 3 + jitter(rng);
    int64_t now = SystemClock::instance().nowMs();
    {
      std::unique_lock lk(mu_);
      if (cv_.wait_for(lk, std::chrono::milliseconds(std::max<int64_t>(0, at - now)),
                       [this] { return stop_; }))
        return;
    }
    for (;;) {
      auto r = renewOnce(id_);
      if (r) {
        id_ = *r;
        ++renewals_;
        spdlog::info("certificate renewed; valid until {}", id_.not_after_ms);
        on_renewed_(id_);
        break;
      }
      int64_t left = id_.not_after_ms - SystemClock::instance().nowMs();
      spdlog::warn("certificate renewal failed: {} ({} s left)", r.error().message, left / 1000);
      if (left <= 0) {
        spdlog::error("the certificate has expired: enroll again with a new token");
        return;
      }
      std::unique_lock lk(mu_);
      auto wait = std::chrono::milliseconds(std::clamp<int64_t>(left / 10, 1000, 60'000));
      if (cv_.wait_for(lk, wait, [this] { return stop_; })) return;
    }
  }
}

}  // namespace hwl::agent
