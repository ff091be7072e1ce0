// Agent API handlers.
#include "agent_api.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <thread>

#include "enrollment.hpp"
#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/pki.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/probes/procfs.hpp"
#include "hwl/proto/job_spec.hpp"
#include "process_match.hpp"

namespace hwl::agent {

namespace bj = boost::json;

AgentApi::AgentApi(AgentContext ctx) : ctx_(std::move(ctx)) {
  addRoutes(routes_, this);
  if (ctx_.config.dev) return;
  if (auto id = loadIdentity(ctx_.config.state_dir); id && id->has_value())
    server_spki_ = (*id)->server_spki;
}

bool AgentApi::peerAllowed(const http::PeerCert& peer) const {
  if (!peer.present) return false;
  // A metrics scraper's certificate from the fleet CA (the chain is checked by TLS): admitted to
  // the connection; handle() lets it read GET /metrics and nothing else.
  if (pki::isMetricsIdentity(peer.uris)) return true;
  std::lock_guard lk(pin_mu_);
  if (server_spki_.empty()) {
    // A renewal may have pinned the server since this process started.
    if (auto id = loadIdentity(ctx_.config.state_dir); id && id->has_value())
      server_spki_ = (*id)->server_spki;
    if (server_spki_.empty()) return false;
  }
  return crypto::constantTimeEqual(peer.spki_sha256_hex, server_spki_);
}

void AgentApi::addRoutes(http::RouteTable& t, AgentApi* self) {
  // "server": the server pinned at enrollment; "metrics": it, or a metrics identity (handle()).
  t.add({"GET", "/metrics", "metrics", 0, [self](auto&, auto&) { return self->metrics(); }});
  t.add({"GET", "/v1/health", "server", 0, [self](auto&, auto&) {
           return http::ok(bj::object{
               {"status", "ok"}, {"version", kAgentVersion}, {"host_id", self->ctx_.host_id}});
         }});
  t.add({"GET", "/v1/info", "server", 0, [self](auto&, auto&) { return self->info(); }});
  t.add({"GET", "/v1/telemetry", "server", 0, [self](auto&, auto&) { return self->telemetry(); }});
  t.add({"GET", "/v1/telemetry/history", "server", 0,
         [self](auto& r, auto&) { return self->history(r); }});
  t.add({"GET", "/v1/outbox", "server", 0, [self](auto& r, auto&) { return self->outbox(r); }});
  t.add({"POST", "/v1/jobs", "server", 256 * 1024,
         [self](auto& r, auto&) { return self->submitJob(r); }});
  t.add({"GET", "/v1/jobs", "server", 0, [self](auto&, auto&) { return self->listJobs(); }});
  t.add({"GET", "/v1/jobs/{id}", "server", 0,
         [self](auto&, auto& p) { return self->getJob(p.at("id")); }});
  t.add({"DELETE", "/v1/jobs/{id}", "server", 0,
         [self](auto&, auto& p) { return self->cancelJob(p.at("id")); }});
  t.add({"GET", "/v1/jobs/{id}/logs", "server", 0,
         [self](auto& r, auto& p) { return self->jobLogs(r, p.at("id")); }});
}

http::RouteTable AgentApi::allRoutes() {
  http::RouteTable t(kDefaultBodyLimit);
  addRoutes(t, nullptr);
  return t;
}

size_t AgentApi::bodyLimit(std::string_view method, std::string_view path) const {
  return routes_.bodyLimit(method, path);
}

http::Response AgentApi::handle(http::Request& req) {
  if (!ctx_.config.dev && !peerAllowed(req.peer))
    return http::errorResponse(
        permissionDenied("only the server this agent enrolled with may call it"));
  if (!ctx_.config.dev && pki::isMetricsIdentity(req.peer.uris) &&
      routes_.roleOf(req.method, req.path) != "metrics")
    return http::errorResponse(permissionDenied("a metrics identity may read GET /metrics only"));
  return routes_.dispatch(req);
}

Result<http::Reply> AgentApi::info() {
  bj::object o{{"host_id", ctx_.host_id},
               {"hostname", ctx_.hostname},
               {"agent_version", kAgentVersion},
               {"platform", ctx_.platform}};
  const auto& jc = ctx_.supervisor->containment();
  o["job_containment"] = bj::object{{"kind", jobs::containmentName(jc.kind())},
                                    {"pids_limit", jc.enforcesPids()},
                                    {"memory_limit", jc.enforcesMemory()},
                                    {"description", jc.description()}};
  bj::array backends;
  for (const auto& b : ctx_.backends) backends.push_back(bj::string(b));
  o["probe_backends"] = std::move(backends);
  bj::array gpus;
  if (auto s = ctx_.sampler->latest())
    for (const auto& g : s->gpus) gpus.push_back(probes::toJson(g));
  o["gpus"] = std::move(gpus);
  return http::ok(o);
}

Result<http::Reply> AgentApi::telemetry() {
  auto s = ctx_.sampler->latest();
  if (!s) return unavailable("no sample has been taken yet");
  probes::Sample sample = *s;
  matchJobProcesses(sample, ctx_.supervisor->jobProcesses());
  return http::ok(probes::toJson(sample));
}

Result<http::Reply> AgentApi::history(http::Request& req) {
  auto it = req.query.find("gpu");
  bj::object out;
  std::vector<std::string> uuids;
  if (it != req.query.end() && !it->second.empty())
    uuids.push_back(it->second);
  else
    uuids = ctx_.sampler->gpuUuids();
  bj::array gpus;
  for (const auto& uuid : uuids) {
    auto readings = ctx_.sampler->history(uuid);
    if (readings.empty() && it != req.query.end())
      return notFound("no GPU \"" + uuid + "\" on this host");
    bj::array arr;
    for (const auto& r : readings) {
      auto o = probes::toJson(r.gpu);
      o["time_ms"] = r.time_ms;
      arr.push_back(std::move(o));
    }
    gpus.push_back(bj::object{{"uuid", uuid}, {"readings", std::move(arr)}});
  }
  return http::ok(bj::object{{"gpus", std::move(gpus)}});
}

Result<http::Reply> AgentApi::outbox(http::Request& req) {
  auto after = http::queryInt(req, "after", 0, INT64_MAX);
  auto limit = http::queryInt(req, "limit", 1, 10'000);
  if (!after) return after.error();
  if (!limit) return limit.error();
  uint64_t a = static_cast<uint64_t>(after->value_or(0));
  // Asking for entries after N says the entries up to N are safely in the server's ledger.
  if (a > 0) {
    if (auto s = ctx_.outbox->acknowledge(a); !s) return s.error();
  }
  auto entries = ctx_.outbox->read(a, static_cast<size_t>(limit->value_or(500)));
  bj::array arr;
  for (const auto& e : entries) arr.push_back(e.toJson());
  auto st = ctx_.outbox->stats();
  return http::ok(bj::object{{"host_id", ctx_.host_id},
                             {"entries", std::move(arr)},
                             {"last_seq", st.last_seq},
                             {"acknowledged_seq", st.acknowledged_seq},
                             {"near_full", st.near_full}});
}

Result<http::Reply> AgentApi::submitJob(http::Request& req) {
  auto body = json::parse(req.body);
  if (!body) return body.error();
  std::vector<std::string> uuids;
  if (auto s = ctx_.sampler->latest())
    for (const auto& g : s->gpus) uuids.push_back(g.uuid);
  auto spec = proto::parseJobSpec(*body, uuids, ctx_.config.jobs_root);
  if (!spec) return spec.error();
  auto existing = ctx_.supervisor->get(spec->id);
  auto info = ctx_.supervisor->submit(*spec);
  if (!info) return info.error();
  return http::Reply{existing ? 200u : 201u, info->toJson(), std::nullopt};
}

Result<http::Reply> AgentApi::listJobs() {
  bj::array arr;
  for (const auto& j : ctx_.supervisor->list()) arr.push_back(j.toJson());
  return http::ok(bj::object{{"jobs", std::move(arr)}});
}

Result<http::Reply> AgentApi::getJob(const std::string& id) {
  auto j = ctx_.supervisor->get(id);
  if (!j) return j.error();
  return http::ok(j->toJson());
}

Result<http::Reply> AgentApi::cancelJob(const std::string& id) {
  auto j = ctx_.supervisor->cancel(id);
  if (!j) return j.error();
  return http::accepted(j->toJson());
}

Result<http::Reply> AgentApi::jobLogs(http::Request& req, const std::string& id) {
  auto tail = http::queryInt(req, "tail", 0, 100'000);
  if (!tail) return tail.error();
  auto job = ctx_.supervisor->get(id);
  if (!job) return job.error();
  bool follow = req.query.count("follow") != 0 && req.query["follow"] != "0" &&
                req.query["follow"] != "false";
  if (!follow) {
    auto text = ctx_.supervisor->logs(id, static_cast<size_t>(tail->value_or(100)));
    if (!text) return text.error();
    http::Response r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(*text);
    return http::raw(std::move(r));
  }
  http::Response r;
  r.content_type = "text/plain; charset=utf-8";
  auto* sup = ctx_.supervisor;
  size_t tail_lines = static_cast<size_t>(tail->value_or(0));
  r.stream = [sup, id, tail_lines](http::StreamWriter& w) {
    uint64_t offset = 0;
    if (tail_lines > 0) {
      // Start with the last lines, then follow from the end of what exists now.
      auto t = sup->logs(id, tail_lines);
      if (t && !w.write(*t)) return;
      for (;;) {
        auto c = sup->readLog(id, offset, 1 << 20);
        if (!c || c->data.empty()) break;
        offset = c->next_offset;
      }
    }
    while (!w.stopping()) {
      auto c = sup->readLog(id, offset, 64 * 1024);
      if (!c) return;
      if (!c->data.empty()) {
        offset = c->next_offset;
        if (!w.write(c->data)) return;
        continue;
      }
      auto j = sup->get(id);
      if (!j || jobs::isTerminal(j->state)) {
        // One more read after the end: bytes written just before the exit.
        auto last = sup->readLog(id, offset, 1 << 20);
        if (last && !last->data.empty()) w.write(last->data);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  };
  return http::raw(std::move(r));
}

Result<http::Reply> AgentApi::metrics() {
  probes::AgentSelfStats self;
  if (auto p = probes::readProcessStats()) self = *p;
  auto ss = ctx_.sampler->stats();
  self.samples_total = ss.samples_total;
  self.sample_errors_total = ss.sample_errors_total;
  auto os = ctx_.outbox->stats();
  self.outbox_entries = os.entries;
  self.outbox_capacity_entries = os.capacity;
  self.start_time_seconds = static_cast<double>(ctx_.start_ms) / 1000.0;
  self.backends = ctx_.backends;
  self.version = kAgentVersion;
  probes::Sample empty;
  auto s = ctx_.sampler->latest();
  http::Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = probes::renderPrometheus(s ? *s : empty, ctx_.hostname, self,
                                    {.dcgm_exact_labels = ctx_.config.metrics_dcgm_labels});
  return http::raw(std::move(r));
}

}  // namespace hwl::agent
