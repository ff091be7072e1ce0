// The REST API of hwledger-server: health, tokens, events (paged and live), ledger verification
// and checkpoints, enrollment and host certificates, and the fleet (hosts, GPUs, jobs,
// telemetry, usage, plans and placements). Handlers run on the HTTP worker pool and may block.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "agentless/enroll_ssh.hpp"
#include "auth.hpp"
#include "collect/collector.hpp"
#include "dispatch/scheduler.hpp"
#include "hwl/clock.hpp"
#include "hwl/http.hpp"
#include "hwl/routes.hpp"
#include "ledger/rows.hpp"
#include "ledger/store.hpp"
#include "pki/fleet_ca.hpp"
#include "rentals/offer_catalog.hpp"
#include "rentals/rental_manager.hpp"
#include "stream_limits.hpp"

namespace hwl::api {

// What the fleet routes need beyond the ledger: live scrape results, the time series, and the
// scheduler (which calls hosts through their kind's driver).
struct FleetServices {
  collect::Collector* collector = nullptr;
  ledger::TimeSeries* store = nullptr;
  dispatch::Scheduler* scheduler = nullptr;  // placement and the host kinds' drivers
  std::string cert_file;  // the server's identity towards agents, which they pin at enrollment
  std::function<void()> on_hosts_changed;  // a host enrolled or was revoked
  // Enrollment over SSH (POST /v1/hosts/ssh); null: the route answers 412.
  const agentless::SshEnrollContext* ssh = nullptr;
  // Cloud rentals (api_rentals.cpp); null: no provider is configured.
  rentals::RentalManager* rentals = nullptr;
  rentals::OfferCatalog* offers = nullptr;
};

struct ApiSettings {
  std::string version;
  std::string public_url;  // validated "https://HOST[:PORT]", or empty
  int64_t agent_cert_lifetime_s = 7 * 24 * 3600;
  size_t default_body_limit = 1 << 20;
  std::chrono::milliseconds stream_heartbeat{15000};
  StreamLimitSettings streams;  // live event streams and followed logs
  AuthSettings auth;
  // The planner's named model configs (GET /v1/models); empty: none.
  std::filesystem::path model_dir;
};

class Api {
 public:
  // `ca` may be null (no enrollment routes then).
  Api(ledger::Ledger& ledger, const Clock& clock, ApiSettings settings,
      const server::FleetCa* ca = nullptr);
  // Enables the fleet routes (hosts with live data, GPUs, jobs, telemetry, usage, placements).
  void setFleet(FleetServices fleet);
  // For the TLS layer: false for a certificate of a revoked host (by host id or serial).
  [[nodiscard]] bool peerAllowed(const http::PeerCert& peer) const;
  http::Response handle(http::Request& req);
  [[nodiscard]] size_t bodyLimit(std::string_view method, std::string_view path) const;
  [[nodiscard]] const http::RouteTable& routes() const { return routes_; }
  // Every route the server can register (fleet and enrollment included), for listing only: the
  // handlers of this table must not be called.
  static http::RouteTable allRoutes(size_t default_body_limit);
  Authenticator& auth() { return auth_; }
  // Reads the revoked hosts and certificates from the ledger again (after a host.revoked that was
  // appended elsewhere than POST /v1/hosts/{id}/revoke).
  void loadDenylist();

