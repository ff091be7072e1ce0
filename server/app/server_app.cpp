// hwledger-server subcommands: init, run (with graceful shutdown), rebuild.
#include "server_app.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <iostream>
#include <limits>

#include "agentless/installer.hpp"
#include "agentless/session_pool.hpp"
#include "agentless/ssh_driver.hpp"
#include "agentless/ssh_jobs.hpp"
#include "agentless/ssh_source.hpp"
#include "api/api.hpp"
#include "collect/collector.hpp"
#include "dispatch/agent_driver.hpp"
#include "dispatch/recovery.hpp"
#include "evidence/evidence_recorder.hpp"
#include "hwl/crypto.hpp"
#include "hwl/files.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"
#include "hwl/pki.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/proto/events.hpp"
#include "hwl/signals.hpp"
#include "pki/fleet_ca.hpp"
#include "rentals/offer_catalog.hpp"
#include "rentals/rental_manager.hpp"
#include "storage/fleet_projection.hpp"
#include "storage/hosts_projection.hpp"
#include "storage/telemetry_store.hpp"
#include "storage/tokens_projection.hpp"

namespace hwl::server {

namespace fs = std::filesystem;

namespace {

// The GPUs the collector sees now, with their processes, for the evidence recorder.
std::vector<evidence::LiveGpu> liveGpus(const std::map<std::string, collect::HostLive>& live) {
  std::vector<evidence::LiveGpu> out;
  for (const auto& [host, l] : live) {
    if (!l.telemetry || !l.reachable) continue;
    const auto* gpus = l.telemetry->if_contains("gpus");
    if (gpus == nullptr || !gpus->is_array()) continue;
    for (const auto& gv : gpus->as_array()) {
      if (!gv.is_object()) continue;
      const auto& g = gv.as_object();
      const auto* uuid = g.if_contains("uuid");
      if (uuid == nullptr || !uuid->is_string()) continue;
      evidence::LiveGpu lg{host, std::string(uuid->as_string()), l.telemetry_ms, {}, {}};
      if (const auto* u = g.if_contains("utilization_gpu_pct"); u != nullptr && u->is_number())
        lg.util_pct = u->to_number<double>();
      for (auto& p : probes::processesFromJson(g)) {
        evidence::LiveGpu::Process proc{p.pid, std::move(p.name), {}, std::move(p.job_id)};
        if (p.memory_bytes &&
            *p.memory_bytes <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          proc.memory_bytes = static_cast<int64_t>(*p.memory_bytes);
        }
        lg.processes.push_back(std::move(proc));
      }
      lg.processes_matched = json::flagOf(g, "processes_matched");
      out.push_back(std::move(lg));
    }
  }
  return out;
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// The hwledger-agent binary the installer copies to hosts: agent_binary, else the one beside this
// executable; empty when there is none.
fs::path agentBinary(const ServerConfig& cfg) {
  if (!cfg.agent_binary.empty()) return cfg.agent_binary;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const fs::path beside = self.parent_path() / "hwledger-agent";
  return fs::exists(beside, ec) ? beside : fs::path();
}

// Where agents reach this server: public_url, else the address it listens on (listen.addr),
// which must then be one a host can connect to.
Result<std::string> agentFacingUrl(const ServerConfig& cfg, const DataDir& dir) {
  if (!cfg.public_url.empty()) return cfg.public_url;
  auto addr = files::readFile(dir.listenAddr(), 1024);
  if (!addr)
    return unavailable("the server's address is not known yet (" + dir.listenAddr().string() + ")");
  std::string a = *addr;
  while (!a.empty() && (a.back() == '\n' || a.back() == '\r')) a.pop_back();
  if (a.rfind("0.0.0.0:", 0) == 0 || a.rfind("[::]:", 0) == 0)
    return Error{Code::kFailedPrecondition,
                 "the server listens on every address (" + a +
                     ") and has no public_url: set public_url to the https://HOST:PORT that "
                     "hosts reach it at",
                 "install_agent_no_url",
                 {}};
  return "https://" + a;
}

Status writeSecret(const fs::path& p, std::string_view content) {
  return files::writeFileAtomic(p, content, 0600);
}

Status writePublic(const fs::path& p, std::string_view content) {
  return files::writeFileAtomic(p, content, 0644);
}

}  // namespace

void addProjections(storage::LedgerOptions& lo) {
  lo.projections.push_back(std::make_unique<storage::TokensProjection>());
  lo.projections.push_back(std::make_unique<storage::EnrollTokensProjection>());
  lo.projections.push_back(std::make_unique<storage::HostsProjection>());
  lo.projections.push_back(std::make_unique<storage::FleetProjection>());
}

Result<std::unique_ptr<storage::SqliteLedger>> openLedger(const DataDir& dir,
                                                          int64_t checkpoint_every) {
  storage::LedgerOptions lo;
  lo.db_path = dir.ledger();
  lo.checkpoint_every = checkpoint_every;
  lo.checkpoint_log = dir.checkpointLog();
  auto key = crypto::loadPrivateKeyPem(dir.checkpointKey());
  if (!key) return key.error();
  lo.signing_key = std::shared_ptr<EVP_PKEY>(key->release(), crypto::PkeyFree{});
  addProjections(lo);
  return storage::SqliteLedger::open(std::move(lo));
}

Result<std::string> initDataDir(const InitOptions& opts) {
  const fs::path& dir = opts.data_dir;
  std::error_code ec;
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec)))
    return Error{Code::kAlreadyExists,
                 dir.string() + " already exists and is not empty: refusing to initialise it"};
  // Everything is built in a sibling directory and renamed into place at the end, so a failed
  // init leaves nothing behind.
  fs::path parent = fs::absolute(dir).parent_path();
  fs::create_directories(parent, ec);
  fs::path tmp = parent / (".hwledger-init-" + crypto::newId("", 6));
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return internal("cannot create " + tmp.string() + ": " + std::strerror(errno));
  struct Cleanup {
    fs::path p;
    bool keep = false;
    ~Cleanup() {
      if (!keep) {
        std::error_code e;
        fs::remove_all(p, e);
      }
    }
  } cleanup{tmp};
  DataDir d{tmp};

  auto ca_key = pki::generateP256();
  pki::CertSpec ca_spec;
  ca_spec.common_name = "hwLedger fleet CA";
  ca_spec.lifetime_s = 10LL * 365 * 24 * 3600;
  auto ca = pki::makeCa(ca_key.get(), ca_spec);
  if (!ca) return ca.error();
  auto srv_key = pki::generateP256();
  pki::CertSpec srv_spec;
  srv_spec.common_name = "hwledger-server";
  srv_spec.dns = {"localhost"};
  std::string name = opts.server_name.empty() ? hostName() : opts.server_name;
  if (name != "localhost") srv_spec.dns.push_back(name);
  srv_spec.ips = {"127.0.0.1", "::1"};
  srv_spec.uris = {"hwledger://server"};
  srv_spec.server_auth = true;
  srv_spec.client_auth = true;  // the server also calls agents with this identity
  srv_spec.lifetime_s = 397LL * 24 * 3600;
  auto srv = pki::issue(ca->get(), ca_key.get(), srv_key.get(), srv_spec);
  if (!srv) return srv.error();
  auto cp_key = crypto::generateEd25519();

  for (const auto& s :
       {writeSecret(d.caKey(), crypto::privateKeyPem(ca_key.get())),
        writePublic(d.caCert(), pki::certPem(ca->get())),
        writeSecret(d.serverKey(), crypto::privateKeyPem(srv_key.get())),
        writePublic(d.serverCert(), pki::certPem(srv->get()) + pki::certPem(ca->get())),
        writeSecret(d.checkpointKey(), crypto::privateKeyPem(cp_key.get())),
        writePublic(d.checkpointPub(), crypto::publicKeyPem(cp_key.get()))}) {
    if (!s) return s.error();
  }

  std::string token;
  {
    storage::LedgerOptions lo;
    lo.db_path = d.ledger();
    lo.create = true;
    lo.checkpoint_log = d.checkpointLog();
    lo.signing_key = std::shared_ptr<EVP_PKEY>(cp_key.release(), crypto::PkeyFree{});
    addProjections(lo);
    auto l = storage::SqliteLedger::open(std::move(lo));
    if (!l) return l.error();
    auto t = api::createToken(**l, SystemClock::instance(), ledger::Role::kAdmin, std::nullopt,
                              "created by init", "system");
    if (!t) return t.error();
    token = t->token;
    (*l)->close();
  }
  // The token file is written before the directory is moved into place: if it cannot be
  // written, init fails as a whole and nobody is locked out of a ledger whose token is lost.
  if (opts.admin_token_file) {
    if (auto s = writeSecret(*opts.admin_token_file, token + "\n"); !s) return s.error();
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    std::string why = std::strerror(errno);
    if (opts.admin_token_file) fs::remove(*opts.admin_token_file, ec);
    return internal("cannot move the new data directory into " + dir.string() + ": " + why);
  }
  cleanup.keep = true;
  return token;
}

