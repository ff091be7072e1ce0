// Enrollment of agents (single-use tokens, CSRs, host certificates), certificate renewal over
// mutual TLS, revocation with a denylist checked at the handshake and on every request.
#include <openssl/x509.h>

#include <boost/json.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api.hpp"
#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/pki.hpp"
#include "hwl/proto/events.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ledger/rows.hpp"
#include "params.hpp"

namespace hwl::api {

namespace bj = boost::json;

namespace {

constexpr int64_t kEnrollTtlDefaultS = 15 * 60;

constexpr int64_t kEnrollTtlMaxS = 24 * 3600;

}  // namespace

bool isHostHint(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(s.front())) return false;
  for (char c : s)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

Result<CreatedEnrollToken> createEnrollToken(ledger::Ledger& ledger, const Clock& clock,
                                             int64_t ttl_s, const std::string& host_hint,
                                             std::string actor) {
  if (ttl_s < 1 || ttl_s > kEnrollTtlMaxS)
    return invalidArgument("an enrollment token lives 1 to " + std::to_string(kEnrollTtlMaxS) +
                           " s");
  if (!host_hint.empty() && !isHostHint(host_hint))
    return invalidArgument("a host hint must be 1-63 letters, digits, '.', '_' or '-'");
  CreatedEnrollToken t;
  t.id = crypto::newId("enr_", 8);
  std::string secret = crypto::base64url(crypto::randomBytes(32));
  t.expires_ms = clock.nowMs() + ttl_s * 1000;
  bj::object data{{"kind", "enroll"},
                  {"id", t.id},
                  {"secret_sha256", Authenticator::secretHash(secret)},
                  {"expires_ms", t.expires_ms},
                  {"host_hint", host_hint}};
  auto r = ledger.append("token/" + t.id, ledger::kNoStream, std::move(actor),
                         {ledger::NewEvent{"", proto::event::kTokenCreated, std::move(data)}});
  if (!r) return r.error();
  t.token = t.id + "." + secret;
  t.seq = r->seqs.front();
  return t;
}

Status revokeUnusedEnrollToken(ledger::Ledger& ledger, const std::string& id, std::string actor) {
  // Version 1 is token.created alone: a token.used (or an earlier revocation) makes this a
  // conflict, so a token that enrolled a host is never recorded as revoked after the fact.
  auto r =
      ledger.append("token/" + id, 1, std::move(actor),
                    {ledger::NewEvent{"", proto::event::kTokenRevoked, bj::object{{"id", id}}}});
  if (!r) {
    if (r.error().code == Code::kConflict)
      return conflict("enrollment token \"" + id + "\" was used or revoked meanwhile");
    return r.error();
  }
  return {};
}

namespace {

// SHA-256 of the SubjectPublicKeyInfo of the identity the server calls agents with (the first
// certificate of `cert_file`). Agents pin it at enrollment and accept no other caller.
Result<std::string> clientIdentitySpki(const std::string& cert_file) {
  if (cert_file.empty()) return internal("the server's agent-facing identity is not configured");
  auto c = pki::loadCert(cert_file);
  if (!c) return c.error();
  return pki::spkiSha256Hex(X509_get0_pubkey(c->get()));
}

}  // namespace

void Api::loadDenylist() {
  auto rows = ledger_.withReader([](ledger::ReadView& view) { return view.revokedHosts(); });
  if (!rows) return;
  std::lock_guard lk(deny_mu_);
  revoked_hosts_ = std::move(rows->first);
  revoked_serials_ = std::move(rows->second);
}

bool Api::peerAllowed(const http::PeerCert& peer) const {
  std::lock_guard lk(deny_mu_);
  if (revoked_serials_.count(peer.serial_hex) != 0) return false;
  auto id = server::hostIdOf(peer.uris);
  return id.empty() || revoked_hosts_.count(id) == 0;
}

Result<http::Reply> Api::caCert() {
  http::Response r;
  r.content_type = "application/x-pem-file";
  r.body = ca_->certPem();
  return http::raw(std::move(r));
}

Result<http::Reply> Api::createEnrollToken(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  auto body = json::parseObject(req.body.empty() ? "{}" : req.body);
  if (!body) return body.error();
  if (auto s = json::checkKeys(*body, {"ttl_s", "host_hint"}); !s) return s.error();
  auto ttl = json::optionalInt(*body, "ttl_s");
  if (!ttl) return ttl.error();
  int64_t ttl_s = ttl->value_or(kEnrollTtlDefaultS);
  if (ttl_s < 1 || ttl_s > kEnrollTtlMaxS)
    return invalidArgument("field \"ttl_s\" must be between 1 and " +
                           std::to_string(kEnrollTtlMaxS));
  auto hint = json::optionalString(*body, "host_hint");
  if (!hint) return hint.error();
  if (*hint && !(*hint)->empty() && !isHostHint(**hint))
    return invalidArgument(
        "field \"host_hint\" must be 1-63 letters, digits, '.', '_' or '-', starting with a "
        "letter or digit");
  auto created = api::createEnrollToken(ledger_, clock_, ttl_s, hint->value_or(""), who->actor);
  if (!created) return created.error();
  const std::string& id = created->id;
  const int64_t expires = created->expires_ms;
  bj::object answer{{"id", id},
                    {"token", created->token},
                    {"expires_ms", expires},
                    {"ca_pin", ca_->pin()},
                    {"host_hint", hint->value_or("")}};
  if (!settings_.public_url.empty()) answer["server_url"] = settings_.public_url;
  return http::created(std::move(answer));
}

Result<http::Reply> Api::enroll(http::Request& req) {
  if (auto t = auth_.throttled(req)) return *t;
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  if (auto s = json::checkKeys(*body, {"token", "csr", "name", "advertise", "platform"}); !s)
    return s.error();
  auto token = json::requiredString(*body, "token");
  auto csr_pem = json::requiredString(*body, "csr");
  auto name = json::optionalString(*body, "name");
  auto advertise = json::optionalString(*body, "advertise");
  for (const auto* r : {&token, &csr_pem})
    if (!*r) return r->error();
  for (const auto* r : {&name, &advertise})
    if (!*r) return r->error();
  bj::object platform;
  if (auto it = body->find("platform"); it != body->end()) {
    if (!it->value().is_object()) return invalidArgument("field \"platform\" must be an object");
    platform = it->value().get_object();
    if (auto s = json::checkKeys(platform,
                                 {"os", "kernel", "cpu", "cpu_cores", "memory_bytes", "hostname",
                                  "agent_version", "gpus"},
                                 "platform");
        !s)
      return s.error();
    if (bj::serialize(platform).size() > 16 * 1024)
      return invalidArgument("field \"platform\" is too large");
  }
  // Only an IP literal or an RFC 1123 host name with a port: the value becomes a SAN.
  if (*advertise && **advertise != "") {
    if (auto hp = server::parseAdvertise(**advertise); !hp) return hp.error();
  }
  if (*name && ((*name)->empty() || (*name)->size() > 128))
    return invalidArgument("field \"name\" must be 1 to 128 bytes");

  // The token: unknown, wrong, used and expired all get the same answer.
  const Error kRefused = unauthenticated("the enrollment token is not valid");
  auto dot = token->find('.');
  if (dot == std::string::npos || token->size() > 256)
    return auth_.refuse(req, "enroll_malformed_token", "", kRefused);
  std::string tid = token->substr(0, dot);
  std::string secret = token->substr(dot + 1);
  auto row = ledger_.withReader([&](ledger::ReadView& view) { return view.findEnrollToken(tid); });
  if (!row) return row.error();
  if (!row->has_value()) return auth_.refuse(req, "enroll_unknown_token", tid, kRefused);
  const auto& t = **row;
  if (!crypto::constantTimeEqual(Authenticator::secretHash(secret), t.secret_sha256))
    return auth_.refuse(req, "enroll_wrong_secret", tid, kRefused);
  if (t.used_ms) return auth_.refuse(req, "enroll_token_used", tid, kRefused);
  if (t.revoked_ms) return auth_.refuse(req, "enroll_token_revoked", tid, kRefused);
  if (clock_.nowMs() >= t.expires_ms)
    return auth_.refuse(req, "enroll_token_expired", tid, kRefused);

  auto csr = ca_->checkCsr(*csr_pem);
  if (!csr) return csr.error();
  auto server_spki = clientIdentitySpki(fleet_.cert_file);
  if (!server_spki) return server_spki.error();
  std::string host_id = crypto::newId("host-", 6);
  auto cert =
      ca_->issueHost(csr->get(), host_id, settings_.agent_cert_lifetime_s, advertise->value_or(""));
  if (!cert) return cert.error();
  std::string host_name = name->value_or(t.host_hint.empty() ? host_id : t.host_hint);

  ledger::AppendRequest ar;
  ar.actor = "enroll:" + tid;
  // Expected version 1 on the token's stream makes it single use, even for concurrent attempts.
  ar.parts.push_back(
      {"token/" + tid,
       1,
       {{"", proto::event::kTokenUsed, bj::object{{"id", tid}, {"host_id", host_id}}}}});
  bj::object enrolled{{"host_id", host_id},
                      {"name", host_name},
                      {"address", advertise->value_or("")},
                      {"cert_serial", cert->serial_hex},
                      {"cert_spki", cert->spki_sha256_hex},
                      {"cert_not_after_ms", cert->not_after_ms},
                      {"token_id", tid},
                      {"platform", platform}};
  ar.parts.push_back({"host/" + host_id,
                      ledger::kNoStream,
                      {{"", proto::event::kHostEnrolled, std::move(enrolled)}}});
  auto r = ledger_.append(std::move(ar));
  if (!r) {
    if (r.error().code == Code::kConflict)
      return auth_.refuse(req, "enroll_token_used", tid, kRefused);
    return r.error();
  }
  if (fleet_.on_hosts_changed) fleet_.on_hosts_changed();
  return http::created(bj::object{{"host_id", host_id},
                                  {"name", host_name},
                                  {"certificate", cert->pem},
                                  {"ca", ca_->certPem()},
                                  {"expires_ms", cert->not_after_ms},
                                  {"server_spki", *server_spki},
                                  {"seq", r->seqs.back()}});
}

Result<http::Reply> Api::renew(http::Request& req) {
  auto who = auth_.authorizeHost(req);
  if (!who) return who.error();
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  if (auto s = json::checkKeys(*body, {"csr"}); !s) return s.error();
  auto csr_pem = json::requiredString(*body, "csr");
  if (!csr_pem) return csr_pem.error();
  auto csr = ca_->checkCsr(*csr_pem);
  if (!csr) return csr.error();
  // A revocation that commits while the certificate is issued makes the append below fail: the
  // version is read before the host's state is checked again (see Ledger::streamVersion).
  auto version = ledger_.streamVersion("host/" + who->host_id);
  if (!version) return version.error();
  auto h = ledger_.withReader([&](ledger::ReadView& view) { return view.findHost(who->host_id); });
  if (!h || !h->has_value()) return internal("host vanished");
  if ((*h)->state == proto::HostState::kRevoked)
    return unauthenticated("host \"" + who->host_id + "\" is revoked");
  auto server_spki = clientIdentitySpki(fleet_.cert_file);
  if (!server_spki) return server_spki.error();
  auto cert =
      ca_->issueHost(csr->get(), who->host_id, settings_.agent_cert_lifetime_s, (*h)->address);
  if (!cert) return cert.error();
  auto r = ledger_.append("host/" + who->host_id, *version, who->actor,
                          {{"", proto::event::kHostCertRenewed,
                            bj::object{{"host_id", who->host_id},
                                       {"cert_serial", cert->serial_hex},
                                       {"cert_spki", cert->spki_sha256_hex},
                                       {"cert_not_after_ms", cert->not_after_ms},
                                       {"previous_serial", req.peer.serial_hex}}}});
  if (!r) return r.error();
  return http::ok(bj::object{{"host_id", who->host_id},
                             {"certificate", cert->pem},
                             {"expires_ms", cert->not_after_ms},
                             {"server_spki", *server_spki}});
}

Result<http::Reply> Api::revokeHost(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kAdmin);
  if (!who) return who.error();
  std::string reason;
  if (!req.body.empty()) {
    auto body = json::parseObject(req.body);
    if (!body) return body.error();
    if (auto s = json::checkKeys(*body, {"reason"}); !s) return s.error();
    auto r = json::optionalString(*body, "reason");
    if (!r) return r.error();
    reason = r->value_or("");
    if (reason.size() > 256) return invalidArgument("field \"reason\" is longer than 256 bytes");
  }
  // The version is read before the host's state (see Ledger::streamVersion), so that of two
  // concurrent revocations only one appends.
  auto version = ledger_.streamVersion("host/" + id);
  if (!version) return version.error();
  auto h = ledger_.withReader([&](ledger::ReadView& view) { return view.findHost(id); });
  if (!h) return h.error();
  if (!h->has_value()) return notFound("no host \"" + id + "\"");
  if ((*h)->state == proto::HostState::kRevoked)
    return conflict("host \"" + id + "\" is already revoked");
  auto r = ledger_.append(
      "host/" + id, *version, who->actor,
      {{"", proto::event::kHostRevoked, bj::object{{"host_id", id}, {"reason", reason}}}});
  if (!r) {
    if (r.error().code == Code::kConflict)
      return conflict("host \"" + id + "\" changed while it was being revoked; try again");
    return r.error();
  }
  loadDenylist();
  // An agentless host's key, if the server kept one, goes with it.
  if ((*h)->kind == proto::HostKind::kSsh && fleet_.ssh != nullptr) fleet_.ssh->keys.remove(id);
  if (fleet_.on_hosts_changed) fleet_.on_hosts_changed();
  auto after = ledger_.withReader([&](ledger::ReadView& view) { return view.findHost(id); });
  if (!after || !after->has_value()) return internal("host vanished");
  return http::ok(hostJson(**after));
}

}  // namespace hwl::api
