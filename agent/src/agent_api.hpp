// The agent's HTTP API: health, info, telemetry, outbox, jobs (with live logs), Prometheus
// metrics. Handlers run on the HTTP worker pool.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent_config.hpp"
#include "hwl/http.hpp"
#include "hwl/jobs/supervisor.hpp"
#include "hwl/outbox/outbox.hpp"
#include "hwl/probes/sampler.hpp"
#include "hwl/routes.hpp"

namespace hwl::agent {

struct AgentContext {
  AgentConfig config;
  std::string host_id;  // "" before enrollment
  std::string hostname;
  std::vector<std::string> backends;
  boost::json::object platform;
  probes::Sampler* sampler = nullptr;
  jobs::Supervisor* supervisor = nullptr;
  outbox::Outbox* outbox = nullptr;
  int64_t start_ms = 0;
};

class AgentApi {
 public:
  explicit AgentApi(AgentContext ctx);
  http::Response handle(http::Request& req);
  // Only the server's identity pinned at enrollment (by its public key) may call the agent:
  // another certificate from the fleet CA, whatever SANs it carries, may not. Used in the TLS
  // handshake and again for every request. Without a pin (an identity stored before pins
  // existed, until its next renewal learns one) nobody is allowed.
  [[nodiscard]] bool peerAllowed(const http::PeerCert& peer) const;
  [[nodiscard]] size_t bodyLimit(std::string_view method, std::string_view path) const;
  [[nodiscard]] const http::RouteTable& routes() const { return routes_; }
  // The routes, for listing only (their handlers must not be called).
  static http::RouteTable allRoutes();

 private:
  static constexpr size_t kDefaultBodyLimit = 16 * 1024;
  static void addRoutes(http::RouteTable& t, AgentApi* self);
  Result<http::Reply> info();
  Result<http::Reply> telemetry();
  Result<http::Reply> history(http::Request& req);
  Result<http::Reply> outbox(http::Request& req);
  Result<http::Reply> submitJob(http::Request& req);
  Result<http::Reply> listJobs();
  Result<http::Reply> getJob(const std::string& id);
  Result<http::Reply> cancelJob(const std::string& id);
  Result<http::Reply> jobLogs(http::Request& req, const std::string& id);
  Result<http::Reply> metrics();

  AgentContext ctx_;
  // Bodies: a job spec (POST /v1/jobs) up to 256 KiB; nothing else takes a body.
  http::RouteTable routes_{kDefaultBodyLimit};
  mutable std::mutex pin_mu_;
  mutable std::string server_spki_;
};

}  // namespace hwl::agent
