// The REST API of hwledger-server: construction, the route table (every route, its role and body
// limit, in one place) and health. The handlers live in one file per domain: api_tokens.cpp,
// api_events.cpp (events and the ledger), api_pki.cpp (enrollment), api_hosts.cpp, api_jobs.cpp,
// api_telemetry.cpp (telemetry and usage), api_plan.cpp (plans and placements).
#include "api.hpp"

#include <boost/json.hpp>

#include "hwl/planner/placement.hpp"
#include "hwl/probes/exporters.hpp"
#include "ledger/rows.hpp"
#include "params.hpp"
#include "web/dashboard.hpp"

namespace hwl::api {

namespace bj = boost::json;

Api::Api(ledger::Ledger& ledger, const Clock& clock, ApiSettings settings,
         const server::FleetCa* ca)
    : ledger_(ledger),
      clock_(clock),
      settings_(std::move(settings)),
      start_ms_(clock.nowMs()),
      auth_(ledger, clock, settings_.auth, ca),
      ca_(ca) {
  addCoreRoutes(routes_, this);
  if (ca_ != nullptr) addPkiRoutes(routes_, this);
  loadDenylist();
}

void Api::setFleet(FleetServices fleet) {
  fleet_ = std::move(fleet);
  addFleetRoutes(routes_, this);
}

void Api::addCoreRoutes(http::RouteTable& t, Api* self) {
  t.add({"GET", "/v1/health", "public", 0, [self](auto&, auto&) { return self->health(); }});
  t.add({"GET", "/v1/whoami", "public", 0, [self](auto& r, auto&) { return self->whoami(r); }});
  web::addDashboardRoutes(t);
  t.add({"POST", "/v1/tokens", "admin", 16 * 1024,
         [self](auto& r, auto&) { return self->createToken(r); }});
  t.add({"GET", "/v1/tokens", "admin", 0, [self](auto& r, auto&) { return self->listTokens(r); }});
  t.add({"DELETE", "/v1/tokens/{id}", "admin", 0,
         [self](auto& r, auto& p) { return self->revokeToken(r, p.at("id")); }});
  t.add({"GET", "/v1/events", "viewer", 0, [self](auto& r, auto&) { return self->events(r); }});
  t.add({"GET", "/v1/events/stream", "viewer", 0,
         [self](auto& r, auto&) { return self->eventStream(r); }});
  t.add({"GET", "/v1/ledger/verify", "viewer", 0,
         [self](auto& r, auto&) { return self->verify(r); }});
  t.add({"GET", "/v1/ledger/checkpoints", "viewer", 0,
         [self](auto& r, auto&) { return self->checkpoints(r); }});
  t.add(
      {"POST", "/v1/plan", "viewer", 256 * 1024, [self](auto& r, auto&) { return self->plan(r); }});
  t.add({"GET", "/v1/models", "viewer", 0, [self](auto& r, auto&) { return self->models(r); }});
  t.add({"GET", "/v1/hosts", "viewer", 0, [self](auto& r, auto&) { return self->hosts(r); }});
  t.add({"GET", "/v1/hosts/{id}", "viewer", 0,
         [self](auto& r, auto& p) { return self->host(r, p.at("id")); }});
}

void Api::addPkiRoutes(http::RouteTable& t, Api* self) {
  t.add({"GET", "/v1/pki/ca", "public", 0, [self](auto&, auto&) { return self->caCert(); }});
  t.add({"POST", "/v1/enroll-tokens", "operator", 16 * 1024,
         [self](auto& r, auto&) { return self->createEnrollToken(r); }});
  t.add({"POST", "/v1/enroll", "public", 64 * 1024,
         [self](auto& r, auto&) { return self->enroll(r); }});
  t.add({"POST", "/v1/pki/renew", "host", 32 * 1024,
         [self](auto& r, auto&) { return self->renew(r); }});
  t.add({"POST", "/v1/hosts/ssh", "operator", 128 * 1024,
         [self](auto& r, auto&) { return self->enrollSsh(r); }});
  t.add({"POST", "/v1/hosts/{id}/revoke", "admin", 16 * 1024,
         [self](auto& r, auto& p) { return self->revokeHost(r, p.at("id")); }});
}

void Api::addFleetRoutes(http::RouteTable& t, Api* self) {
  t.add({"GET", "/v1/gpus", "viewer", 0, [self](auto& r, auto&) { return self->gpus(r); }});
  t.add(
      {"GET", "/v1/telemetry", "viewer", 0, [self](auto& r, auto&) { return self->telemetry(r); }});
  t.add({"GET", "/v1/usage", "viewer", 0, [self](auto& r, auto&) { return self->usage(r); }});
  t.add({"POST", "/v1/jobs", "operator", 64 * 1024,
         [self](auto& r, auto&) { return self->submitJob(r); }});
  t.add({"GET", "/v1/jobs", "viewer", 0, [self](auto& r, auto&) { return self->jobs(r); }});
  t.add({"GET", "/v1/jobs/{id}", "viewer", 0,
         [self](auto& r, auto& p) { return self->job(r, p.at("id")); }});
  t.add({"GET", "/v1/jobs/{id}/logs", "viewer", 0,
         [self](auto& r, auto& p) { return self->jobLogs(r, p.at("id")); }});
  t.add({"DELETE", "/v1/jobs/{id}", "operator", 0,
         [self](auto& r, auto& p) { return self->cancelJob(r, p.at("id")); }});
  t.add({"GET", "/v1/placements", "viewer", 0,
         [self](auto& r, auto&) { return self->placements(r); }});
  t.add({"GET", "/v1/collector", "viewer", 0,
         [self](auto& r, auto&) { return self->collectorStatus(r); }});
  t.add({"GET", "/metrics", "metrics", 0,
         [self](auto& r, auto&) { return self->prometheusMetrics(r); }});
  t.add({"POST", "/v1/placements", "viewer", 256 * 1024,
         [self](auto& r, auto&) { return self->placements(r); }});
  t.add({"GET", "/v1/offers", "viewer", 0, [self](auto& r, auto&) { return self->offers(r); }});
  t.add({"GET", "/v1/rentals", "viewer", 0, [self](auto& r, auto&) { return self->rentals(r); }});
  t.add({"POST", "/v1/rentals", "operator", 16 * 1024,
         [self](auto& r, auto&) { return self->launchRental(r); }});
  t.add({"GET", "/v1/rentals/{id}", "viewer", 0,
         [self](auto& r, auto& p) { return self->rental(r, p.at("id")); }});
  t.add({"DELETE", "/v1/rentals/{id}", "operator", 0,
         [self](auto& r, auto& p) { return self->terminateRental(r, p.at("id")); }});
  t.add({"GET", "/v1/costs", "viewer", 0, [self](auto& r, auto&) { return self->costs(r); }});
  t.add({"GET", "/v1/report", "viewer", 0, [self](auto& r, auto&) { return self->report(r); }});
  t.add({"GET", "/v1/planner/accuracy", "viewer", 0,
         [self](auto& r, auto&) { return self->plannerAccuracy(r); }});
}

http::RouteTable Api::allRoutes(size_t default_body_limit) {
  http::RouteTable t(default_body_limit);
  addCoreRoutes(t, nullptr);
  addPkiRoutes(t, nullptr);
  addFleetRoutes(t, nullptr);
  return t;
}

http::Response Api::handle(http::Request& req) {
  auto r = routes_.dispatch(req);
  if (r.status == 429)
    r.headers.emplace_back("Retry-After", std::to_string(auth_.retryAfterS(req.remote_addr)));
  return r;
}

size_t Api::bodyLimit(std::string_view method, std::string_view path) const {
  return routes_.bodyLimit(method, path);
}

Result<http::Reply> Api::health() {
  return http::ok(bj::object{{"status", "ok"},
                             {"version", settings_.version},
                             {"uptime_s", (clock_.nowMs() - start_ms_) / 1000},
                             {"events", ledger_.headSeq()}});
}

// Who the caller is to this server: the token's (or admin certificate's) actor and role, for a
// client (the dashboard) that shows only what that role may do. A caller with no credentials at
// all is told so (a page opened before sign-in is not a failed authentication); any credential
// presented is checked as on every route, and a bad one is refused and recorded.
Result<http::Reply> Api::whoami(http::Request& req) {
  if (auto s = onlyParams(req, {}); !s) return s.error();
  if (!req.header("authorization") && !req.peer.present)
    return http::ok(bj::object{{"signed_in", false}});
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  return http::ok(bj::object{
      {"signed_in", true}, {"actor", who->actor}, {"role", ledger::roleName(who->role)}});
}

}  // namespace hwl::api
