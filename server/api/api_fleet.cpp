// Fleet routes: hosts and GPUs with their latest sample, telemetry and usage queries, jobs
// placed on hosts and dispatched to their agents, placements for a model.
#include <boost/json.hpp>
#include <boost/url/url.hpp>
#include <charconv>
#include <cmath>

#include "api.hpp"
#include "hwl/probes/exporters.hpp"
#include "collect/collector.hpp"
#include "collect/job_dispatch.hpp"
#include "collect/telemetry_store.hpp"
#include "hwl/crypto.hpp"
#include "hwl/jobs/job_spec.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/placement.hpp"
#include "hwl/planner/plan_json.hpp"
#include "ledger/fleet_projection.hpp"

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
bool validId(std::string_view id) { return jobs::validJobId(id); }

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

// A target on an agent, from validated segments and parameters, encoded by Boost.URL.
std::string agentTarget(std::initializer_list<std::string_view> segments,
                        std::initializer_list<std::pair<std::string_view, std::string_view>>
                            params = {}) {
  boost::urls::url u;
  u.set_path_absolute(true);
  for (auto seg : segments) u.segments().push_back(seg);
  for (const auto& [k, v] : params) u.params().append({k, v});
  return std::string(u.encoded_target());
}

Error badJobId(const std::string& id) {
  return invalidArgument("\"" + id.substr(0, 64) + "\" is not a valid job id");
}

// Bounds on the fields of POST /v1/jobs that the job spec parser does not see.
constexpr size_t kMaxJobNameBytes = 256;
constexpr size_t kMaxHostFieldBytes = 256;
constexpr size_t kMaxReadyPathBytes = 1024;

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
  addFleetRoutes();
}

void Api::addFleetRoutes() {
  router_.add("GET", "/v1/gpus", [this](auto& r, auto&) { return gpus(r); });
  router_.add("GET", "/v1/telemetry", [this](auto& r, auto&) { return telemetry(r); });
  router_.add("GET", "/v1/usage", [this](auto& r, auto&) { return usage(r); });
  router_.add("POST", "/v1/jobs", [this](auto& r, auto&) { return submitJob(r); }, 64 * 1024);
  router_.add("GET", "/v1/jobs", [this](auto& r, auto&) { return jobs(r); });
  router_.add("GET", "/v1/jobs/{id}", [this](auto& r, auto& p) { return job(r, p.at("id")); });
  router_.add("GET", "/v1/jobs/{id}/logs",
              [this](auto& r, auto& p) { return jobLogs(r, p.at("id")); });
  router_.add("DELETE", "/v1/jobs/{id}",
              [this](auto& r, auto& p) { return cancelJob(r, p.at("id")); });
  router_.add("GET", "/v1/placements", [this](auto& r, auto&) { return placements(r); });
  router_.add("GET", "/v1/collector", [this](auto& r, auto&) { return collectorStatus(r); });
  router_.add("GET", "/metrics", [this](auto& r, auto&) { return prometheusMetrics(r); });
  router_.add("POST", "/v1/placements", [this](auto& r, auto&) { return placements(r); },
              256 * 1024);
}

std::unique_ptr<http::Client> Api::agentClient(const std::string& host_id,
                                               const std::string& address) {
  return collect::agentClient(
      {.ca_file = fleet_.ca_file, .cert_file = fleet_.cert_file, .key_file = fleet_.key_file},
      host_id, address);
}

