// Fleet routes: hosts and GPUs with their latest sample, telemetry and usage queries, jobs
// placed on hosts and dispatched to their agents, placements for a model.
#include <boost/json.hpp>
#include <boost/url/url.hpp>
#include <charconv>
#include <cmath>

#include "api.hpp"
#include "hwl/probes/exporters.hpp"
#include "collect/collector.hpp"
#include "dispatch/scheduler.hpp"
#include "hwl/proto/job_request.hpp"
#include "ledger/time_series.hpp"
#include "hwl/crypto.hpp"
#include "hwl/proto/job_spec.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/placement.hpp"
#include "hwl/planner/plan_json.hpp"
#include "ledger/rows.hpp"

namespace hwl::api {

namespace bj = boost::json;

namespace {

// Query parameters are parsed into their type before anything uses them; a route names the
// parameters it reads and refuses any other.
Status onlyParams(const http::Request& req, std::initializer_list<std::string_view> names) {
  for (const auto& [k, v] : req.query)
    if (std::find(names.begin(), names.end(), k) == names.end())
      return invalidArgument("unknown query parameter \"" + k.substr(0, 64) + "\"");
  return {};
}

// Host and job ids: the grammar of job ids ([A-Za-z0-9._-], 1-128, not starting with '.'), which
// host ids ("host-<hex>") follow too.
bool validId(std::string_view id) { return proto::validJobId(id); }

// An id-valued query parameter; "" when absent.
Result<std::string> queryId(const http::Request& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::string();
  if (!validId(it->second))
    return invalidArgument("query parameter \"" + name + "\" is not a valid id");
  return it->second;
}

// A GPU uuid as the probes report them ("GPU-…", "MIG-…/1/0", "0x…"); "" when absent.
Result<std::string> queryUuid(const http::Request& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::string();
  const auto& v = it->second;
  bool ok = v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == ':' || c == '/';
  });
  if (!ok) return invalidArgument("query parameter \"" + name + "\" is not a GPU uuid");
  return v;
}

// "1"/"true" or "0"/"false"; nullopt when absent.
Result<std::optional<bool>> queryBool(const http::Request& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return std::optional<bool>();
  const auto& v = it->second;
  if (v == "1" || v == "true" || v.empty()) return std::optional<bool>(true);
  if (v == "0" || v == "false") return std::optional<bool>(false);
  return invalidArgument("query parameter \"" + name + "\" must be 1, 0, true or false");
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// The latest sample of one GPU in an agent's telemetry answer.
std::optional<bj::object> sampleOf(const std::shared_ptr<const bj::object>& t,
                                   const std::string& uuid) {
  if (!t || !t->contains("gpus") || !t->at("gpus").is_array()) return std::nullopt;
  for (const auto& g : t->at("gpus").get_array())
    if (g.is_object() && g.get_object().contains("uuid") &&
        g.get_object().at("uuid").is_string() && g.get_object().at("uuid").get_string() == uuid)
      return g.get_object();
  return std::nullopt;
}

std::optional<int64_t> num(const bj::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it == o.end() || !it->value().is_number()) return std::nullopt;
  boost::system::error_code ec;
  auto v = it->value().to_number<double>(ec);
  return ec ? std::nullopt : std::optional<int64_t>(static_cast<int64_t>(v));
}

bj::object jobJson(const ledger::JobRow& j, const std::string& host_state) {
  boost::system::error_code ec;
  bj::object o{{"id", j.id},
               {"name", j.name},
               {"host", j.host_id},
               {"state", j.state},
               {"gpus", bj::parse(j.gpus, ec)},
               {"submitted_by", j.submitted_by},
               {"submitted_ms", j.submitted_ms},
               {"reason", j.reason}};
  auto opt = [&](const char* k, const std::optional<int64_t>& v) {
    o[k] = v ? bj::value(*v) : bj::value(nullptr);
  };
  opt("started_ms", j.started_ms);
  opt("ready_ms", j.ready_ms);
  opt("ended_ms", j.ended_ms);
  opt("exit_code", j.exit_code);
  opt("signal", j.signal);
  o["spec"] = bj::parse(j.spec, ec);
  // A job whose host does not answer is not silently "running": its last known state is kept
  // and the state says what is known now.
  if (!ledger::isTerminalJobState(j.state) && !j.host_id.empty() &&
      (host_state == "unreachable" || host_state == "revoked")) {
    o["last_known_state"] = j.state;
    o["state"] = "host_" + host_state;
  }
  o["host_state"] = host_state;
  return o;
}

}  // namespace

