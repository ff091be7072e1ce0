// The operator REST API of hwledger-server: health, tokens, events (paged and live), ledger
// verification and checkpoints. Handlers run on the HTTP worker pool and may block.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "auth.hpp"
#include "hwl/clock.hpp"
#include "hwl/http.hpp"
#include "ledger/ledger.hpp"
#include "pki/fleet_ca.hpp"
#include "router.hpp"

namespace hwl::api {

struct ApiSettings {
  std::string version;
  int64_t agent_cert_lifetime_s = 7 * 24 * 3600;
  size_t default_body_limit = 1 << 20;
  std::chrono::milliseconds stream_heartbeat{15000};
  AuthSettings auth;
};

class Api {
 public:
  // `ca` may be null (no enrollment routes then).
  Api(ledger::Ledger& ledger, const Clock& clock, ApiSettings settings,
      const server::FleetCa* ca = nullptr);
  // For the TLS layer: false for a certificate of a revoked host (by host id or serial).
  [[nodiscard]] bool peerAllowed(const http::PeerCert& peer) const;
  http::Response handle(http::Request& req);
  [[nodiscard]] size_t bodyLimit(std::string_view method, std::string_view path) const;
  Router& router() { return router_; }
  Authenticator& auth() { return auth_; }

 private:
  http::Response health();
  http::Response createToken(http::Request& req);
  http::Response listTokens(http::Request& req);
  http::Response revokeToken(http::Request& req, const std::string& id);
  http::Response events(http::Request& req);
  http::Response eventStream(http::Request& req);
  http::Response verify(http::Request& req);
  http::Response checkpoints(http::Request& req);
  http::Response plan(http::Request& req);
  // Enrollment and host certificates (api_pki.cpp).
  void addPkiRoutes();
  http::Response caCert();
  http::Response createEnrollToken(http::Request& req);
  http::Response enroll(http::Request& req);
  http::Response renew(http::Request& req);
  http::Response revokeHost(http::Request& req, const std::string& id);
  http::Response hosts(http::Request& req);
  http::Response host(http::Request& req, const std::string& id);
  void loadDenylist();

  ledger::Ledger& ledger_;
  const Clock& clock_;
  ApiSettings settings_;
  int64_t start_ms_;
  Authenticator auth_;
  Router router_;
  const server::FleetCa* ca_;
  mutable std::mutex deny_mu_;
  std::set<std::string> revoked_hosts_;
  std::set<std::string> revoked_serials_;
};

// Creates a token: appends token.created and returns the one-time secret.
struct CreatedToken {
  std::string id;
  std::string token;  // "ID.SECRET", shown once
  ledger::Role role;
  std::optional<int64_t> expires_ms;
  int64_t seq;
};
Result<CreatedToken> createToken(ledger::Ledger& ledger, const Clock& clock, ledger::Role role,
                                 std::optional<int64_t> ttl_s, std::string note,
                                 std::string actor);

http::Response jsonResponse(unsigned status, const boost::json::value& v);

}  // namespace hwl::api