std::string routesJson() {
  return boost::json::serialize(
      api::Api::allRoutes(static_cast<size_t>(ServerConfig{}.body_limit_bytes)).toJson());
}

int runServer(const ServerConfig& cfg, std::ostream& out) {
  // Taken by wait() below; every thread started from here inherits the mask.
  TerminationSignals signals;

  // Logs go to stderr (stdout carries the address line that scripts read).
  spdlog::set_default_logger(spdlog::stderr_color_mt("hwledger-server"));
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  DataDir dir{cfg.data_dir};
  if (!fs::exists(dir.ledger())) {
    std::cerr << "error: no ledger in " << dir.root << " (run: hwledger-server init --data-dir "
              << dir.root << ")\n";
    return 2;
  }
  auto ledger = openLedger(dir, cfg.checkpoint_every);
  if (!ledger) {
    std::cerr << "error: " << ledger.error().message << "\n";
    return 1;
  }
  auto ca = FleetCa::load(dir.caCert(), dir.caKey());
  if (!ca) {
    std::cerr << "error: " << ca.error().message << "\n";
    return 1;
  }
  api::ApiSettings as;
  as.version = kVersion;
  as.public_url = cfg.public_url;
  as.default_body_limit = static_cast<size_t>(cfg.body_limit_bytes);
  as.agent_cert_lifetime_s = cfg.agent_cert_lifetime_s;
  as.streams = {.total = static_cast<size_t>(cfg.max_streams),
                .per_principal = static_cast<size_t>(cfg.max_streams_per_principal),
                .admin_reserve = static_cast<size_t>(cfg.admin_stream_reserve)};
  as.model_dir = cfg.model_dir;
  as.auth.failure_burst = cfg.auth_fail_burst;
  as.auth.failure_refill_per_s = static_cast<double>(cfg.auth_fail_refill_per_minute) / 60.0;
  api::Api api(**ledger, SystemClock::instance(), as, ca->get());

  storage::TelemetryStore store(**ledger, {.raw_retention_ms = cfg.raw_retention_s * 1000,
                                           .minute_retention_ms = cfg.minute_retention_s * 1000});
  // One transport to agents, shared by the collector and the agent driver.
  dispatch::AgentTransport transport({.ca_file = dir.caCert().string(),
                                      .cert_file = dir.serverCert().string(),
                                      .key_file = dir.serverKey().string()});
  if (auto s = transport.start(); !s) {
    std::cerr << "error: " << s.error().message << "\n";
    return 1;
  }
  collect::Collector collector(
      **ledger, store,
      {.telemetry_interval = std::chrono::milliseconds(cfg.telemetry_interval_ms),
       .outbox_interval = std::chrono::milliseconds(cfg.outbox_interval_ms),
       .request_timeout = std::chrono::milliseconds(cfg.scrape_timeout_ms)},
      transport);
  const dispatch::LiveView live = [&collector](const std::string& id) { return collector.now(id); };
  dispatch::Scheduler scheduler(**ledger, live);
  scheduler.addDriver(std::make_unique<dispatch::AgentDriver>(transport));
  // Agentless hosts: one session pool for polls and jobs, the SSH host source, enrollment.
  agentless::SessionPool ssh_pool(
      agentless::KeyStore(dir.sshKeys()),
      {.connect_timeout = std::chrono::milliseconds(cfg.ssh_connect_timeout_ms),
       .command_timeout = std::chrono::milliseconds(cfg.ssh_command_timeout_ms)});
  // Jobs on SSH hosts: the driver launches and cancels them, the tracker (the source's job
  // poller) records their states, and a launch or a cancel wakes it for that host.
  const agentless::SshJobSettings ssh_jobs{
      .job_root = cfg.ssh_job_root,
      .command_timeout = std::chrono::milliseconds(cfg.ssh_command_timeout_ms)};
  agentless::SshJobTracker ssh_tracker(**ledger, ssh_pool, ssh_jobs);
  // On every return, the sources' threads stop before the tracker and the pool they use go.
  struct StopCollector {
    collect::Collector& c;
    ~StopCollector() { c.stop(); }
  } stop_collector{collector};
  auto ssh_source = std::make_unique<agentless::SshSource>(
      collector.sink(), **ledger, ssh_pool,
      agentless::SshSourceSettings{
          .poll_interval = std::chrono::milliseconds(cfg.ssh_poll_interval_ms),
          .job_interval = std::chrono::milliseconds(cfg.ssh_job_interval_ms),
          .threads = static_cast<int>(cfg.ssh_poll_threads)},
      ssh_tracker.poller());
  agentless::SshSource* ssh_jobs_wake = ssh_source.get();
  collector.addSource(std::move(ssh_source));
  scheduler.addDriver(std::make_unique<agentless::SshDriver>(
      **ledger, ssh_pool, ssh_jobs,
      [ssh_jobs_wake](const std::string& host_id) { ssh_jobs_wake->jobsChanged(host_id); }));
  // install-agent mode: the agent binary, the unit and config built in, single-use tokens, and
  // revocation of a host whose installation failed after it enrolled.
  const auto files = agentless::agentInstallFiles();
  agentless::AgentInstaller installer(
      **ledger,
      {.agent_binary = agentBinary(cfg),
       .unit_template = std::string(files.unit),
       .config_template = std::string(files.config),
       .server_url = [&cfg, &dir] { return agentFacingUrl(cfg, dir); },
       .ca_pin = (*ca)->pin(),
       .issue_token = [&ledger](const std::string& name,
                                const std::string& actor) -> Result<agentless::IssuedEnrollToken> {
         auto t = api::createEnrollToken(**ledger, SystemClock::instance(), 15 * 60,
                                         api::isHostHint(name) ? name : "", actor);
         if (!t) return t.error();
         return agentless::IssuedEnrollToken{t->id, t->token};
       },
       .revoke_token =
           [&ledger](const std::string& id, const std::string& actor) {
             return api::revokeUnusedEnrollToken(**ledger, id, actor);
           },
       .revoke_host = [&ledger, &api, &collector](const std::string& id, const std::string& reason,
                                                  const std::string& actor) -> Status {
         auto r = (*ledger)->append("host/" + id, ledger::kAnyVersion, actor,
                                    {{"", proto::event::kHostRevoked,
                                      boost::json::object{{"host_id", id}, {"reason", reason}}}});
         if (!r) return r.error();
         api.loadDenylist();
         collector.syncHosts();
         return {};
       },
       .command_timeout = std::chrono::milliseconds(cfg.ssh_command_timeout_ms)});
  agentless::SshEnrollContext ssh_enroll{.ledger = **ledger,
                                         .keys = ssh_pool.keys(),
                                         .known_hosts = dir.knownHosts(),
                                         .key_dir = cfg.ssh_key_dir,
                                         .data_dir = dir.root,
                                         .timeouts = ssh_pool.settings(),
                                         .actor = {},
                                         .install_agent = {}};
  if (!installer.settings().agent_binary.empty())
    ssh_enroll.install_agent =
        [&installer](ssh::SshSession& s, const agentless::SshEnrollRequest& req,
                     const agentless::Probed& probed,
                     const std::string& actor) { return installer.install(s, req, probed, actor); };
  // Cloud rentals: the providers of the config, their offers, and the manager that launches,
  // follows, reconciles and accounts for rentals (started below, before the listener).
  std::unique_ptr<rentals::OfferCatalog> offers;
  std::unique_ptr<rentals::RentalManager> rental_manager;
  if (!cfg.rentals.providers.empty()) {
    auto providers = rentals::makeProviders(cfg.rentals);
    if (!providers) {
      std::cerr << "error: " << providers.error().message << "\n";
      return 1;
    }
    offers = std::make_unique<rentals::OfferCatalog>(
        *providers, std::chrono::seconds(cfg.rentals.offers_ttl_s));
    rentals::ManagerDeps deps;
    deps.ledger = ledger->get();
    deps.clock = &SystemClock::instance();
    deps.providers = *providers;
    deps.config = cfg.rentals;
    deps.poll_interval = std::chrono::milliseconds(cfg.rentals.poll_interval_ms);
    deps.find_offer = [&offers](std::string_view id) { return offers->find(id); };
    // Each rental gets a key of the server's own, the way in to its instance.
    deps.key_dir = (dir.root / "ssh" / "rental-keys").string();
    // With "agent", the agent is installed over the same SSH session (the installer of
    // POST /v1/hosts/ssh in install-agent mode, with agent_install's options).
    const bool with_agent = cfg.rentals.enroll == "agent";
    agentless::InstallOptions install;
    if (with_agent) {
      auto io = agentless::parseInstallOptions(cfg.rentals.agent_install);
      if (!io) {
        std::cerr << "error: \"providers\".\"agent_install\": " << io.error().message << "\n";
        return 1;
      }
      if (!ssh_enroll.install_agent) {
        std::cerr << "error: \"providers\": \"enroll\": \"agent\" needs an agent binary to "
                     "install (\"agent_binary\", or hwledger-agent beside the server)\n";
        return 1;
      }
      install = *io;
    }
    if (cfg.rentals.enroll != "none") {
      deps.enroll = [&ssh_enroll, &collector, &ledger, with_agent, install](
                        const rentals::Rental& r,
                        const std::string& key_file) -> Result<std::string> {
        const std::string name = r.name.empty() ? r.id : r.name;
        // Enrolled already (by a run killed before it recorded rental.host_enrolled): the host
        // at this SSH address (agentless), or the agent host of this name enrolled since the
        // rental ran, is the rental's.
        agentless::SshTarget at;
        at.host = r.ssh_host;
        at.port = static_cast<uint16_t>(r.ssh_port);
        auto hosts = (*ledger)->withReader([](ledger::ReadView& v) { return v.listHosts(); });
        if (!hosts) return hosts.error();
        for (const auto& h : *hosts) {
          if (h.revoked_ms) continue;
          if (!with_agent && h.kind == proto::HostKind::kSsh && h.address == at.address())
            return h.id;
          if (with_agent && h.kind == proto::HostKind::kAgent && h.name == name &&
              h.enrolled_ms >= r.running_ms)
            return h.id;
        }
        auto pem = files::readFile(key_file, 64 * 1024);
        if (!pem) return pem.error();
        agentless::SshEnrollRequest req;
        req.target.user = r.ssh_user.empty() ? "root" : r.ssh_user;
        req.target.host = r.ssh_host;
        req.target.port = static_cast<uint16_t>(r.ssh_port);
        req.target.key = agentless::KeyKind::kStored;
        req.key_pem = ssh::Secret(std::move(*pem));
        // A fresh instance's host key is new to everyone: trusted on first use, pinned after.
        req.trust_on_first_use = true;
        req.name = name;
        if (with_agent) {
          req.mode = agentless::EnrollMode::kInstallAgent;
          req.install = install;
        }
        agentless::SshEnrollContext ctx = ssh_enroll;
        ctx.actor = "system";
        auto host = agentless::enrollSsh(std::move(req), ctx);
        if (!host) return host.error();
        collector.syncHosts();
        const auto* id = host->if_contains("host_id");
        if (id == nullptr || !id->is_string()) return internal("enrollment answered no host id");
        return std::string(id->as_string());
      };
    }
    deps.retire_host = [&ledger, &api, &collector](const std::string& id, const std::string& why) {
      auto r = (*ledger)->append("host/" + id, ledger::kAnyVersion, "system",
                                 {{"", proto::event::kHostRevoked,
                                   boost::json::object{{"host_id", id}, {"reason", why}}}});
      if (!r) {
        spdlog::warn("retiring host {}: {}", id, r.error().message);
        return;
      }
      api.loadDenylist();
      collector.syncHosts();
    };
    deps.job_gpu_ms = [&ledger](const std::string& host_id, int64_t from, int64_t to) {
      std::map<std::string, int64_t> out;
      auto jobs = (*ledger)->withReader([&](ledger::ReadView& v) { return v.listJobs(host_id); });
      if (!jobs) return out;
      for (const auto& j : *jobs) {
        if (!j.started_ms) continue;
        int64_t a = std::max(from, *j.started_ms);
        int64_t b = std::min(to, j.ended_ms.value_or(to));
        if (b <= a) continue;
        boost::system::error_code ec;
        auto gpus = boost::json::parse(j.gpus, ec);
        int64_t n = !ec && gpus.is_array() ? static_cast<int64_t>(gpus.as_array().size()) : 0;
        if (n > 0) out[j.id] += (b - a) * n;
      }
      return out;
    };
    auto m = rentals::RentalManager::open(std::move(deps));
    if (!m) {
      std::cerr << "error: " << m.error().message << "\n";
      return 1;
    }
    rental_manager = std::move(*m);
  }
  api.setFleet({.collector = &collector,
                .store = &store,
                .scheduler = &scheduler,
                .cert_file = dir.serverCert().string(),
                .on_hosts_changed = [&collector] { collector.syncHosts(); },
                .ssh = &ssh_enroll,
                .rentals = rental_manager.get(),
                .offers = offers.get()});
  store.start();
  // Evidence: job.usage from the time series once a job has ended and hourly while it runs;
  // job.idle; processes on GPUs no job holds, from the collector's live view.
  evidence::EvidenceRecorder usage(**ledger, store,
                                   {.interval = std::chrono::milliseconds(cfg.usage_interval_ms),
                                    .settle_ms = cfg.usage_settle_ms,
                                    .idle_after_ms = cfg.job_idle_after_ms,
                                    .unaccounted_after_ms = cfg.unaccounted_after_ms},
                                   SystemClock::instance(),
                                   [&collector] { return liveGpus(collector.liveAll()); });
  if (auto s = usage.start(); !s) {
    std::cerr << "error: " << s.error().message << "\n";
    return 1;
  }
  if (auto s = collector.start(); !s) {
    std::cerr << "error: " << s.error().message << "\n";
    return 1;
  }
  // Jobs a previous run placed but may not have dispatched (it was killed in between): taken
  // before this run serves any submission, dispatched again or failed.
  dispatch::PlacedJobRecovery recovery(**ledger, scheduler, live, {});
  if (auto s = recovery.start(); !s) {
    std::cerr << "error: " << s.error().message << "\n";
    return 1;
  }
  // Every provider's rentals are reconciled by its thread before launches on it are accepted.
  if (rental_manager) rental_manager->start();

  http::ServerSettings ss;
  ss.listen = cfg.listen;
  ss.cert_file = dir.serverCert().string();
  ss.key_file = dir.serverKey().string();
  ss.header_limit = static_cast<size_t>(cfg.header_limit_bytes);
  ss.body_limit = static_cast<size_t>(cfg.body_limit_bytes);
  ss.header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
  ss.idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
  ss.worker_threads = static_cast<int>(cfg.worker_threads);
  ss.max_streams = static_cast<size_t>(cfg.max_streams);
  ss.server_name = std::string("hwledger-server/") + kVersion;
  // Agents (and admins) present client certificates from the fleet CA; operators may use tokens.
  ss.client_ca_file = dir.caCert().string();
  ss.client_cert = http::ClientCertMode::kOptional;
  ss.peer_allowed = [&api](const http::PeerCert& p) { return api.peerAllowed(p); };
  http::Server server(
      ss, [&api](http::Request& r) { return api.handle(r); },
      [&api](std::string_view m, std::string_view p) { return api.bodyLimit(m, p); });
  if (auto s = server.start(); !s) {
    std::cerr << "error: " << s.error().message << "\n";
    return 1;
  }
  std::string addr = server.boundAddress();
  if (auto s = files::writeFileAtomic(dir.listenAddr(), addr + "\n", 0644); !s)
    spdlog::warn("cannot write {}: {}", dir.listenAddr().string(), s.error().message);
  out << "hwledger-server " << kVersion << " listening on https://" << addr << std::endl;
  spdlog::info("ledger {} at seq {}", dir.ledger().string(), (*ledger)->headSeq());

  int sig = signals.wait();
  spdlog::info("signal {}: shutting down", sig);
  server.stop();    // in-flight requests finish and are answered
  recovery.stop();  // a dispatch in progress finishes (bounded by its timeout)
  if (rental_manager) rental_manager->stop();  // provider calls in progress finish
  collector.stop();                            // drains in progress finish their appends
  usage.stop();                                // a usage append in progress commits
  store.stop();                                // buffered samples are written
  transport.stop();                            // pooled connections to agents close
  (*ledger)->close();  // queued appends commit; a final checkpoint is signed
  std::error_code ec;
  fs::remove(dir.listenAddr(), ec);
  out << "hwledger-server stopped at seq " << (*ledger)->headSeq() << std::endl;
  return 0;
}