void Api::setFleet(FleetServices fleet) {
  fleet_ = std::move(fleet);
  addFleetRoutes(routes_, this);
}

void Api::addFleetRoutes(http::RouteTable& t, Api* self) {
  t.add({"GET", "/v1/gpus", "viewer", 0,
               [self](auto& r, auto&) { return self->gpus(r); }});
  t.add({"GET", "/v1/telemetry", "viewer", 0,
               [self](auto& r, auto&) { return self->telemetry(r); }});
  t.add({"GET", "/v1/usage", "viewer", 0,
               [self](auto& r, auto&) { return self->usage(r); }});
  t.add({"POST", "/v1/jobs", "operator", 64 * 1024,
               [self](auto& r, auto&) { return self->submitJob(r); }});
  t.add({"GET", "/v1/jobs", "viewer", 0,
               [self](auto& r, auto&) { return self->jobs(r); }});
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
}

bj::object Api::hostView(const ledger::HostRow& h) {
  auto gpus = ledger_.withReader([&](ledger::ReadView& view) { return view.listGpus(h.id); });
  return hostView(h, gpus ? *gpus : std::vector<ledger::GpuRow>{},
                  fleet_.collector != nullptr ? fleet_.collector->live(h.id) : std::nullopt);
}

bj::object Api::hostView(const ledger::HostRow& h, const std::vector<ledger::GpuRow>& gpus,
                         const std::optional<collect::HostLive>& live) {
  auto o = hostJson(h);
  o["last_seen_ms"] = live && live->last_seen_ms ? bj::value(live->last_seen_ms) : nullptr;
  o["connected"] = live && live->connected;
  bj::array arr;
  {
    for (const auto& g : gpus) {
      bj::object go{{"uuid", g.uuid}, {"index", g.index}, {"name", g.name},
                    {"driver_version", g.driver_version}};
      go["memory_total_bytes"] = g.memory_total_bytes ? bj::value(*g.memory_total_bytes) : nullptr;
      // The host view carries the headline figures of the latest sample; GET /v1/gpus and
      // /v1/telemetry have every field.
      if (live)
        if (auto s = sampleOf(live->telemetry, g.uuid)) {
          bj::object brief{{"time_ms", live->telemetry_ms}};
          for (const char* k : {"memory_used_bytes", "memory_free_bytes", "utilization_gpu_pct",
                                "temperature_c", "power_w"})
            if (auto it = s->find(k); it != s->end()) brief[k] = it->value();
          go["sample"] = std::move(brief);
        }
      arr.push_back(std::move(go));
    }
  }
  o["gpus"] = std::move(arr);
  return o;
}

Result<http::Reply> Api::hosts(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  // Pages of hosts in id order: ?after=<host id>&limit=N (default 100, at most 1000).
  if (auto s = onlyParams(req, {"limit", "after"}); !s) return s.error();
  auto limit = http::queryInt(req, "limit", 1, 100'000);
  if (!limit) return limit.error();
  int64_t n = std::min<int64_t>(limit->value_or(100), 1000);
  auto after_id = queryId(req, "after");
  if (!after_id) return after_id.error();
  const std::string after = *after_id;
  // Read before the page is built: a change while it is built leaves it keyed as older, so the
  // next request builds it again.
  const int64_t head = ledger_.headSeq();
  const uint64_t generation = fleet_.collector != nullptr ? fleet_.collector->generation() : 0;
  const auto key = std::make_pair(after, n);
  auto cached = [&](const std::shared_ptr<const std::string>& body) {
    http::Response r;
    r.status = 200;
    r.body = *body;
    return http::raw(std::move(r));
  };
  {
    std::lock_guard lk(pages_mu_);
    auto it = host_pages_.find(key);
    if (it != host_pages_.end() && it->second.head == head &&
        it->second.generation == generation)
      return cached(it->second.body);
  }
  auto page = ledger_.withSnapshot(
      [&](ledger::ReadView& view) -> Result<std::pair<std::vector<ledger::HostRow>,
                                              std::vector<ledger::GpuRow>>> {
        auto hosts = view.listHosts(after, n);
        if (!hosts) return hosts.error();
        std::vector<ledger::GpuRow> gpus;
        if (!hosts->empty()) {
          auto g = view.listGpusBetween(hosts->front().id, hosts->back().id);
          if (!g) return g.error();
          gpus = std::move(*g);
        }
        return std::make_pair(std::move(*hosts), std::move(gpus));
      });
  if (!page) return page.error();
  std::map<std::string, std::vector<ledger::GpuRow>> by_host;
  for (auto& g : page->second) by_host[g.host_id].push_back(std::move(g));
  bj::array arr;
  for (const auto& h : page->first) {
    auto live = fleet_.collector != nullptr ? fleet_.collector->live(h.id) : std::nullopt;
    arr.push_back(hostView(h, by_host[h.id], live));
  }
  bj::object out{{"hosts", std::move(arr)}};
  out["next_after"] = static_cast<int64_t>(page->first.size()) == n
                          ? bj::value(page->first.back().id)
                          : bj::value(nullptr);
  auto body = std::make_shared<const std::string>(bj::serialize(out));
  {
    std::lock_guard lk(pages_mu_);
    if (host_pages_.size() >= 256) host_pages_.clear();  // pages asked for are few; bound them
    host_pages_[key] = {head, generation, body};
  }
  return cached(body);
}

Result<http::Reply> Api::host(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {}); !s) return s.error();
  if (!validId(id))
    return invalidArgument("\"" + id.substr(0, 64) + "\" is not a valid host id");
  auto h = ledger_.withReader([&](ledger::ReadView& view) { return view.findHost(id); });
  if (!h) return h.error();
  if (!h->has_value()) return notFound("no host \"" + id + "\"");
  return http::ok(hostView(**h));
}

