// Operator authentication: bearer API tokens (stored hashed) checked against the tokens
// projection, admin client certificates checked against the CA's record of what it issued,
// roles, a per-source limit on failed authentications, and a rate-limited `auth.denied` trail.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "hwl/clock.hpp"
#include "hwl/http.hpp"
#include "ledger/rows.hpp"
#include "ledger/store.hpp"

namespace hwl::server {
class FleetCa;
}  // namespace hwl::server

namespace hwl::api {

struct Principal {
  std::string actor;  // token id
  ledger::Role role = ledger::Role::kViewer;
};

// An enrolled host, identified by the serial of its verified client certificate.
struct HostPrincipal {
  std::string host_id;
  std::string actor;  // "host:<id>"
};

struct AuthSettings {
  int64_t denied_window_ms = 10'000;  // one auth.denied per (remote, reason) per window
  int64_t denied_per_minute = 60;     // and at most this many per minute overall
  // Failed authentications per remote address: a token bucket of `failure_burst` failures that
  // refills at `failure_refill_per_s`. An empty bucket answers 429 (with Retry-After) to every
  // authenticated request from that address, without looking at its credentials.
  int64_t failure_burst = 30;
  double failure_refill_per_s = 1.0;
};

class Authenticator {
 public:
  Authenticator(ledger::Ledger& ledger, const Clock& clock, AuthSettings settings = {},
                const server::FleetCa* ca = nullptr);

  // Checks the bearer token (or a recorded admin client certificate) and the role; on refusal
  // records auth.denied (rate-limited) and returns the error to send (401, 403 or 429).
  Result<Principal> authorize(const http::Request& req, ledger::Role needed);

  // GET /metrics: a metrics client certificate the fleet CA recorded issuing (actor
  // "metrics:<name>"), or else what authorize() accepts for a viewer. A certificate that claims
  // the metrics identity without the record is refused, whatever token comes with it.
  Result<Principal> authorizeMetrics(const http::Request& req);

  // The host behind a verified client certificate: a serial the fleet CA issued to a host that is
  // enrolled and not revoked, carrying that host's identity and no other. Never from the body.
  Result<HostPrincipal> authorizeHost(const http::Request& req);

  // Records a refusal (rate-limited), counts it against the source, and returns `err`.
  Error refuse(const http::Request& req, std::string_view reason, std::string_view token_id,
               Error err) {
    return deny(req, reason, token_id, std::move(err));
  }
  // A 429 error when the request's source has used up its failed authentications (and records
  // that, rate-limited, as auth.denied "rate_limited"); nullopt otherwise.
  std::optional<Error> throttled(const http::Request& req);
  // Whole seconds until the source may try again (at least 1).
  int64_t retryAfterS(const std::string& remote);

  // A token is "ID.SECRET"; the ledger keeps SHA-256(SECRET) only.
  static std::string secretHash(std::string_view secret);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;
  };
  Error deny(const http::Request& req, std::string_view reason, std::string_view token_id,
             Error err, bool count_failure = true);
  void record(const http::Request& req, std::string_view reason, std::string_view token_id);
  // Under mu_: the bucket of `remote`, refilled to now.
  Bucket& bucket(const std::string& remote, int64_t now);

  ledger::Ledger& ledger_;
  const Clock& clock_;
  AuthSettings settings_;
  const server::FleetCa* ca_;
  std::mutex mu_;
  std::map<std::string, int64_t> last_denied_;  // "remote|reason" → time
  int64_t minute_start_ = 0;
  int64_t minute_count_ = 0;
  int64_t suppressed_ = 0;
  std::unordered_map<std::string, Bucket> failures_;  // remote address → bucket
};

}  // namespace hwl::api
