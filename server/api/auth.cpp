// Bearer-token checks and the rate-limited refusal trail.
#include "auth.hpp"

#include "hwl/crypto.hpp"
#include "ledger/hosts_projection.hpp"
#include "pki/fleet_ca.hpp"

namespace hwl::api {

Authenticator::Authenticator(ledger::Ledger& ledger, const Clock& clock, AuthSettings settings)
    : ledger_(ledger), clock_(clock), settings_(settings) {}

std::string Authenticator::secretHash(std::string_view secret) {
  return crypto::hex(crypto::sha256(secret));
}

Error Authenticator::deny(const http::Request& req, std::string_view reason,
                          std::string_view token_id, Error err) {
  int64_t now = clock_.nowMs();
  int64_t suppressed = 0;
  {
    std::lock_guard lk(mu_);
    std::string key = req.remote_addr + "|" + std::string(reason);
    auto it = last_denied_.find(key);
    bool recent = it != last_denied_.end() && now - it->second < settings_.denied_window_ms;
    if (now - minute_start_ >= 60'000) {
      minute_start_ = now;
      minute_count_ = 0;
    }
    if (recent || minute_count_ >= settings_.denied_per_minute) {
      ++suppressed_;
      return err;
    }
    if (last_denied_.size() > 10'000) last_denied_.clear();
    last_denied_[key] = now;
    ++minute_count_;
    suppressed = suppressed_;
    suppressed_ = 0;
  }
  boost::json::object data{{"reason", reason},
                           {"remote", req.remote_addr},
                           {"method", req.method},
                           {"path", req.path.substr(0, 256)},
                           {"suppressed_before", suppressed}};
  if (!token_id.empty()) data["token_id"] = token_id.substr(0, 64);
  (void)ledger_.append("ledger", ledger::kAnyVersion, "system",
                       {ledger::NewEvent{"", "auth.denied", std::move(data)}});
  return err;
}

Result<Principal> Authenticator::authorize(const http::Request& req, ledger::Role needed) {
  // An operator's admin client certificate (verified by TLS against the fleet CA).
  if (req.peer.present) {
    auto admin = server::adminNameOf(req.peer.uris);
    if (!admin.empty()) return Principal{"cert:" + admin, ledger::Role::kAdmin};
  }
  auto h = req.header("authorization");
  const Error kUnauth = unauthenticated("a valid bearer token is required");
  if (!h) return deny(req, "missing_token", "", kUnauth);
  std::string_view v = *h;
  if (v.size() < 7 || (v.substr(0, 7) != "Bearer " && v.substr(0, 7) != "bearer "))
    return deny(req, "malformed_token", "", kUnauth);
  v.remove_prefix(7);
  auto dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= v.size() || v.size() > 256)
    return deny(req, "malformed_token", "", kUnauth);
  std::string id(v.substr(0, dot));
  std::string_view secret = v.substr(dot + 1);
  auto row = ledger_.withReader([&](sqlite::Db& db) { return ledger::findToken(db, id); });
  if (!row) return row.error();
  if (!row->has_value()) return deny(req, "unknown_token", id, kUnauth);
  const auto& t = **row;
  if (!crypto::constantTimeEqual(secretHash(secret), t.secret_sha256))
    return deny(req, "wrong_secret", id, kUnauth);
  if (t.revoked_ms) return deny(req, "revoked", id, kUnauth);
  if (t.expires_ms && clock_.nowMs() >= *t.expires_ms) return deny(req, "expired", id, kUnauth);
  if (static_cast<int>(t.role) < static_cast<int>(needed))
    return deny(req, "insufficient_role", id,
                permissionDenied("this needs the " + std::string(ledger::roleName(needed)) +
                                 " role"));
  return Principal{t.id, t.role};
}

Result<HostPrincipal> Authenticator::authorizeHost(const http::Request& req) {
  const Error kUnauth = unauthenticated("a host client certificate is required");
  if (!req.peer.present) return deny(req, "host_no_certificate", "", kUnauth);
  std::string id = server::hostIdOf(req.peer.uris);
  if (id.empty()) return deny(req, "host_wrong_identity", "", kUnauth);
  auto known = ledger_.withReader([&](sqlite::Db& db) -> Result<std::pair<bool, bool>> {
    auto h = ledger::findHost(db, id);
    if (!h) return h.error();
    if (!h->has_value()) return std::make_pair(false, false);
    auto st = db.prepare("SELECT 1 FROM host_certs WHERE serial = ? AND host_id = ?");
    if (!st) return st.error();
    st->bind(1, req.peer.serial_hex).bind(2, id);
    auto r = st->step();
    if (!r) return r.error();
    return std::make_pair(*r && (*h)->state != "revoked", true);
  });
  if (!known) return known.error();
  if (!known->second) return deny(req, "host_unknown", id, kUnauth);
  if (!known->first) return deny(req, "host_revoked_or_unknown_cert", id, kUnauth);
  return HostPrincipal{id, "host:" + id};
}

}  // namespace hwl::api