Result<http::Reply> Api::gpus(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"host"}); !s) return s.error();
  auto want = queryId(req, "host");
  if (!want) return want.error();
  auto rows = ledger_.withReader([&](ledger::ReadView& view) { return view.listGpus(*want); });
  if (!rows) return rows.error();
  auto hosts = ledger_.withReader([](ledger::ReadView& view) { return view.listHosts(); });
  std::map<std::string, std::string> names, states;
  if (hosts)
    for (const auto& h : *hosts) {
      names[h.id] = h.name;
      states[h.id] = proto::toString(h.state);
    }
  auto live = fleet_.collector != nullptr ? fleet_.collector->liveAll()
                                          : std::map<std::string, collect::HostLive>{};
  bj::array arr;
  for (const auto& g : *rows) {
    bj::object o{{"host", g.host_id},        {"host_name", names[g.host_id]},
                 {"host_state", states[g.host_id]}, {"uuid", g.uuid},
                 {"index", g.index},         {"name", g.name},
                 {"driver_version", g.driver_version}};
    o["memory_total_bytes"] = g.memory_total_bytes ? bj::value(*g.memory_total_bytes) : nullptr;
    if (auto it = live.find(g.host_id); it != live.end())
      if (auto s = sampleOf(it->second.telemetry, g.uuid)) {
        (*s)["time_ms"] = it->second.telemetry_ms;
        o["sample"] = std::move(*s);
      }
    arr.push_back(std::move(o));
  }
  return http::ok(bj::object{{"gpus", std::move(arr)}});
}

Result<http::Reply> Api::telemetry(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (fleet_.store == nullptr) return unavailable("no telemetry store");
  if (auto s = onlyParams(req, {"host", "gpu", "from", "to", "step"}); !s)
    return s.error();
  auto host_id = queryId(req, "host");
  if (!host_id) return host_id.error();
  const std::string host = *host_id;
  if (host.empty()) return invalidArgument("query parameter \"host\" is required");
  auto gpu = queryUuid(req, "gpu");
  if (!gpu) return gpu.error();
  int64_t now = clock_.nowMs();
  auto from = http::queryInt(req, "from", 0, INT64_MAX);
  auto to = http::queryInt(req, "to", 0, INT64_MAX);
  auto step = http::queryInt(req, "step", 1, 366LL * 24 * 3600 * 1000);
  for (auto* r : {&from, &to, &step})
    if (!*r) return r->error();
  int64_t t = to->value_or(now);
  int64_t f = from->value_or(t - 3600 * 1000);
  if (f >= t) return invalidArgument("\"from\" must be before \"to\"");
  // Default step: about 300 points over the range, at least 10 s.
  int64_t s = step->value_or(std::max<int64_t>(10'000, (t - f) / 300));
  if ((t - f) / s > 100'000)
    return invalidArgument("the range has too many steps; use a larger step");
  auto out = fleet_.store->query(host, *gpu, f, t, s);
  if (!out) return out.error();
  return http::ok(*out);
}

Result<http::Reply> Api::usage(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"from", "to", "group_by"}); !s)
    return s.error();
  int64_t now = clock_.nowMs();
  auto from = http::queryInt(req, "from", 0, INT64_MAX);
  auto to = http::queryInt(req, "to", 0, INT64_MAX);
  if (!from) return from.error();
  if (!to) return to.error();
  int64_t t = to->value_or(now);
  int64_t f = from->value_or(t - 24LL * 3600 * 1000);
  auto group_it = req.query.find("group_by");
  std::string group =
      group_it == req.query.end() || group_it->second.empty() ? "host" : group_it->second;
  if (group != "host" && group != "gpu" && group != "job")
    return 
        invalidArgument("query parameter \"group_by\" must be host, gpu or job");
  // Minutes within the 1-minute retention are read at that resolution, older ranges by hour.
  const bool minute = f >= now - 30LL * 24 * 3600 * 1000;
  auto rows = fleet_.store->usage(group, f, t, now, minute);
  if (!rows) return rows.error();
  return http::ok(bj::object{{"from", f}, {"to", t}, {"group_by", group},
                                      {"resolution", minute ? "1m" : "1h"},
                                      {"usage", std::move(*rows)}});
}

