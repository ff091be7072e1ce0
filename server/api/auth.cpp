// Bearer-token and admin-certificate checks, the per-source failure limit, and the rate-limited
// refusal trail.
#include "auth.hpp"

#include <cmath>

#include "hwl/crypto.hpp"
#include "hwl/proto/events.hpp"
#include "ledger/rows.hpp"
#include "pki/fleet_ca.hpp"

namespace hwl::api {

namespace {
constexpr size_t kMaxTrackedSources = 10'000;

bool hasPrefix(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

Authenticator::Authenticator(ledger::Ledger& ledger, const Clock& clock, AuthSettings settings,
                             const server::FleetCa* ca)
    : ledger_(ledger), clock_(clock), settings_(settings), ca_(ca) {}

std::string Authenticator::secretHash(std::string_view secret) {
  return crypto::hex(crypto::sha256(secret));
}

Authenticator::Bucket& Authenticator::bucket(const std::string& remote, int64_t now) {
  const auto burst = static_cast<double>(settings_.failure_burst);
  auto it = failures_.find(remote);
  if (it == failures_.end()) {
    if (failures_.size() >= kMaxTrackedSources) {
      // Forget sources whose bucket has refilled; they are as if never seen.
      for (auto i = failures_.begin(); i != failures_.end();) {
        double t = i->second.tokens + static_cast<double>(now - i->second.updated_ms) / 1000.0 *
                                          settings_.failure_refill_per_s;
        i = t >= burst ? failures_.erase(i) : std::next(i);
      }
      if (failures_.size() >= 10 * kMaxTrackedSources) failures_.clear();
    }
    it = failures_.emplace(remote, Bucket{burst, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.updated_ms) {
    b.tokens = std::min(burst, b.tokens + static_cast<double>(now - b.updated_ms) / 1000.0 *
                                              settings_.failure_refill_per_s);
    b.updated_ms = now;
  }
  return b;
}

std::optional<Error> Authenticator::throttled(const http::Request& req) {
  if (settings_.failure_burst <= 0) return std::nullopt;  // the limit is switched off
  {
    std::lock_guard lk(mu_);
    auto it = failures_.find(req.remote_addr);
    if (it == failures_.end()) return std::nullopt;
    if (bucket(req.remote_addr, clock_.nowMs()).tokens >= 1.0) return std::nullopt;
  }
  record(req, "rate_limited", "");
  return Error{Code::kResourceExhausted,
               "too many failed authentications from " + req.remote_addr + "; retry later"};
}

int64_t Authenticator::retryAfterS(const std::string& remote) {
  std::lock_guard lk(mu_);
  auto it = failures_.find(remote);
  if (it == failures_.end() || settings_.failure_refill_per_s <= 0) return 60;
  double missing = 1.0 - bucket(remote, clock_.nowMs()).tokens;
  if (missing <= 0) return 1;
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(missing / settings_.failure_refill_per_s)));
}

void Authenticator::record(const http::Request& req, std::string_view reason,
                           std::string_view token_id) {
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
      return;
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
                       {ledger::NewEvent{"", proto::event::kAuthDenied, std::move(data)}});
}

Error Authenticator::deny(const http::Request& req, std::string_view reason,
                          std::string_view token_id, Error err, bool count_failure) {
  if (count_failure && settings_.failure_burst > 0) {
    std::lock_guard lk(mu_);
    Bucket& b = bucket(req.remote_addr, clock_.nowMs());
    b.tokens = std::max(0.0, b.tokens - 1.0);
  }
  record(req, reason, token_id);
  return err;
}

Result<Principal> Authenticator::authorize(const http::Request& req, ledger::Role needed) {
  if (auto t = throttled(req)) return *t;
  // An operator's admin client certificate: verified by TLS against the fleet CA, and then
  // honoured only when the CA recorded issuing exactly this certificate to an admin. Whatever
  // SANs a host's (or anyone else's) certificate carries gives it nothing here.
  if (req.peer.present) {
    bool claims_admin = false;
    for (const auto& u : req.peer.uris) claims_admin |= hasPrefix(u, server::kAdminUriPrefix);
    if (claims_admin) {
      std::optional<std::string> admin;
      if (ca_ != nullptr) admin = ca_->clientNameFor(server::ClientRole::kAdmin, req.peer);
      if (admin) {
        auto host_cert = ledger_.withReader(
            [&](ledger::ReadView& view) { return view.findHostCert(req.peer.serial_hex); });
        if (!host_cert) return host_cert.error();
        if (!host_cert->has_value()) return Principal{"cert:" + *admin, ledger::Role::kAdmin};
      }
      return deny(req, "admin_cert_not_issued", "",
                  permissionDenied("this certificate was not issued as an admin certificate"));
    }
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
  auto row = ledger_.withReader([&](ledger::ReadView& view) { return view.findToken(id); });
  if (!row) return row.error();
  if (!row->has_value()) return deny(req, "unknown_token", id, kUnauth);
  const auto& t = **row;
  if (!crypto::constantTimeEqual(secretHash(secret), t.secret_sha256))
    return deny(req, "wrong_secret", id, kUnauth);
  if (t.revoked_ms) return deny(req, "revoked", id, kUnauth);
  if (t.expires_ms && clock_.nowMs() >= *t.expires_ms) return deny(req, "expired", id, kUnauth);
  // An authenticated principal short of a role is not guessing credentials: not counted.
  if (static_cast<int>(t.role) < static_cast<int>(needed))
    return deny(
        req, "insufficient_role", id,
        permissionDenied("this needs the " + std::string(ledger::roleName(needed)) + " role"),
        false);
  return Principal{t.id, t.role};
}

Result<Principal> Authenticator::authorizeMetrics(const http::Request& req) {
  if (auto t = throttled(req)) return *t;
  if (req.peer.present) {
    bool claims_metrics = false;
    for (const auto& u : req.peer.uris) claims_metrics |= hasPrefix(u, server::kMetricsUriPrefix);
    if (claims_metrics) {
      if (ca_ != nullptr)
        if (auto name = ca_->clientNameFor(server::ClientRole::kMetrics, req.peer))
          return Principal{"metrics:" + *name, ledger::Role::kViewer};
      return deny(req, "metrics_cert_not_issued", "",
                  permissionDenied("this certificate was not issued as a metrics certificate"));
    }
  }
  return authorize(req, ledger::Role::kViewer);
}

Result<HostPrincipal> Authenticator::authorizeHost(const http::Request& req) {
  if (auto t = throttled(req)) return *t;
  const Error kUnauth = unauthenticated("a host client certificate is required");
  if (!req.peer.present) return deny(req, "host_no_certificate", "", kUnauth);
  // The host is the one the ledger recorded this serial as issued to; the SANs must agree.
  auto issued =
      ledger_.withReader([&](ledger::ReadView& view) -> Result<std::optional<std::string>> {
        auto cert = view.findHostCert(req.peer.serial_hex);
        if (!cert) return cert.error();
        if (!cert->has_value() ||
            !crypto::constantTimeEqual((*cert)->spki, req.peer.spki_sha256_hex))
          return std::optional<std::string>{};
        return std::optional<std::string>((*cert)->host_id);
      });
  if (!issued) return issued.error();
  if (!issued->has_value())
    return deny(req, "host_cert_not_issued", server::hostIdOf(req.peer.uris), kUnauth);
  const std::string& id = **issued;
  bool own = false, foreign = false;
  for (const auto& u : req.peer.uris) {
    if (u == server::kHostUriPrefix + id)
      own = true;
    else
      foreign = true;
  }
  if (!own || foreign) return deny(req, "host_wrong_identity", id, kUnauth);
  auto h = ledger_.withReader([&](ledger::ReadView& view) { return view.findHost(id); });
  if (!h) return h.error();
  if (!h->has_value()) return deny(req, "host_unknown", id, kUnauth);
  if ((*h)->state == proto::HostState::kRevoked) return deny(req, "host_revoked", id, kUnauth);
  return HostPrincipal{id, "host:" + id};
}

}  // namespace hwl::api
