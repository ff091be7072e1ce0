// The agent daemon: probes and sampler, outbox, job supervisor, the mTLS API, renewal.
#include "agent_app.hpp"

#include <pwd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <set>

#include "agent_api.hpp"
#include "hwl/files.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/probes/probe.hpp"
#include "hwl/proto/events.hpp"
#include "hwl/signals.hpp"

namespace hwl::agent {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

bool isLoopback(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

std::vector<std::pair<std::string, bj::object>> gpuSet(const probes::Sample& s) {
  std::vector<std::pair<std::string, bj::object>> out;
  for (const auto& g : s.gpus) {
    bj::object d{{"uuid", g.uuid}, {"name", g.name}, {"index", g.index}};
    if (g.memory_total_bytes) d["memory_total_bytes"] = *g.memory_total_bytes;
    if (!g.driver_version.empty()) d["driver_version"] = g.driver_version;
    out.emplace_back(g.uuid, std::move(d));
  }
  return out;
}

}  // namespace

Status InventoryWatcher::observe(const std::vector<std::pair<std::string, bj::object>>& gpus,
                                 outbox::Outbox& outbox) {
  std::map<std::string, bj::object> before;
  if (auto text = files::readFile(file_)) {
    if (auto o = json::parseObject(*text); o && o->contains("gpus") && o->at("gpus").is_array())
      for (const auto& g : o->at("gpus").as_array())
        if (g.is_object() && g.as_object().contains("uuid"))
          before[std::string(g.as_object().at("uuid").as_string())] = g.as_object();
  }
  std::map<std::string, bj::object> now(gpus.begin(), gpus.end());
  bj::array added, removed, changed, all;
  for (const auto& [uuid, d] : now) {
    all.push_back(d);
    auto it = before.find(uuid);
    if (it == before.end())
      added.push_back(d);
    else if (json::canonical(it->second) != json::canonical(d))
      changed.push_back(d);
  }
  for (const auto& [uuid, d] : before)
    if (now.count(uuid) == 0) removed.push_back(d);
  if (added.empty() && removed.empty() && changed.empty()) return {};
  bj::object entry{{"added", added}, {"removed", removed}, {"changed", changed}, {"gpus", all}};
  // Durable in the outbox first, then the remembered inventory: a crash between the two records
  // the change again rather than never.
  auto r = outbox.append(proto::event::kHostInventoryChanged, entry);
  if (!r) return r.error();
  return files::writeFileAtomic(file_, bj::serialize(bj::object{{"gpus", all}}), 0600);
}

int runAgent(const AgentConfig& cfg_in, std::ostream& out) {
  // Taken by wait() below; every thread started from here inherits the mask.
  TerminationSignals signals;
  AgentConfig cfg = cfg_in;
  spdlog::set_default_logger(spdlog::stderr_color_mt("hwledger-agent"));

  auto hp = http::splitHostPort(cfg.listen);
  if (!hp) {
    std::cerr << "error: --listen: " << hp.error().message << "\n";
    return 2;
  }
  if (cfg.dev && !isLoopback(hp->first)) {
    std::cerr << "error: --dev serves plain HTTP and only on a loopback address, not " << hp->first
              << "\n";
    return 2;
  }
  std::error_code ec;
  fs::create_directories(cfg.state_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create " << cfg.state_dir << ": " << ec.message() << "\n";
    return 1;
  }
  fs::permissions(cfg.state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  // Job working directories live beside the (0700) state dir, writable by the job user.
  if (cfg.jobs_root.empty()) {
    auto sd = cfg.state_dir.lexically_normal();
    if (!sd.has_filename()) sd = sd.parent_path();
    cfg.jobs_root = sd.parent_path() / (sd.filename().string() + "-jobs");
  }
  if (!fs::exists(cfg.jobs_root)) {
    fs::create_directories(cfg.jobs_root, ec);
    fs::permissions(cfg.jobs_root, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (::geteuid() == 0 && !cfg.job_user.empty()) {
      if (struct passwd* pw = ::getpwnam(cfg.job_user.c_str()))
        if (::chown(cfg.jobs_root.c_str(), pw->pw_uid, pw->pw_gid) != 0)
          spdlog::warn("cannot give {} to {}", cfg.jobs_root.string(), cfg.job_user);
    }
  }

  auto identity = loadIdentity(cfg.state_dir);
  if (!identity) {
    std::cerr << "error: " << identity.error().message << "\n";
    return 1;
  }
  if (!cfg.dev && !identity->has_value()) {
    std::cerr << "error: this agent is not enrolled: run `hwledger-agent enroll --server URL "
                 "--token ID.SECRET --ca-pin sha256:HEX --state-dir "
              << cfg.state_dir.string() << "` (or --dev for a plain-HTTP loopback trial)\n";
    return 2;
  }
  if (!cfg.dev && (*identity)->not_after_ms <= SystemClock::instance().nowMs()) {
    std::cerr << "error: the agent certificate expired; enroll again with a new token\n";
    return 2;
  }

  probes::ProbeConfig pc;
  pc.gpu_source = cfg.probe;
  auto probe = probes::detectProbes(pc);
  if (!probe) {
    std::cerr << "error: probe: " << probe.error().message << "\n";
    return 2;
  }
  auto backends = (*probe)->backends();
  // A short ring per GPU (GET /v1/telemetry/history): two minutes at the default 1 Hz.
  probes::Sampler sampler(
      std::move(*probe),
      {.interval = std::chrono::milliseconds(cfg.sample_interval_ms), .ring_size = 120});
  sampler.start();

  std::string host_id = identity->has_value() ? (*identity)->host_id : "";
  auto outbox =
      outbox::Outbox::open({.dir = cfg.state_dir / "outbox",
                            .host_id = host_id.empty() ? "unenrolled" : host_id,
                            .max_entries = static_cast<uint64_t>(cfg.outbox_max_entries)});
  if (!outbox) {
    std::cerr << "error: outbox: " << outbox.error().message << "\n";
    return 1;
  }
  jobs::SupervisorSettings js{.state_dir = cfg.state_dir,
                              .jobs_root = cfg.jobs_root,
                              .job_user = cfg.job_user,
                              .log_max_bytes = static_cast<uint64_t>(cfg.log_max_bytes),
                              .log_keep = static_cast<uint32_t>(cfg.log_keep)};
  js.containment =
      jobs::parseContainmentChoice(cfg.job_containment).value_or(jobs::ContainmentChoice::kAuto);
  js.default_pids_max = cfg.job_pids_max;
  js.warn = [](const std::string& m) { spdlog::error("jobs: {}", m); };
  auto supervisor = jobs::Supervisor::open(std::move(js), **outbox);
  if (!supervisor) {
    std::cerr << "error: jobs: " << supervisor.error().message << "\n";
    return 1;
  }
  const auto& containment = (*supervisor)->containment();
  spdlog::info("job containment: {}", containment.description());
  if (cfg.job_pids_max > 0 && !containment.enforcesPids())
    spdlog::warn("job_pids_max {} is not enforced: no pids controller ({})", cfg.job_pids_max,
                 containment.description());

  AgentContext ctx;
  ctx.config = cfg;
  ctx.host_id = host_id;
  char hn[256] = {};
  ::gethostname(hn, sizeof hn - 1);
  ctx.hostname = hn;
  ctx.backends = backends;
  ctx.platform = platformFacts();
  ctx.sampler = &sampler;
  ctx.supervisor = supervisor->get();
  ctx.outbox = outbox->get();
  ctx.start_ms = SystemClock::instance().nowMs();
  AgentApi api(ctx);

  http::ServerSettings ss;
  ss.listen = cfg.listen;
  ss.server_name = std::string("hwledger-agent/") + kAgentVersion;
  ss.worker_threads = 4;
  ss.max_streams = 16;
  if (cfg.dev) {
    ss.plain_http = true;
  } else {
    ss.cert_file = (*identity)->identity_pem.string();
    ss.key_file = (*identity)->identity_pem.string();
    ss.client_ca_file = (*identity)->ca_pem.string();
    ss.client_cert = http::ClientCertMode::kRequired;
    // Only the server identity pinned at enrollment may call the agent (see AgentApi).
    ss.peer_allowed = [&api](const http::PeerCert& p) { return api.peerAllowed(p); };
  }
  http::Server server(
      ss, [&api](http::Request& r) { return api.handle(r); },
      [&api](std::string_view m, std::string_view p) { return api.bodyLimit(m, p); });
  if (auto s = server.start(); !s) {
    std::cerr << "error: " << s.error().message << "\n";
    return 1;
  }
  std::string addr = server.boundAddress();
  (void)files::writeFileAtomic(cfg.state_dir / "listen.addr", addr + "\n", 0644);
  out << "hwledger-agent " << kAgentVersion << " listening on "
      << (cfg.dev ? "http://" : "https://") << addr << " (probe " << sampler.probeName()
      << (host_id.empty() ? "" : ", host " + host_id) << ")" << std::endl;

  std::unique_ptr<Renewer> renewer;
  if (!cfg.dev && identity->has_value()) {
    renewer = std::make_unique<Renewer>(**identity, [&server](const Identity&) {
      if (auto s = server.reloadCertificate(); !s)
        spdlog::error("cannot load the renewed certificate: {}", s.error().message);
    });
    renewer->start();
  }

  // GPUs appearing or vanishing go to the outbox.
  std::atomic<bool> stop{false};
  std::thread inventory([&] {
    InventoryWatcher watcher(cfg.state_dir / "inventory.json");
    int64_t last_seen = 0;
    while (!stop) {
      auto s = sampler.latest();
      if (s && s->time_ms != last_seen) {
        last_seen = s->time_ms;
        if (auto st = watcher.observe(gpuSet(*s), **outbox); !st)
          spdlog::warn("inventory: {}", st.error().message);
      }
      for (int i = 0; i < 10 && !stop; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(cfg.sample_interval_ms / 10 + 1));
    }
  });

  int sig = signals.wait();
  spdlog::info("signal {}: stopping (jobs keep running)", sig);
  stop = true;
  server.stop();
  if (renewer) renewer->stop();
  inventory.join();
  (*supervisor)->stop();
  sampler.stop();
  fs::remove(cfg.state_dir / "listen.addr", ec);
  return 0;
}

}  // namespace hwl::agent