Result<http::Reply> Api::submitJob(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  auto job = proto::parseJobRequest(*body);
  if (!job) return job.error();
  // Placement and dispatch: no lock of the API is held while the host is called.
  auto placed = fleet_.scheduler->submit(*job, who->actor);
  if (!placed) return placed.error();
  bj::array gpu_arr;
  for (const auto& g : placed->gpus) gpu_arr.emplace_back(g);
  return http::created(bj::object{{"id", placed->id.str()},
                                      {"host", placed->host.id.str()},
                                      {"host_name", placed->host.name},
                                      {"gpus", std::move(gpu_arr)},
                                      {"state", "dispatched"}});
}

Result<http::Reply> Api::jobs(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"host"}); !s) return s.error();
  auto want = queryId(req, "host");
  if (!want) return want.error();
  auto rows = ledger_.withReader([&](ledger::ReadView& view) { return view.listJobs(*want); });
  auto hosts = ledger_.withReader([](ledger::ReadView& view) { return view.listHosts(); });
  if (!rows) return rows.error();
  std::map<std::string, std::string> states;
  if (hosts)
    for (const auto& h : *hosts) states[h.id] = proto::toString(h.state);
  bj::array arr;
  for (const auto& j : *rows) arr.push_back(jobJson(j, states[j.host_id]));
  return http::ok(bj::object{{"jobs", std::move(arr)}});
}

Result<http::Reply> Api::job(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {}); !s) return s.error();
  auto jid = proto::JobId::parse(id);
  if (!jid) return jid.error();
  auto jh = fleet_.scheduler->jobAndHost(*jid);
  if (!jh) return jh.error();
  std::string host_state;
  if (jh->second) {
    auto h = ledger_.withReader([&](ledger::ReadView& view) { return view.findHost(jh->second->id.str()); });
    if (h && *h) host_state = proto::toString((**h).state);
  }
  return http::ok(jobJson(jh->first, host_state));
}

Result<http::Reply> Api::jobLogs(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  // Only typed, validated values reach the request to the host.
  if (auto s = onlyParams(req, {"tail", "follow"}); !s) return s.error();
  auto jid = proto::JobId::parse(id);
  if (!jid) return jid.error();
  auto tail = http::queryInt(req, "tail", 0, 100'000);
  if (!tail) return tail.error();
  auto follow_q = queryBool(req, "follow");
  if (!follow_q) return follow_q.error();
  const bool follow = follow_q->value_or(false);
  auto jh = fleet_.scheduler->jobAndHost(*jid);
  if (!jh) return jh.error();
  if (!jh->second) return notFound("job \"" + id + "\" has no host");
  const dispatch::HostTarget host = *jh->second;
  dispatch::Driver* driver = fleet_.scheduler->driverFor(host.kind);
  if (driver == nullptr)
    return Error{Code::kFailedPrecondition,
                                     "no driver for " + std::string(proto::toString(host.kind)) + " hosts"};
  const dispatch::LogRequest lr{tail->value_or(100), follow};
  if (!follow) {
    auto r = driver->logs(host, *jid, lr, {}, {});
    if (!r) return r.error();
    http::Response out;
    out.status = r->status;
    out.content_type = r->status < 300 ? "text/plain; charset=utf-8" : "application/json";
    out.body = std::move(r->body);
    return http::raw(std::move(out));
  }
  // Streamed through from the host as it arrives.
  http::Response out;
  out.content_type = "text/plain; charset=utf-8";
  auto slot = streams_.acquire(who->actor, who->role == ledger::Role::kAdmin);
  if (!slot) return slot.error();
  out.stream = [driver, host, job = *jid, lr, slot = *slot](http::StreamWriter& w) {
    (void)driver->logs(
        host, job, lr, [&w](std::string_view chunk) { return w.write(chunk); },
        [&w] { return w.stopping(); });
  };
  return http::raw(std::move(out));
}

Result<http::Reply> Api::cancelJob(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {}); !s) return s.error();
  auto jid = proto::JobId::parse(id);
  if (!jid) return jid.error();
  auto r = fleet_.scheduler->cancel(*jid, who->actor);
  if (!r) return r.error();
  if (r->ended)
    return http::ok(bj::object{{"id", id}, {"host", r->host.id.str()},
                                        {"state", "cancelled"}, {"reason", r->reason}});
  // The cancelled state arrives through the host's own reports.
  return http::accepted(bj::object{{"id", id}, {"host", r->host.id.str()}, {"state", "cancelling"}});
}