 private:
  Result<http::Reply> health();
  Result<http::Reply> whoami(http::Request& req);
  Result<http::Reply> models(http::Request& req);
  // Replaces a request body's "model_name" with the config it names in model_dir.
  Status resolveModelName(boost::json::value& body) const;
  Result<http::Reply> createToken(http::Request& req);
  Result<http::Reply> listTokens(http::Request& req);
  Result<http::Reply> revokeToken(http::Request& req, const std::string& id);
  Result<http::Reply> events(http::Request& req);
  Result<http::Reply> eventStream(http::Request& req);
  Result<http::Reply> verify(http::Request& req);
  Result<http::Reply> checkpoints(http::Request& req);
  Result<http::Reply> plan(http::Request& req);
  // GET /metrics (api_hosts.cpp): the fleet in the Prometheus text format.
  Result<http::Reply> prometheusMetrics(http::Request& req);
  // Enrollment and host certificates (api_pki.cpp).
  static void addCoreRoutes(http::RouteTable& t, Api* self);
  static void addPkiRoutes(http::RouteTable& t, Api* self);
  Result<http::Reply> caCert();
  Result<http::Reply> createEnrollToken(http::Request& req);
  Result<http::Reply> enroll(http::Request& req);
  Result<http::Reply> renew(http::Request& req);
  Result<http::Reply> revokeHost(http::Request& req, const std::string& id);
  Result<http::Reply> hosts(http::Request& req);
  // POST /v1/hosts/ssh (api_hosts.cpp): enrollment of an agentless host, or of one that gets
  // the agent installed over SSH.
  Result<http::Reply> enrollSsh(http::Request& req);
  Result<http::Reply> host(http::Request& req, const std::string& id);
  // Fleet (api_hosts.cpp, api_jobs.cpp, api_telemetry.cpp, api_plan.cpp).
  static void addFleetRoutes(http::RouteTable& t, Api* self);
  Result<http::Reply> gpus(http::Request& req);
  Result<http::Reply> telemetry(http::Request& req);
  Result<http::Reply> usage(http::Request& req);
  Result<http::Reply> submitJob(http::Request& req);
  Result<http::Reply> jobs(http::Request& req);
  Result<http::Reply> job(http::Request& req, const std::string& id);
  Result<http::Reply> jobLogs(http::Request& req, const std::string& id);
  Result<http::Reply> cancelJob(http::Request& req, const std::string& id);
  Result<http::Reply> placements(http::Request& req);
  Result<http::Reply> collectorStatus(http::Request& req);
  // Rentals and costs (api_rentals.cpp).
  Result<http::Reply> offers(http::Request& req);
  Result<http::Reply> rentals(http::Request& req);
  Result<http::Reply> rental(http::Request& req, const std::string& id);
  Result<http::Reply> launchRental(http::Request& req);
  Result<http::Reply> terminateRental(http::Request& req, const std::string& id);
  Result<http::Reply> costs(http::Request& req);
  Result<http::Reply> report(http::Request& req);
  Result<http::Reply> plannerAccuracy(http::Request& req);
  boost::json::object hostView(const ledger::HostRow& h);
  boost::json::object hostView(const ledger::HostRow& h, const std::vector<ledger::GpuRow>& gpus,
                               const std::optional<collect::HostLive>& live);

  ledger::Ledger& ledger_;
  const Clock& clock_;
  ApiSettings settings_;
  int64_t start_ms_;
  Authenticator auth_;
  http::RouteTable routes_{settings_.default_body_limit};
  const server::FleetCa* ca_;
  mutable std::mutex deny_mu_;
  std::set<std::string> revoked_hosts_;
  std::set<std::string> revoked_serials_;
  FleetServices fleet_;
  // The read model of GET /v1/hosts: each page's answer as built at a ledger head and collector
  // generation, served again until either moves (never a state the ledger has not committed).
  struct HostsPage {
    int64_t head = -1;
    uint64_t generation = 0;
    std::shared_ptr<const std::string> body;
  };
  std::mutex pages_mu_;
  std::map<std::pair<std::string, int64_t>, HostsPage> host_pages_;
  StreamLimits streams_{settings_.streams};
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
                                 std::optional<int64_t> ttl_s, std::string note, std::string actor);

boost::json::object hostJson(const ledger::HostRow& h);

// A host name an operator can type (1-63 letters, digits, '.', '_', '-', starting with a letter or
// digit): what an enrollment token's host_hint may be, since it is printed into the enrollment
// command they paste.
[[nodiscard]] bool isHostHint(std::string_view s);

// Creates a single-use enrollment token (POST /v1/enroll-tokens, and the agent installer over
// SSH): appends token.created (kind enroll) and returns the one-time secret.
struct CreatedEnrollToken {
  std::string id;
  std::string token;  // "ID.SECRET", shown once
  int64_t expires_ms = 0;
  int64_t seq = 0;
};
Result<CreatedEnrollToken> createEnrollToken(ledger::Ledger& ledger, const Clock& clock,
                                             int64_t ttl_s, const std::string& host_hint,
                                             std::string actor);
// Revokes an enrollment token that no host has used: Code::kConflict when it was used (or
// revoked) meanwhile.
Status revokeUnusedEnrollToken(ledger::Ledger& ledger, const std::string& id, std::string actor);

}  // namespace hwl::api
