// Operator authentication: bearer API tokens (stored hashed) checked against the tokens
// projection, roles, and a rate-limited `auth.denied` trail.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "hwl/clock.hpp"
#include "hwl/http.hpp"
#include "ledger/ledger.hpp"
#include "ledger/tokens_projection.hpp"

namespace hwl::api {

struct Principal {
  std::string actor;  // token id
  ledger::Role role = ledger::Role::kViewer;
};

// An enrolled host, identified by the SAN of its verified client certificate.
struct HostPrincipal {
  std::string host_id;
  std::string actor;  // "host:<id>"
};

struct AuthSettings {
  int64_t denied_window_ms = 10'000;    // one auth.denied per (remote, reason) per window
  int64_t denied_per_minute = 60;       // and at most this many per minute overall
};

class Authenticator {
 public:
  Authenticator(ledger::Ledger& ledger, const Clock& clock, AuthSettings settings = {});

  // Checks the bearer token and the role; on refusal records auth.denied (rate-limited) and
  // returns the error to send (401 or 403).
  Result<Principal> authorize(const http::Request& req, ledger::Role needed);

  // The host behind a verified client certificate: enrolled, not revoked, a certificate the
  // fleet CA issued to it. Never from the request body.
  Result<HostPrincipal> authorizeHost(const http::Request& req);

  // Records a refusal (rate-limited) and returns `err` for the caller to send.
  Error refuse(const http::Request& req, std::string_view reason, std::string_view token_id,
               Error err) {
    return deny(req, reason, token_id, std::move(err));
  }

  // A token is "ID.SECRET"; the ledger keeps SHA-256(SECRET) only.
  static std::string secretHash(std::string_view secret);

 private:
  Error deny(const http::Request& req, std::string_view reason, std::string_view token_id,
             Error err);

  ledger::Ledger& ledger_;
  const Clock& clock_;
  AuthSettings settings_;
  std::mutex mu_;
  std::map<std::string, int64_t> last_denied_;  // "remote|reason" → time
  int64_t minute_start_ = 0;
  int64_t minute_count_ = 0;
  int64_t suppressed_ = 0;
};

}  // namespace hwl::api