Result<http::Reply> Api::placements(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  Result<bj::value> body = internal("");
  if (req.method == "POST") {
    body = json::parse(req.body);
  } else {
    // The same inputs as POST /v1/plan, as query parameters; the config is JSON text.
    bj::object o;
    for (const auto& [k, v] : req.query) {
      if (k == "config" || k == "model") {
        auto cfg = json::parse(v);
        if (!cfg) return invalidArgument("query parameter \"config\": " + cfg.error().message);
        o["model"] = std::move(*cfg);
      } else if (k == "context" || k == "batch" || k == "tp" || k == "gpu_mem_bytes" ||
                 k == "prefill_chunk_tokens") {
        auto n = http::queryInt(req, k, 0, INT64_MAX);
        if (!n) return n.error();
        if (*n) o[k] = **n;
      } else if (k == "per_layer") {
        auto b = queryBool(req, k);
        if (!b) return b.error();
        o[k] = b->value_or(false);
      } else if (k == "weights" || k == "kv" || k == "state_dtype" || k == "gpu_mem" ||
                 k == "activation_bytes" || k == "overhead_bytes") {
        if (v.size() > 64 || hasControl(v))
          return 
              invalidArgument("query parameter \"" + k + "\" is not a valid value");
        o[k] = v;
      } else {
        return 
            invalidArgument("unknown query parameter \"" + k.substr(0, 64) + "\"");
      }
    }
    body = bj::value(std::move(o));
  }
  if (!body) return body.error();
  auto pr = planner::planRequestFromJson(*body);
  if (!pr) return pr.error();
  // A TP degree the caller names is the one placed; otherwise the fewest GPUs that hold it.
  const bool fixed_tp = body->is_object() && body->as_object().contains("tp");
  auto hosts = ledger_.withReader([](ledger::ReadView& view) { return view.listHosts(); });
  if (!hosts) return hosts.error();
  std::vector<planner::HostCapacity> caps;
  bj::object basis;
  for (const auto& h : *hosts) {
    if (h.state == proto::HostState::kRevoked) continue;
    planner::HostCapacity c{h.id, h.name, {}};
    auto live = fleet_.collector ? fleet_.collector->live(h.id) : std::nullopt;
    if (live && live->telemetry) {
      // Free memory by the latest sample.
      for (const auto& g : live->telemetry->at("gpus").as_array()) {
        if (!g.is_object()) continue;
        auto t = num(g.get_object(), "memory_total_bytes");
        auto u = num(g.get_object(), "memory_used_bytes");
        if (!t) continue;
        c.gpus.push_back({static_cast<uint64_t>(*t), static_cast<uint64_t>(*t - u.value_or(0))});
      }
      basis[h.id] = "free memory at " + std::to_string(live->telemetry_ms);
    } else {
      // No telemetry yet: against the total memory of the inventory.
      auto gpus = ledger_.withReader([&](ledger::ReadView& view) { return view.listGpus(h.id); });
      if (gpus)
        for (const auto& g : *gpus)
          if (g.memory_total_bytes)
            c.gpus.push_back({static_cast<uint64_t>(*g.memory_total_bytes),
                              static_cast<uint64_t>(*g.memory_total_bytes)});
      basis[h.id] = "total memory (no telemetry yet)";
    }
    caps.push_back(std::move(c));
  }
  auto ranked = planner::placeOn(*pr, caps, fixed_tp);
  if (!ranked) return ranked.error();
  bj::array arr;
  for (const auto& p : *ranked) {
    bj::object o{{"host", p.host_id}, {"name", p.host_name}, {"fits", p.fits},
                 {"gpus_needed", p.gpus_needed}, {"per_gpu_bytes", p.per_gpu_bytes},
                 {"headroom_bytes", p.headroom_bytes}, {"basis", basis[p.host_id]}};
    if (!p.reason.empty()) o["reason"] = p.reason;
    arr.push_back(std::move(o));
  }
  return http::ok(bj::object{{"placements", std::move(arr)}});
}