int rebuild(const DataDir& dir, std::ostream& out) {
  auto ledger = openLedger(dir, 1000);
  if (!ledger) {
    std::cerr << "error: " << ledger.error().message << "\n";
    return 1;
  }
  auto& l = **ledger;
  std::vector<std::pair<std::string, std::string>> before;
  for (const auto& t : l.projectionTables()) {
    auto d = l.tableDigest(t);
    before.emplace_back(t, d ? *d : d.error().message);
  }
  if (auto s = l.rebuildProjections(); !s) {
    std::cerr << "error: " << s.error().message << "\n";
    return 1;
  }
  bool same = true;
  for (const auto& [t, b] : before) {
    auto a = l.tableDigest(t);
    std::string after = a ? *a : a.error().message;
    out << t << ": before " << b << "\n" << t << ": after  " << after << "\n";
    if (after != b) {
      same = false;
      out << t << ": the rebuilt table differs from the one that was there\n";
    }
  }
  out << (same ? "projections rebuilt: identical\n" : "projections rebuilt: repaired\n");
  l.close();
  return 0;
}

Status issueClientCert(const DataDir& dir, ClientRole role, const std::string& name, int64_t days,
                       const std::filesystem::path& out_p12, const std::filesystem::path& cert_out,
                       const std::filesystem::path& key_out) {
  auto ca = FleetCa::load(dir.caCert(), dir.caKey());
  if (!ca) return ca.error();
  auto issued = (*ca)->issueClient(role, name, days * 24 * 3600);
  if (!issued) return issued.error();
  const auto& [cert, key_pem] = *issued;
  if (!out_p12.empty()) {
    auto p12 = pki::pkcs12(cert.pem, key_pem, (*ca)->certPem(),
                           "hwledger " + std::string(clientRoleName(role)) + " " + name);
    if (!p12) return p12.error();
    return files::writeFileAtomic(out_p12, *p12, 0600);
  }
  if (auto s = files::writeFileAtomic(cert_out, cert.pem, 0644); !s) return s;
  return files::writeFileAtomic(key_out, key_pem, 0600);
}

}  // namespace hwl::server
