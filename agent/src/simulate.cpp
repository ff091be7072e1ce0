// Simulated hosts: enrollment, a shared sampler thread, and one mTLS listener per host on a
// shared runtime (the slow-dispatch host, when there is one, on a runtime of its own).
#include "simulate.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <charconv>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "agent_app.hpp"
#include "agent_config.hpp"
#include "enrollment.hpp"
#include "hwl/crypto.hpp"
#include "hwl/http.hpp"
#include "hwl/jobs/job_spec.hpp"
#include "hwl/jobs/job_state.hpp"
#include "hwl/json.hpp"
#include "hwl/outbox/outbox.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/probes/replay_probe.hpp"
#include "hwl/signals.hpp"

namespace hwl::agent {

namespace bj = boost::json;
namespace fs = std::filesystem;

std::string simulatedAddress(int i, uint16_t port) {
  return "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250) + ":" +
         std::to_string(port);
}

bool parseSlowDispatch(const std::string& text, SimulateOptions& opts) {
  auto colon = text.find(':');
  if (colon == std::string::npos) return false;
  int host = -1;
  int64_t ms = -1;
  const char* b = text.data();
  const char* e = b + text.size();
  auto r1 = std::from_chars(b, b + colon, host);
  auto r2 = std::from_chars(b + colon + 1, e, ms);
  if (r1.ec != std::errc() || r1.ptr != b + colon || r2.ec != std::errc() || r2.ptr != e)
    return false;
  if (host < 0 || ms < 0 || ms > 3'600'000) return false;
  opts.slow_dispatch_host = host;
  opts.slow_dispatch_ms = ms;
  return true;
}

namespace {

struct SimHost {
  int index = 0;
  Identity id;
  std::unique_ptr<probes::ReplayProbe> probe;
  std::unique_ptr<outbox::Outbox> outbox;
  std::unique_ptr<InventoryWatcher> inventory;
  std::mutex mu;
  std::shared_ptr<const probes::Sample> latest;
  std::unique_ptr<http::Server> server;
  // Jobs accepted by POST /v1/jobs, kept in memory and never run.
  fs::path jobs_root;
  int64_t dispatch_delay_ms = 0;
  std::mutex jobs_mu;
  std::map<std::string, jobs::JobInfo> jobs;
};

// POST /v1/jobs as the real agent answers it (agent_api.cpp submitJob, Supervisor::submit): the
// spec checked against this host's GPUs, 201 for a new job, 200 for the same id and spec again,
// 409 for the same id with another spec.
http::Response submitJob(SimHost& h, http::Request& req) {
  if (h.dispatch_delay_ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(h.dispatch_delay_ms));
  auto body = json::parse(req.body);
  if (!body) return http::errorResponse(body.error());
  std::vector<std::string> uuids;
  {
    std::lock_guard lk(h.mu);
    if (h.latest)
      for (const auto& g : h.latest->gpus) uuids.push_back(g.uuid);
  }
  auto spec = jobs::parseJobSpec(*body, uuids, h.jobs_root);
  if (!spec) return http::errorResponse(spec.error());
  std::lock_guard lk(h.jobs_mu);
  if (auto it = h.jobs.find(spec->id); it != h.jobs.end()) {
    if (it->second.spec == *spec) return http::jsonResponse(200, it->second.toJson());
    return http::errorResponse(conflict("id: job " + spec->id + " exists with a different spec"));
  }
  jobs::JobInfo info;
  info.spec = *spec;
  info.state = jobs::JobState::kAccepted;
  info.accepted_ms = SystemClock::instance().nowMs();
  auto out = http::jsonResponse(201, info.toJson());
  h.jobs.emplace(spec->id, std::move(info));
  return out;
}

http::Response handle(SimHost& h, http::Request& req) {
  auto json = [](const bj::value& v) {
    http::Response r;
    r.body = bj::serialize(v);
    return r;
  };
  if (req.path == "/v1/jobs" && req.method == "POST") return submitJob(h, req);
  if (req.method != "GET")
    return http::jsonError(503, "unavailable", "a simulated host runs no jobs");
  if (req.path == "/v1/jobs") {
    bj::array arr;
    std::lock_guard lk(h.jobs_mu);
    for (const auto& [id, j] : h.jobs) arr.push_back(j.toJson());
    return json(bj::object{{"jobs", std::move(arr)}});
  }
  if (auto seg = http::splitPath(req.path); seg.size() == 3 && seg[0] == "v1" && seg[1] == "jobs") {
    std::lock_guard lk(h.jobs_mu);
    auto it = h.jobs.find(seg[2]);
    if (it == h.jobs.end()) return http::errorResponse(notFound("no job \"" + seg[2] + "\""));
    return json(it->second.toJson());
  }
  if (req.path == "/v1/health")
    return json(bj::object{{"status", "ok"}, {"host_id", h.id.host_id}, {"simulated", true}});
  if (req.path == "/v1/telemetry") {
    std::shared_ptr<const probes::Sample> s;
    {
      std::lock_guard lk(h.mu);
      s = h.latest;
    }
    if (!s) return http::jsonError(503, "unavailable", "no sample has been taken yet");
    return json(probes::toJson(*s));
  }
  if (req.path == "/v1/outbox") {
    uint64_t after = 0;
    if (auto it = req.query.find("after"); it != req.query.end())
      after = std::strtoull(it->second.c_str(), nullptr, 10);
    if (after > 0) (void)h.outbox->acknowledge(after);
    bj::array arr;
    for (const auto& e : h.outbox->read(after, 500)) arr.push_back(e.toJson());
    return json(bj::object{{"host_id", h.id.host_id}, {"entries", std::move(arr)}});
  }
  return http::jsonError(404, "not_found", "no such resource on a simulated host");
}

}  // namespace

int runSimulation(const SimulateOptions& o, std::ostream& out) {
  // Taken by wait() below; every thread started from here inherits the mask.
  TerminationSignals signals;
  if (o.count <= 0 || o.count > 60'000) {
    std::cerr << "error: --simulate takes 1 to 60000 hosts\n";
    return 2;
  }
  if (o.probe.rfind("replay:", 0) != 0) {
    std::cerr << "error: simulated hosts need --probe replay:PATH\n";
    return 2;
  }
  std::vector<std::string> tokens;
  if (!o.tokens_file.empty()) {
    std::ifstream in(o.tokens_file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) tokens.push_back(line);
  }
  auto platform = platformFacts();
  std::vector<std::unique_ptr<SimHost>> hosts;
  size_t next_token = 0;
  for (int i = 0; i < o.count; ++i) {
    auto h = std::make_unique<SimHost>();
    h->index = i;
    fs::path dir = o.state_dir / ("sim-" + std::to_string(i));
    std::string addr = simulatedAddress(i, o.port);
    auto id = loadIdentity(dir);
    if (!id) {
      std::cerr << "error: " << dir << ": " << id.error().message << "\n";
      return 1;
    }
    if (!id->has_value()) {
      if (next_token >= tokens.size()) {
        std::cerr << "error: host " << i
                  << " is not enrolled and --tokens-file has no token left\n";
        return 2;
      }
      auto p = platform;
      p["hostname"] = "sim-" + std::to_string(i);
      auto e = enroll({.server = o.server,
                       .token = tokens[next_token++],
                       .ca_pin = o.ca_pin,
                       .state_dir = dir,
                       .name = "sim-" + std::to_string(i),
                       .advertise = addr,
                       .platform = p});
      if (!e) {
        std::cerr << "error: enrolling host " << i << ": " << e.error().message << "\n";
        return 1;
      }
      h->id = *e;
    } else {
      h->id = **id;
    }
    auto probe = probes::ReplayProbe::open(o.probe.substr(7));
    if (!probe) {
      std::cerr << "error: " << probe.error().message << "\n";
      return 2;
    }
    h->probe = std::move(*probe);
    for (int k = 0; k < i % 7; ++k) (void)h->probe->sample();  // each host at its own phase
    auto ob = outbox::Outbox::open(
        {.dir = dir / "outbox", .host_id = h->id.host_id, .max_entries = 10'000});
    if (!ob) {
      std::cerr << "error: " << ob.error().message << "\n";
      return 1;
    }
    h->outbox = std::move(*ob);
    h->inventory = std::make_unique<InventoryWatcher>(dir / "inventory.json");
    h->jobs_root = dir / "jobs";
    if (i == o.slow_dispatch_host) h->dispatch_delay_ms = o.slow_dispatch_ms;
    hosts.push_back(std::move(h));
  }
  out << "simulating " << hosts.size() << " hosts (" << next_token << " enrolled now)" << std::endl;

  if (o.slow_dispatch_host >= o.count) {
    std::cerr << "error: --slow-dispatch names host " << o.slow_dispatch_host << " of " << o.count
              << "\n";
    return 2;
  }
  auto runtime = std::make_shared<http::Runtime>(1, 4);
  // The slow host's answers wait in their handlers: on threads of their own.
  auto slow_runtime = o.slow_dispatch_host >= 0 ? std::make_shared<http::Runtime>(1, 32) : nullptr;
  for (auto& h : hosts) {
    http::ServerSettings ss;
    ss.listen = simulatedAddress(h->index, o.port);
    ss.cert_file = h->id.identity_pem.string();
    ss.key_file = h->id.identity_pem.string();
    ss.client_ca_file = h->id.ca_pem.string();
    ss.client_cert = http::ClientCertMode::kRequired;
    // Only the server identity pinned at enrollment (by public key) may call a simulated host.
    ss.peer_allowed = [pin = h->id.server_spki](const http::PeerCert& p) {
      return !pin.empty() && crypto::constantTimeEqual(p.spki_sha256_hex, pin);
    };
    ss.runtime = h->index == o.slow_dispatch_host ? slow_runtime : runtime;
    ss.server_name = std::string("hwledger-agent/") + kAgentVersion;
    SimHost* hp = h.get();
    h->server =
        std::make_unique<http::Server>(ss, [hp](http::Request& r) { return handle(*hp, r); });
    if (auto s = h->server->start(); !s) {
      std::cerr << "error: host " << h->index << ": " << s.error().message << "\n";
      return 1;
    }
  }
  out << "listening on " << simulatedAddress(0, o.port) << " ... "
      << simulatedAddress(o.count - 1, o.port) << std::endl;

  std::atomic<bool> stop{false};
  std::thread sampler([&] {
    auto next = std::chrono::steady_clock::now();
    while (!stop) {
      int64_t now = SystemClock::instance().nowMs();
      for (auto& h : hosts) {
        auto s = h->probe->sample();
        if (!s) continue;
        s->time_ms = now;
        // Distinct uuids per simulated host.
        char prefix[16];
        std::snprintf(prefix, sizeof prefix, "GPU-%08x", static_cast<unsigned>(h->index));
        std::vector<std::pair<std::string, bj::object>> inv;
        for (auto& g : s->gpus) {
          if (g.uuid.size() > 12) g.uuid = prefix + g.uuid.substr(12);
          bj::object d{{"uuid", g.uuid}, {"name", g.name}, {"index", g.index}};
          if (g.memory_total_bytes) d["memory_total_bytes"] = *g.memory_total_bytes;
          if (!g.driver_version.empty()) d["driver_version"] = g.driver_version;
          inv.emplace_back(g.uuid, std::move(d));
        }
        (void)h->inventory->observe(inv, *h->outbox);
        auto shared = std::make_shared<const probes::Sample>(std::move(*s));
        std::lock_guard lk(h->mu);
        h->latest = std::move(shared);
      }
      next += std::chrono::milliseconds(o.sample_interval_ms);
      while (!stop && std::chrono::steady_clock::now() < next)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  signals.wait();
  stop = true;
  sampler.join();
  runtime->stop();
  if (slow_runtime) slow_runtime->stop();
  return 0;
}

}  // namespace hwl::agent