Result<http::Reply> Api::prometheusMetrics(http::Request& req) {
  auto who = auth_.authorizeMetrics(req);
  if (!who) return who.error();
  // Names from the hosts projection; everything else from the collector's memory: a scrape
  // never reads a sample table.
  auto hosts = ledger_.withReader([](ledger::ReadView& view) { return view.listHosts(); });
  if (!hosts) return hosts.error();
  const auto live = fleet_.collector->liveAll();
  probes::PromExposition e;
  int64_t up = 0;
  for (const auto& h : *hosts) {
    if (h.state == proto::HostState::kRevoked) continue;
    auto it = live.find(h.id);
    const bool reachable = it != live.end() && it->second.reachable;
    up += reachable;
    const std::vector<std::pair<std::string, std::string>> hl = {{"host_id", h.id},
                                                                 {"host", h.name}};
    e.add("hwledger_host_up", "gauge", "1 when the server's last scrape of the host succeeded.",
          probes::promLabels(hl), std::optional<double>(reachable ? 1 : 0));
    if (it == live.end()) continue;
    e.add("hwledger_host_last_seen_timestamp_seconds", "gauge",
          "Unix time of the host's last successful scrape, in seconds.", probes::promLabels(hl),
          it->second.last_seen_ms > 0
              ? std::optional<double>(static_cast<double>(it->second.last_seen_ms) / 1000.0)
              : std::nullopt);
    const auto& t = it->second.telemetry;
    if (!t) continue;
    auto g = t->find("gpus");
    if (g == t->end() || !g->value().is_array()) continue;
    for (const auto& gv : g->value().get_array())
      if (gv.is_object())
        probes::addGpuSeries(e, probes::gpuFromJson(gv.get_object()),
                             {{"Hostname", h.name}, {"host_id", h.id}});
  }
  const auto s = fleet_.collector->stats();
  e.add("hwledger_hosts_reachable", "gauge", "Hosts whose last scrape succeeded.", "",
        std::optional<double>(static_cast<double>(up)));
  e.add("hwledger_collector_requests_total", "counter", "Agent requests answered since start.",
        "", std::optional<double>(static_cast<double>(s.ok)));
  e.add("hwledger_collector_request_failures_total", "counter",
        "Agent requests that failed or timed out since start.", "",
        std::optional<double>(static_cast<double>(s.failed)));
  e.add("hwledger_collector_request_latency_p50_seconds", "gauge",
        "Median latency of recent agent requests, in seconds.", "",
        std::optional<double>(s.p50_ms / 1000.0));
  e.add("hwledger_collector_request_latency_p99_seconds", "gauge",
        "99th percentile latency of recent agent requests, in seconds.", "",
        std::optional<double>(s.p99_ms / 1000.0));
  e.add("hwledger_telemetry_samples_total", "counter", "GPU samples recorded since start.", "",
        std::optional<double>(static_cast<double>(fleet_.store->samplesRecorded())));
  e.add("hwledger_ledger_head_seq", "gauge", "Sequence number of the newest ledger event.", "",
        std::optional<double>(static_cast<double>(ledger_.headSeq())));
  http::Response r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = e.render();
  return http::raw(std::move(r));
}

Result<http::Reply> Api::collectorStatus(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  auto live = fleet_.collector->liveAll();
  int64_t connected = 0, reachable = 0;
  for (const auto& [id, h] : live) {
    connected += h.connected;
    reachable += h.reachable;
  }
  auto s = fleet_.collector->stats();
  return http::ok(bj::object{{"hosts", live.size()},
                                      {"connected", connected},
                                      {"reachable", reachable},
                                      {"requests_ok", s.ok},
                                      {"requests_failed", s.failed},
                                      {"latency_window", s.window},
                                      {"latency_p50_ms", s.p50_ms},
                                      {"latency_p99_ms", s.p99_ms},
                                      {"latency_max_ms", s.max_ms},
                                      {"telemetry_samples", fleet_.store->samplesRecorded()}});
}

}  // namespace hwl::api
