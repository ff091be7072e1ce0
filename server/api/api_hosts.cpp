// Hosts and GPUs with their latest sample (GET /v1/hosts pages come from a read model), the
// collector's own figures, and the fleet in the Prometheus text format.
#include <boost/json.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "agentless/enroll_ssh.hpp"
#include "api.hpp"
#include "collect/collector.hpp"
#include "hwl/json.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ledger/rows.hpp"
#include "ledger/time_series.hpp"
#include "params.hpp"

namespace hwl::api {

namespace bj = boost::json;

bj::object hostJson(const ledger::HostRow& h) {
  boost::system::error_code ec;
  bj::object o{{"id", h.id},
               {"name", h.name},
               {"kind", proto::toString(h.kind)},
               {"address", h.address},
               {"state", proto::toString(h.state)},
               {"enrolled_ms", h.enrolled_ms},
               {"state_changed_ms", h.state_changed_ms},
               {"cert_serial", h.cert_serial},
               {"cert_not_after_ms", h.cert_not_after_ms},
               {"platform", bj::parse(h.platform, ec)}};
  o["revoked_ms"] = h.revoked_ms ? bj::value(*h.revoked_ms) : bj::value(nullptr);
  // Agentless hosts: user, host key fingerprints, jump host and key source (never a key).
  if (!h.ssh.empty()) {
    if (auto v = bj::parse(h.ssh, ec); !ec) o["ssh"] = std::move(v);
  }
  return o;
}

Result<http::Reply> Api::enrollSsh(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  if (fleet_.ssh == nullptr)
    return Error{Code::kFailedPrecondition,
                 "this server does not enroll hosts over SSH",
                 "ssh_unavailable",
                 {}};
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  auto parsed = agentless::parseSshEnrollRequest(*body);
  if (!parsed) return parsed.error();
  agentless::SshEnrollContext ctx = *fleet_.ssh;
  ctx.actor = who->actor;
  auto host = agentless::enrollSsh(std::move(*parsed), ctx);
  if (!host) return host.error();
  if (fleet_.on_hosts_changed) fleet_.on_hosts_changed();
  return http::created(std::move(*host));
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
      bj::object go{{"uuid", g.uuid},
                    {"index", g.index},
                    {"name", g.name},
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
    if (it != host_pages_.end() && it->second.head == head && it->second.generation == generation)
      return cached(it->second.body);
  }
  auto page = ledger_.withSnapshot(
      [&](ledger::ReadView& view)
          -> Result<std::pair<std::vector<ledger::HostRow>, std::vector<ledger::GpuRow>>> {
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
  if (!validId(id)) return invalidArgument("\"" + id.substr(0, 64) + "\" is not a valid host id");
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
    bj::object o{{"host", g.host_id},
                 {"host_name", names[g.host_id]},
                 {"host_state", states[g.host_id]},
                 {"uuid", g.uuid},
                 {"index", g.index},
                 {"name", g.name},
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
  e.add("hwledger_collector_requests_total", "counter", "Agent requests answered since start.", "",
        std::optional<double>(static_cast<double>(s.ok)));
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

}  // namespace hwl::api