bj::object Api::hostView(const ledger::HostRow& h) {
  auto gpus = ledger_.withReader([&](sqlite::Db& db) { return ledger::listGpus(db, h.id); });
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

http::Response Api::hosts(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  // Pages of hosts in id order: ?after=<host id>&limit=N (default 100, at most 1000).
  if (auto s = onlyParams(req, {"limit", "after"}); !s) return http::errorResponse(s.error());
  auto limit = http::queryInt(req, "limit", 1, 100'000);
  if (!limit) return http::errorResponse(limit.error());
  int64_t n = std::min<int64_t>(limit->value_or(100), 1000);
  auto after_id = queryId(req, "after");
  if (!after_id) return http::errorResponse(after_id.error());
  const std::string after = *after_id;
  auto page = ledger_.withReader(
      [&](sqlite::Db& db) -> Result<std::pair<std::vector<ledger::HostRow>,
                                              std::vector<ledger::GpuRow>>> {
        auto hosts = ledger::listHosts(db, after, n);
        if (!hosts) return hosts.error();
        std::vector<ledger::GpuRow> gpus;
        if (!hosts->empty()) {
          auto g = ledger::listGpusBetween(db, hosts->front().id, hosts->back().id);
          if (!g) return g.error();
          gpus = std::move(*g);
        }
        return std::make_pair(std::move(*hosts), std::move(gpus));
      });
  if (!page) return http::errorResponse(page.error());
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
  return jsonResponse(200, out);
}

http::Response Api::host(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  if (auto s = onlyParams(req, {}); !s) return http::errorResponse(s.error());
  if (!validId(id))
    return http::errorResponse(invalidArgument("\"" + id.substr(0, 64) + "\" is not a valid host id"));
  auto h = ledger_.withReader([&](sqlite::Db& db) { return ledger::findHost(db, id); });
  if (!h) return http::errorResponse(h.error());
  if (!h->has_value()) return http::errorResponse(notFound("no host \"" + id + "\""));
  return jsonResponse(200, hostView(**h));
}

http::Response Api::gpus(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  if (auto s = onlyParams(req, {"host"}); !s) return http::errorResponse(s.error());
  auto want = queryId(req, "host");
  if (!want) return http::errorResponse(want.error());
  auto rows = ledger_.withReader([&](sqlite::Db& db) { return ledger::listGpus(db, *want); });
  if (!rows) return http::errorResponse(rows.error());
  auto hosts = ledger_.withReader([](sqlite::Db& db) { return ledger::listHosts(db); });
  std::map<std::string, std::string> names, states;
  if (hosts)
    for (const auto& h : *hosts) {
      names[h.id] = h.name;
      states[h.id] = h.state;
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
  return jsonResponse(200, bj::object{{"gpus", std::move(arr)}});
}

http::Response Api::telemetry(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  if (fleet_.store == nullptr) return http::errorResponse(unavailable("no telemetry store"));
  if (auto s = onlyParams(req, {"host", "gpu", "from", "to", "step"}); !s)
    return http::errorResponse(s.error());
  auto host_id = queryId(req, "host");
  if (!host_id) return http::errorResponse(host_id.error());
  const std::string host = *host_id;
  if (host.empty()) return http::errorResponse(invalidArgument("query parameter \"host\" is required"));
  auto gpu = queryUuid(req, "gpu");
  if (!gpu) return http::errorResponse(gpu.error());
  int64_t now = clock_.nowMs();
  auto from = http::queryInt(req, "from", 0, INT64_MAX);
  auto to = http::queryInt(req, "to", 0, INT64_MAX);
  auto step = http::queryInt(req, "step", 1, 366LL * 24 * 3600 * 1000);
  for (auto* r : {&from, &to, &step})
    if (!*r) return http::errorResponse(r->error());
  int64_t t = to->value_or(now);
  int64_t f = from->value_or(t - 3600 * 1000);
  if (f >= t) return http::errorResponse(invalidArgument("\"from\" must be before \"to\""));
  // Default step: about 300 points over the range, at least 10 s.
  int64_t s = step->value_or(std::max<int64_t>(10'000, (t - f) / 300));
  if ((t - f) / s > 100'000)
    return http::errorResponse(invalidArgument("the range has too many steps; use a larger step"));
  auto out = fleet_.store->query(host, *gpu, f, t, s);
  if (!out) return http::errorResponse(out.error());
  return jsonResponse(200, *out);
}

http::Response Api::usage(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  if (auto s = onlyParams(req, {"from", "to", "group_by"}); !s)
    return http::errorResponse(s.error());
  int64_t now = clock_.nowMs();
  auto from = http::queryInt(req, "from", 0, INT64_MAX);
  auto to = http::queryInt(req, "to", 0, INT64_MAX);
  if (!from) return http::errorResponse(from.error());
  if (!to) return http::errorResponse(to.error());
  int64_t t = to->value_or(now);
  int64_t f = from->value_or(t - 24LL * 3600 * 1000);
  auto group_it = req.query.find("group_by");
  std::string group =
      group_it == req.query.end() || group_it->second.empty() ? "host" : group_it->second;
  if (group != "host" && group != "gpu" && group != "job")
    return http::errorResponse(
        invalidArgument("query parameter \"group_by\" must be host, gpu or job"));
  // Minutes within the 1-minute retention are read at that resolution, older ranges by hour.
  bool minute = f >= now - 30LL * 24 * 3600 * 1000;
  const char* table = minute ? "ts_1m" : "ts_1h";
  double bucket_h = minute ? 1.0 / 60.0 : 1.0;
  auto rows = ledger_.withReader([&](sqlite::Db& db) -> Result<bj::array> {
    bj::array out;
    if (group != "job") {
      std::string key = group == "host" ? "s.host_id" : "s.host_id, s.gpu_uuid";
      auto st = db.prepare(
          "SELECT " + key + ", count(*), sum(r.energy_wh), sum(r.util_sum), sum(r.util_n), "
          "count(DISTINCT s.gpu_uuid) FROM " + std::string(table) +
          " r JOIN ts_series s ON s.id = r.series WHERE r.bucket_ms >= ? AND r.bucket_ms < ? "
          "GROUP BY " + key + " ORDER BY " + key);
      if (!st) return st.error();
      st->bind(1, f).bind(2, t);
      for (;;) {
        auto r = st->step();
        if (!r) return r.error();
        if (!*r) break;
        int c = group == "host" ? 1 : 2;
        bj::object o{{"host", st->text(0)}};
        if (group == "gpu") o["gpu_uuid"] = st->text(1);
        double buckets = static_cast<double>(st->i64(c));
        o["gpu_hours"] = std::round(buckets * bucket_h * 1000) / 1000;
        o["energy_kwh"] = std::round(sqlite3_column_double(st->get(), c + 1) * 1000) / 1e6;
        int64_t n = st->i64(c + 3);
        if (n > 0)
          o["mean_util_pct"] =
              std::round(sqlite3_column_double(st->get(), c + 2) / static_cast<double>(n) * 10) /
              10;
        if (group == "host") o["gpus"] = st->i64(c + 4);
        out.push_back(std::move(o));
      }
      return out;
    }
    // By job: the job's GPUs over its runtime within the range.
    auto jobs = ledger::listJobs(db);
    if (!jobs) return jobs.error();
    auto st = db.prepare(
        "SELECT count(*), sum(r.energy_wh), sum(r.util_sum), sum(r.util_n) FROM " +
        std::string(table) +
        " r JOIN ts_series s ON s.id = r.series WHERE s.host_id = ? AND s.gpu_uuid = ? AND "
        "r.bucket_ms >= ? AND r.bucket_ms < ?");
    if (!st) return st.error();
    for (const auto& j : *jobs) {
      if (!j.started_ms) continue;
      int64_t a = std::max(f, *j.started_ms);
      int64_t b = std::min(t, j.ended_ms.value_or(now));
      if (b <= a) continue;
      boost::system::error_code ec;
      auto gpus = bj::parse(j.gpus, ec);
      double energy = 0, util_sum = 0;
      int64_t util_n = 0;
      size_t ngpu = gpus.is_array() ? gpus.get_array().size() : 0;
      for (size_t i = 0; i < ngpu; ++i) {
        const auto& u = gpus.get_array()[i];
        if (!u.is_string()) continue;
        int64_t bucket = minute ? 60'000 : 3'600'000;
        st->bind(1, j.host_id).bind(2, std::string(u.get_string())).bind(3, a - a % bucket).bind(4, b);
        if (auto r = st->step(); r && *r) {
          energy += sqlite3_column_double(st->get(), 1);
          util_sum += sqlite3_column_double(st->get(), 2);
          util_n += st->i64(3);
        }
        st->reset();
      }
      bj::object o{{"job", j.id}, {"name", j.name}, {"host", j.host_id}, {"gpus", ngpu},
                   {"gpu_hours", std::round(static_cast<double>(ngpu) * (b - a) / 3.6e6 * 1000) / 1000},
                   {"energy_kwh", std::round(energy * 1000) / 1e6}};
      if (util_n > 0) o["mean_util_pct"] = std::round(util_sum / static_cast<double>(util_n) * 10) / 10;
      out.push_back(std::move(o));
    }
    return out;
  });
  if (!rows) return http::errorResponse(rows.error());
  return jsonResponse(200, bj::object{{"from", f}, {"to", t}, {"group_by", group},
                                      {"resolution", minute ? "1m" : "1h"},
                                      {"usage", std::move(*rows)}});
}

http::Response Api::submitJob(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return http::errorResponse(who.error());
  auto body = json::parseObject(req.body);
  if (!body) return http::errorResponse(body.error());
  if (auto s = json::checkKeys(*body, {"name", "command", "env", "gpus", "gpu_memory_bytes",
                                       "host", "ready_path", "port", "max_runtime_s"});
      !s)
    return http::errorResponse(s.error());
  auto name = json::optionalString(*body, "name");
  auto host_want = json::optionalString(*body, "host");
  auto ready_path = json::optionalString(*body, "ready_path");
  auto ngpus = json::optionalInt(*body, "gpus");
  auto mem = json::optionalInt(*body, "gpu_memory_bytes");
  auto port = json::optionalInt(*body, "port");
  auto max_rt = json::optionalInt(*body, "max_runtime_s");
  for (const auto* r : {&name, &host_want, &ready_path})
    if (!*r) return http::errorResponse(r->error());
  for (const auto* r : {&ngpus, &mem, &port, &max_rt})
    if (!*r) return http::errorResponse(r->error());
  // Every field that is stored is bounded; the name is also shown in tables, so it is text.
  if (*name && ((*name)->size() > kMaxJobNameBytes || (*name)->empty() || hasControl(**name)))
    return http::errorResponse(invalidArgument(
        "field \"name\" must be 1 to " + std::to_string(kMaxJobNameBytes) +
        " bytes without control characters"));
  if (*host_want && ((*host_want)->size() > kMaxHostFieldBytes || hasControl(**host_want)))
    return http::errorResponse(invalidArgument("field \"host\" must be a host id or name of at most " +
                                               std::to_string(kMaxHostFieldBytes) + " bytes"));
  if (*ready_path && (*ready_path)->size() > kMaxReadyPathBytes)
    return http::errorResponse(invalidArgument("field \"ready_path\" is longer than " +
                                               std::to_string(kMaxReadyPathBytes) + " bytes"));
  int64_t need_gpus = ngpus->value_or(mem->has_value() ? 1 : 0);
  if (need_gpus < 0 || need_gpus > static_cast<int64_t>(jobs::kMaxGpus))
    return http::errorResponse(invalidArgument("field \"gpus\" must be between 0 and " +
                                               std::to_string(jobs::kMaxGpus)));
  if (*mem && **mem <= 0)
    return http::errorResponse(invalidArgument("field \"gpu_memory_bytes\" must be positive"));
  if (*port && (**port < 1 || **port > 65535))
    return http::errorResponse(invalidArgument("field \"port\" must be between 1 and 65535"));
  if (*max_rt && **max_rt < 0)
    return http::errorResponse(invalidArgument("field \"max_runtime_s\" must not be negative"));
  if (*ready_path && (!*port || (*ready_path)->empty() || (*ready_path)->front() != '/'))
    return http::errorResponse(
        invalidArgument("field \"ready_path\" must start with / and needs \"port\""));

  // The spec the agent will get, checked now by the agent's own parser: a spec the agent would
  // refuse is refused here, before anything is appended.
  auto agentSpec = [&](const std::string& id, const std::vector<std::string>& gpus) {
    bj::object spec{{"id", id}};
    if (auto c = body->find("command"); c != body->end()) spec["command"] = c->value();
    spec["env"] = body->contains("env") ? body->at("env") : bj::value(bj::object{});
    bj::array gpu_arr;
    for (const auto& g : gpus) gpu_arr.push_back(bj::string(g));
    spec["gpus"] = std::move(gpu_arr);
    if (*port && *ready_path)
      spec["ready_url"] = "http://127.0.0.1:" + std::to_string(**port) + **ready_path;
    if (*max_rt) spec["max_runtime_s"] = **max_rt;
    return spec;
  };
  auto checkSpec = [](const bj::object& spec, const std::vector<std::string>& gpus) -> Status {
    auto parsed = jobs::parseJobSpec(spec, gpus, "/");
    if (parsed) return {};
    std::string m = parsed.error().message;
    // The agent's ready_url is built from "port" and "ready_path".
    if (m.rfind("ready_url", 0) == 0) m = "ready_path" + m.substr(9);
    return invalidArgument(std::move(m));
  };
  if (auto s = checkSpec(agentSpec("job-000000000000", {}), {}); !s)
    return http::errorResponse(s.error());

  std::lock_guard placement(placement_mu_);
  auto hosts = ledger_.withReader([](sqlite::Db& db) { return ledger::listHosts(db); });
  auto jobs = ledger_.withReader([](sqlite::Db& db) { return ledger::listJobs(db); });
  if (!hosts) return http::errorResponse(hosts.error());
  if (!jobs) return http::errorResponse(jobs.error());
  // GPUs held by jobs that have not ended.
  std::set<std::string> busy;
  for (const auto& j : *jobs) {
    if (ledger::isTerminalJobState(j.state)) continue;
    boost::system::error_code ec;
    auto g = bj::parse(j.gpus, ec);
    if (g.is_array())
      for (const auto& u : g.get_array())
        if (u.is_string()) busy.insert(j.host_id + "/" + std::string(u.get_string()));
  }
  bj::object reasons;
  const ledger::HostRow* chosen = nullptr;
  std::vector<std::string> chosen_gpus;
  for (const auto& h : *hosts) {
    if (*host_want && **host_want != h.id && **host_want != h.name) continue;
    auto why = [&](std::string r) { reasons[h.id] = r; };
    if (h.state == "revoked") { why("revoked"); continue; }
    if (h.kind != "agent") { why("not an agent host"); continue; }
    auto live = fleet_.collector ? fleet_.collector->live(h.id) : std::nullopt;
    if (!live || !live->reachable) { why("unreachable"); continue; }
    if (need_gpus == 0) {
      chosen = &h;
      break;
    }
    if (!live->telemetry) { why("no telemetry yet"); continue; }
    std::vector<std::pair<int64_t, std::string>> fit;  // free bytes, uuid
    int total = 0;
    for (const auto& g : live->telemetry->at("gpus").as_array()) {
      if (!g.is_object()) continue;
      const auto& o = g.get_object();
      if (!o.contains("uuid")) continue;
      ++total;
      std::string uuid(o.at("uuid").as_string());
      if (busy.count(h.id + "/" + uuid) != 0) continue;
      auto t = num(o, "memory_total_bytes");
      auto u = num(o, "memory_used_bytes");
      int64_t free = t && u ? *t - *u : (t ? *t : 0);
      if (*mem && free < **mem) continue;
      fit.emplace_back(free, uuid);
    }
    if (static_cast<int64_t>(fit.size()) < need_gpus) {
      std::string r = std::to_string(fit.size()) + " of " + std::to_string(total) +
                      " GPUs available";
      if (*mem) r += " with " + std::to_string(**mem) + " bytes free";
      r += ", " + std::to_string(need_gpus) + " needed";
      why(r);
      continue;
    }
    std::sort(fit.begin(), fit.end(), std::greater<>());
    for (int64_t i = 0; i < need_gpus; ++i) chosen_gpus.push_back(fit[i].second);
    chosen = &h;
    break;
  }
  if (chosen == nullptr) {
    if (*host_want && reasons.empty())
      return http::errorResponse(notFound("no host \"" + **host_want + "\""));
    auto r = http::jsonError(409, "no_placement", "no host can take this job");
    auto b = bj::parse(r.body).as_object();
    b["error"].as_object()["hosts"] = std::move(reasons);
    r.body = bj::serialize(b);
    return r;
  }

  std::string id = crypto::newId("job-", 6);
  bj::object agent_spec = agentSpec(id, chosen_gpus);
  if (auto s = checkSpec(agent_spec, chosen_gpus); !s)
    return http::errorResponse(internal("the placed spec does not validate: " + s.error().message));
  const bj::array gpu_arr = agent_spec.at("gpus").as_array();
  bj::object requested{{"gpus", need_gpus}};
  if (*mem) requested["gpu_memory_bytes"] = **mem;
  ledger::AppendRequest ar;
  ar.actor = who->actor;
  ar.parts.push_back({"job/" + id, ledger::kNoStream,
                      {{"", "job.submitted", bj::object{{"job_id", id},
                                                        {"name", name->value_or(id)},
                                                        {"spec", agent_spec},
                                                        {"requested", requested}}},
                       {"", "job.placed", bj::object{{"job_id", id},
                                                     {"host_id", chosen->id},
                                                     {"gpus", gpu_arr}}}}});
  auto r = ledger_.append(std::move(ar));
  if (!r) return http::errorResponse(r.error());
  auto client = agentClient(chosen->id, chosen->address);
  auto res = collect::dispatchJob(*client, agent_spec);
  if (res.outcome != collect::DispatchResult::Outcome::kAccepted) {
    const std::string& why = res.detail;
    (void)ledger_.append("job/" + id, ledger::kAnyVersion, "system",
                         {{"", "job.failed", bj::object{{"job_id", id},
                                                        {"state", "failed"},
                                                        {"reason", "dispatch failed: " + why},
                                                        {"ended_ms", clock_.nowMs()}}}});
    auto e = http::jsonError(502, "dispatch_failed", "job " + id + " was placed on " +
                                                         chosen->id + " but " + why);
    return e;
  }
  return jsonResponse(201, bj::object{{"id", id}, {"host", chosen->id}, {"host_name", chosen->name},
                                      {"gpus", gpu_arr}, {"state", "dispatched"}});
}

http::Response Api::jobs(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  if (auto s = onlyParams(req, {"host"}); !s) return http::errorResponse(s.error());
  auto want = queryId(req, "host");
  if (!want) return http::errorResponse(want.error());
  auto rows = ledger_.withReader([&](sqlite::Db& db) { return ledger::listJobs(db, *want); });
  auto hosts = ledger_.withReader([](sqlite::Db& db) { return ledger::listHosts(db); });
  if (!rows) return http::errorResponse(rows.error());
  std::map<std::string, std::string> states;
  if (hosts)
    for (const auto& h : *hosts) states[h.id] = h.state;
  bj::array arr;
  for (const auto& j : *rows) arr.push_back(jobJson(j, states[j.host_id]));
  return jsonResponse(200, bj::object{{"jobs", std::move(arr)}});
}

namespace {
// A job and the host it was placed on (notFound naming which is missing).
Result<std::pair<ledger::JobRow, std::optional<ledger::HostRow>>> jobAndHost(
    ledger::Ledger& ledger, const std::string& id) {
  return ledger.withReader(
      [&](sqlite::Db& db) -> Result<std::pair<ledger::JobRow, std::optional<ledger::HostRow>>> {
        auto j = ledger::findJob(db, id);
        if (!j) return j.error();
        if (!j->has_value()) return notFound("no job \"" + id + "\"");
        auto h = ledger::findHost(db, (*j)->host_id);
        if (!h) return h.error();
        return std::make_pair(std::move(**j), std::move(*h));
      });
}
}  // namespace

http::Response Api::job(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  if (auto s = onlyParams(req, {}); !s) return http::errorResponse(s.error());
  if (!validId(id)) return http::errorResponse(badJobId(id));
  auto jh = jobAndHost(ledger_, id);
  if (!jh) return http::errorResponse(jh.error());
  return jsonResponse(200, jobJson(jh->first, jh->second ? jh->second->state : ""));
}

http::Response Api::jobLogs(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  // Only typed, validated values reach the request to the agent.
  if (auto s = onlyParams(req, {"tail", "follow"}); !s) return http::errorResponse(s.error());
  if (!validId(id)) return http::errorResponse(badJobId(id));
  auto tail = http::queryInt(req, "tail", 0, 100'000);
  if (!tail) return http::errorResponse(tail.error());
  auto follow_q = queryBool(req, "follow");
  if (!follow_q) return http::errorResponse(follow_q.error());
  const bool follow = follow_q->value_or(false);
  auto jh = jobAndHost(ledger_, id);
  if (!jh) return http::errorResponse(jh.error());
  const auto& h = jh->second;
  if (!h) return http::errorResponse(notFound("job \"" + id + "\" has no host"));
  const std::string tail_text = std::to_string(tail->value_or(100));
  std::string target = follow ? agentTarget({"v1", "jobs", id, "logs"},
                                            {{"tail", tail_text}, {"follow", "1"}})
                              : agentTarget({"v1", "jobs", id, "logs"}, {{"tail", tail_text}});
  auto client = agentClient(h->id, h->address);
  if (!follow) {
    auto r = client->request("GET", target);
    if (!r) return http::errorResponse(unavailable("the agent of " + h->id + ": " + r.error().message));
    http::Response out;
    out.status = r->status;
    out.content_type = r->status < 300 ? "text/plain; charset=utf-8" : "application/json";
    out.body = std::move(r->body);
    return out;
  }
  // Streamed through from the agent as it arrives.
  http::Response out;
  out.content_type = "text/plain; charset=utf-8";
  auto shared = std::shared_ptr<http::Client>(std::move(client));
  auto slot = streams_.acquire(who->actor, who->role == ledger::Role::kAdmin);
  if (!slot) return http::errorResponse(slot.error());
  out.stream = [shared, target, slot = *slot](http::StreamWriter& w) {
    (void)shared->stream(
        "GET", target, {}, [&w](std::string_view chunk) { return w.write(chunk); },
        [&w] { return w.stopping(); });
  };
  return out;
}

http::Response Api::cancelJob(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return http::errorResponse(who.error());
  if (auto s = onlyParams(req, {}); !s) return http::errorResponse(s.error());
  if (!validId(id)) return http::errorResponse(badJobId(id));
  // The version is read before the job's state (see Ledger::streamVersion): a state change that
  // commits between the two makes the append below fail rather than end the job twice.
  const std::string stream = "job/" + id;
  auto version = ledger_.streamVersion(stream);
  if (!version) return http::errorResponse(version.error());
  // A job still being dispatched by a submission is not cancelled under it.
  std::unique_lock placement(placement_mu_, std::defer_lock);
  auto jh = jobAndHost(ledger_, id);
  if (!jh) return http::errorResponse(jh.error());
  if (jh->first.state == "placed") {
    placement.lock();
    version = ledger_.streamVersion(stream);
    if (!version) return http::errorResponse(version.error());
    jh = jobAndHost(ledger_, id);
    if (!jh) return http::errorResponse(jh.error());
  }
  if (ledger::isTerminalJobState(jh->first.state))
    return http::errorResponse(
        conflict("job \"" + id + "\" has already ended (" + jh->first.state + ")"));
  const auto& h = jh->second;
  if (!h) return http::errorResponse(notFound("job \"" + id + "\" has no host"));
  auto client = agentClient(h->id, h->address);
  auto r = client->request("DELETE", agentTarget({"v1", "jobs", id}));
  if (!r) return http::errorResponse(unavailable("the agent of " + h->id + ": " + r.error().message));
  if (r->status == 404) {
    // The agent has no such job (it never got it, or lost its state): nothing runs, so the job
    // ends here, at the version read above (an agent report since then wins).
    const std::string reason = "cancelled by " + who->actor + ": the agent of " + h->id +
                               " has no such job";
    auto a = ledger_.append(stream, *version, who->actor,
                            {{"", "job.cancelled", bj::object{{"job_id", id},
                                                              {"state", "cancelled"},
                                                              {"reason", reason},
                                                              {"ended_ms", clock_.nowMs()}}}});
    if (!a) {
      if (a.error().code == Code::kConflict)
        return http::errorResponse(
            conflict("job \"" + id + "\" changed while it was being cancelled; try again"));
      return http::errorResponse(a.error());
    }
    return jsonResponse(200, bj::object{{"id", id}, {"host", h->id}, {"state", "cancelled"},
                                        {"reason", reason}});
  }
  if (r->status >= 300)
    return http::jsonError(502, "agent_error", "the agent answered HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300));
  // The cancelled state arrives through the agent's outbox.
  return jsonResponse(202, bj::object{{"id", id}, {"host", h->id}, {"state", "cancelling"}});
}

http::Response Api::placements(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  Result<bj::value> body = internal("");
  if (req.method == "POST") {
    body = json::parse(req.body);
  } else {
    // The same inputs as POST /v1/plan, as query parameters; the config is JSON text.
    bj::object o;
    for (const auto& [k, v] : req.query) {
      if (k == "config" || k == "model") {
        auto cfg = json::parse(v);
        if (!cfg) return http::errorResponse(invalidArgument("query parameter \"config\": " + cfg.error().message));
        o["model"] = std::move(*cfg);
      } else if (k == "context" || k == "batch" || k == "tp" || k == "gpu_mem_bytes" ||
                 k == "prefill_chunk_tokens") {
        auto n = http::queryInt(req, k, 0, INT64_MAX);
        if (!n) return http::errorResponse(n.error());
        if (*n) o[k] = **n;
      } else if (k == "per_layer") {
        auto b = queryBool(req, k);
        if (!b) return http::errorResponse(b.error());
        o[k] = b->value_or(false);
      } else if (k == "weights" || k == "kv" || k == "state_dtype" || k == "gpu_mem" ||
                 k == "activation_bytes" || k == "overhead_bytes") {
        if (v.size() > 64 || hasControl(v))
          return http::errorResponse(
              invalidArgument("query parameter \"" + k + "\" is not a valid value"));
        o[k] = v;
      } else {
        return http::errorResponse(
            invalidArgument("unknown query parameter \"" + k.substr(0, 64) + "\""));
      }
    }
    body = bj::value(std::move(o));
  }
  if (!body) return http::errorResponse(body.error());
  auto pr = planner::planRequestFromJson(*body);
  if (!pr) return http::errorResponse(pr.error());
  // A TP degree the caller names is the one placed; otherwise the fewest GPUs that hold it.
  const bool fixed_tp = body->is_object() && body->as_object().contains("tp");
  auto hosts = ledger_.withReader([](sqlite::Db& db) { return ledger::listHosts(db); });
  if (!hosts) return http::errorResponse(hosts.error());
  std::vector<planner::HostCapacity> caps;
  bj::object basis;
  for (const auto& h : *hosts) {
    if (h.state == "revoked") continue;
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
      auto gpus = ledger_.withReader([&](sqlite::Db& db) { return ledger::listGpus(db, h.id); });
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
  if (!ranked) return http::errorResponse(ranked.error());
  bj::array arr;
  for (const auto& p : *ranked) {
    bj::object o{{"host", p.host_id}, {"name", p.host_name}, {"fits", p.fits},
                 {"gpus_needed", p.gpus_needed}, {"per_gpu_bytes", p.per_gpu_bytes},
                 {"headroom_bytes", p.headroom_bytes}, {"basis", basis[p.host_id]}};
    if (!p.reason.empty()) o["reason"] = p.reason;
    arr.push_back(std::move(o));
  }
  return jsonResponse(200, bj::object{{"placements", std::move(arr)}});
}

http::Response Api::prometheusMetrics(http::Request& req) {
  auto who = auth_.authorizeMetrics(req);
  if (!who) return http::errorResponse(who.error());
  // Names from the hosts projection; everything else from the collector's memory: a scrape
  // never reads a sample table.
  auto hosts = ledger_.withReader([](sqlite::Db& db) { return ledger::listHosts(db); });
  if (!hosts) return http::errorResponse(hosts.error());
  const auto live = fleet_.collector->liveAll();
  probes::PromExposition e;
  int64_t up = 0;
  for (const auto& h : *hosts) {
    if (h.state == "revoked") continue;
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
  return r;
}

http::Response Api::collectorStatus(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return http::errorResponse(who.error());
  auto live = fleet_.collector->liveAll();
  int64_t connected = 0, reachable = 0;
  for (const auto& [id, h] : live) {
    connected += h.connected;
    reachable += h.reachable;
  }
  auto s = fleet_.collector->stats();
  return jsonResponse(200, bj::object{{"hosts", live.size()},
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
