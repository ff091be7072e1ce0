// Namespaces, veth, nftables and the two programs inside them; see netns_support.hpp.
#include "netns_support.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <stdexcept>
#include <thread>

#include "fleet_support.hpp"

namespace hwl::itest::netns {

namespace bj = boost::json;
using namespace std::chrono_literals;
using fleet::eventually;
using fleet::i64;
using fleet::str;

namespace {

constexpr const char* kPrefix = "hwlp-";  // hwlp-<pid>-<n>-{s,a}
constexpr const char* kVeth = "v0";       // the veth end's name inside each namespace

std::atomic<int> g_counter{0};

std::string describe(const RunResult& r) {
  return r.status.describe() + (r.timed_out ? " (timed out)" : "") + ": " + r.err + r.out;
}

RunResult runQuiet(const std::vector<std::string>& argv, const std::string& input = "") {
  RunOptions ro;
  ro.input = input;
  ro.timeout = 30s;
  try {
    return run(argv, ro);
  } catch (const std::exception& e) {
    RunResult r;
    r.err = e.what();
    return r;
  }
}

// Namespaces whose creating process is gone (a test killed by a timeout cannot clean up).
void removeOrphans() {
  auto r = runQuiet({"ip", "netns", "list"});
  if (!r.status.success()) return;
  for (const auto& line : lines(r.out)) {
    std::string name = line.substr(0, line.find(' '));
    if (name.rfind(kPrefix, 0) != 0) continue;
    const auto rest = name.substr(std::char_traits<char>::length(kPrefix));
    const auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0) continue;
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(rest.substr(0, dash)));
    } catch (const std::exception&) {
      continue;
    }
    if (pid <= 0 || (::kill(pid, 0) == 0 || errno == EPERM)) continue;
    (void)runQuiet({"ip", "netns", "delete", name});
  }
}

}  // namespace

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* cutName(Cut c) { return c == Cut::kLinkDown ? "link-down" : "nft-drop"; }

std::string unavailableReason(bool need_nft) {
  const std::string probe =
      std::string(kPrefix) + std::to_string(::getpid()) + "-probe" + std::to_string(g_counter++);
  auto add = runQuiet({"ip", "netns", "add", probe});
  if (!add.status.success())
    return "cannot create a network namespace (needs root or CAP_SYS_ADMIN and CAP_NET_ADMIN): "
           "ip netns add " +
           describe(add);
  std::string why;
  auto veth =
      runQuiet({"ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"});
  if (!veth.status.success()) why = "cannot create a veth pair: " + describe(veth);
  if (why.empty() && need_nft) {
    auto t = runQuiet(NetnsPair::in(probe, {"nft", "-f", "-"}), "table inet hwlp_probe {}\n");
    if (!t.status.success()) why = "nftables cannot be used in a network namespace: " + describe(t);
  }
  (void)runQuiet({"ip", "netns", "delete", probe});
  return why;
}

// ---- NetnsPair ----

std::vector<std::string> NetnsPair::in(const std::string& ns,
                                       const std::vector<std::string>& argv) {
  std::vector<std::string> out{"ip", "netns", "exec", ns};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void NetnsPair::ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runQuiet(argv);
  if (!r.status.success()) {
    std::string line;
    for (const auto& a : argv) line += a + " ";
    throw std::runtime_error(line + "failed: " + describe(r));
  }
}

void NetnsPair::nft(const std::string& script) const {
  auto r = runQuiet(in(agent_ns_, {"nft", "-f", "-"}), script);
  if (!r.status.success())
    throw std::runtime_error("nft -f - in " + agent_ns_ + " failed: " + describe(r) + "\n" +
                             script);
}

NetnsPair::NetnsPair() {
  removeOrphans();
  const std::string base =
      std::string(kPrefix) + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
  server_ns_ = base + "-s";
  agent_ns_ = base + "-a";
  nft_table_ = "hwlp_" + std::to_string(::getpid()) + "_" + std::to_string(g_counter++);
  try {
    for (const auto& ns : {server_ns_, agent_ns_}) {
      ip({"netns", "add", ns});
      created_.push_back(ns);
      ip({"-n", ns, "link", "set", "lo", "up"});
    }
    // Both ends are created inside their namespaces: nothing appears in the test's namespace.
    ip({"link", "add", kVeth, "netns", server_ns_, "type", "veth", "peer", "name", kVeth, "netns",
        agent_ns_});
    ip({"-n", server_ns_, "addr", "add", std::string(kServerIp) + "/30", "dev", kVeth});
    ip({"-n", agent_ns_, "addr", "add", std::string(kAgentIp) + "/30", "dev", kVeth});
    ip({"-n", server_ns_, "link", "set", kVeth, "up"});
    ip({"-n", agent_ns_, "link", "set", kVeth, "up"});
  } catch (...) {
    for (const auto& ns : created_) (void)runQuiet({"ip", "netns", "delete", ns});
    throw;
  }
}

NetnsPair::~NetnsPair() {
  if (cut_ == Cut::kNftDrop)
    (void)runQuiet(in(agent_ns_, {"nft", "delete", "table", "inet", nft_table_}));
  // Deleting a namespace removes its veth end (and so the pair) and any table left in it.
  for (const auto& ns : created_) (void)runQuiet({"ip", "netns", "delete", ns});
}

void NetnsPair::cut(Cut how) {
  if (cut_) throw std::runtime_error("the link is already cut");
  if (how == Cut::kLinkDown) {
    ip({"-n", agent_ns_, "link", "set", kVeth, "down"});
  } else {
    // Every packet through the agent's veth end dropped, both ways, without an answer: TCP
    // connections stay open on both sides and simply stop hearing from each other.
    const std::string dev = std::string("\"") + kVeth + "\"";
    nft("table inet " + nft_table_ +
        " {\n"
        "  chain input { type filter hook input priority -300; policy accept; iifname " +
        dev +
        " drop; }\n"
        "  chain output { type filter hook output priority -300; policy accept; oifname " +
        dev +
        " drop; }\n"
        "}\n");
  }
  cut_ = how;
}

void NetnsPair::heal() {
  if (!cut_) return;
  if (*cut_ == Cut::kLinkDown)
    ip({"-n", agent_ns_, "link", "set", kVeth, "up"});
  else
    nft("delete table inet " + nft_table_ + "\n");
  cut_.reset();
}

// ---- NsServer ----

NsServer::NsServer(const NetnsPair& net, const fs::path& root)
    : net_(net), root_(root), dir_(root / "server"), config_(root / "server.config.json") {}

NsServer::~NsServer() {
  if (proc_) proc_->kill();
}

void NsServer::launch() {
  const fs::path token_file = root_ / "admin-token";
  auto r = run({serverBin(), "init", "--data-dir", dir_.string(), "--admin-token-file",
                token_file.string()});
  if (!r.status.success()) throw std::runtime_error("hwledger-server init failed: " + describe(r));
  admin_token_ = readFile(token_file);
  while (!admin_token_.empty() && (admin_token_.back() == '\n' || admin_token_.back() == '\r'))
    admin_token_.pop_back();
  writeFile(config_, "{\"scrape_timeout_ms\":" + std::to_string(kScrapeTimeoutMs) + "}");
  ++starts_;
  SpawnOptions so;
  so.stdout_file = root_ / ("server" + std::to_string(starts_) + ".out");
  so.stderr_file = root_ / ("server" + std::to_string(starts_) + ".err");
  proc_ = std::make_unique<Process>(
      NetnsPair::in(net_.serverNs(), {serverBin(), "run", "--data-dir", dir_.string(), "--listen",
                                      std::string(kServerIp) + ":0", "--log-level", "info",
                                      "--config", config_.string(), "--telemetry-interval-ms",
                                      std::to_string(kTelemetryIntervalMs), "--outbox-interval-ms",
                                      std::to_string(kOutboxIntervalMs)}),
      so);
  const std::string marker = "listening on https://";
  if (!proc_->waitForOutput(marker, 20s)) {
    auto st = proc_->kill();
    throw std::runtime_error("hwledger-server did not start (" + st.describe() + "): " + logs());
  }
  for (int i = 0; i < 100; ++i) {
    const std::string out = proc_->out();
    const auto at = out.find(marker) + marker.size();
    const auto nl = out.find('\n', at);
    if (nl != std::string::npos) {
      addr_ = out.substr(at, nl - at);
      if (addr_.rfind(std::string(kServerIp) + ":", 0) != 0)
        throw std::runtime_error("the server listens on " + addr_ + ", not on " + kServerIp);
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("no complete address line in: " + proc_->out());
}

std::string NsServer::logs() const { return proc_ ? proc_->out() + proc_->err() : ""; }

bool NsServer::running() { return proc_ && proc_->running(); }

Http NsServer::request(const std::string& method, const std::string& path,
                       const std::optional<std::string>& body,
                       const std::vector<std::string>& extra) const {
  std::vector<std::string> argv{"curl",       "-sS",
                                "--noproxy",  "*",
                                "--cacert",   (dir_ / "ca.crt").string(),
                                "--max-time", "30",
                                "-X",         method,
                                "-w",         "\n%{http_code}",
                                "-H",         "Authorization: Bearer " + admin_token_};
  RunOptions ro;
  if (body) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    ro.input = *body;
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  // The server's certificate names localhost (and 127.0.0.1), not the veth address: verify it
  // under that name while connecting to the veth address.
  const std::string port = addr_.substr(addr_.rfind(':') + 1);
  argv.insert(argv.end(), {"--resolve", "localhost:" + port + ":" + kServerIp});
  argv.push_back("https://localhost:" + port + path);
  return httpFromCurl(run(NetnsPair::in(net_.serverNs(), argv), ro));
}

bj::object NsServer::getOk(const std::string& path) const {
  auto h = request("GET", path);
  if (h.status != 200)
    throw std::runtime_error("GET " + path + ": " + std::to_string(h.status) + " " + h.body +
                             h.err);
  return h.obj();
}

bj::object NsServer::postCreated(const std::string& path, const bj::object& body) const {
  auto h = request("POST", path, bj::serialize(body));
  if (h.status != 201)
    throw std::runtime_error("POST " + path + ": " + std::to_string(h.status) + " " + h.body +
                             h.err);
  return h.obj();
}

std::vector<bj::object> NsServer::allEvents(const std::string& query) const {
  std::vector<bj::object> out;
  int64_t after = 0;
  for (;;) {
    auto o = getOk("/v1/events?limit=1000&after=" + std::to_string(after) + query);
    const auto& evs = o.at("events").as_array();
    for (const auto& e : evs) out.push_back(e.as_object());
    if (evs.empty()) return out;
    after = i64(o.at("next_after"));
  }
}

std::vector<std::string> NsServer::agentCurlArgs() const {
  return {"--cacert", (dir_ / "ca.crt").string(),    "--cert", (dir_ / "server.crt").string(),
          "--key",    (dir_ / "server.key").string()};
}

// ---- NsAgent ----

NsAgent::NsAgent(const NetnsPair& net, const fs::path& root)
    : net_(net), root_(root / "agent"), state_(root_ / "state") {
  fs::create_directories(root_);
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
}

NsAgent::~NsAgent() {
  if (proc_) {
    proc_->signal(SIGCONT);
    proc_->kill();
  }
  fleet::killJobsLeftIn(state_);  // jobs outlive the agent by design
}

void NsAgent::enroll(const NsServer& srv) {
  auto t = srv.postCreated("/v1/enroll-tokens", bj::object{{"host_hint", "h100"}});
  const std::string advertise = std::string(kAgentIp) + ":" + std::to_string(kAgentPort);
  auto r = run(NetnsPair::in(net_.agentNs(),
                             {fleet::agentBin(), "enroll", "--server", srv.url(), "--token",
                              str(t.at("token")), "--ca-pin", str(t.at("ca_pin")), "--state-dir",
                              state_.string(), "--name", "h100", "--advertise", advertise}));
  if (!r.status.success()) throw std::runtime_error("hwledger-agent enroll: " + describe(r));
  auto state = bj::parse(readFile(state_ / "enrollment.json")).as_object();
  host_id_ = str(state.at("host_id"));
}

void NsAgent::start() {
  if (proc_ && proc_->running()) throw std::runtime_error("the agent is already running");
  ++starts_;
  SpawnOptions so;
  so.stdout_file = root_ / ("agent" + std::to_string(starts_) + ".out");
  so.stderr_file = root_ / ("agent" + std::to_string(starts_) + ".err");
  const std::string capture = (fleet::telemetryDir() / "nvidia-h100-query-gpu.csv").string();
  proc_ = std::make_unique<Process>(
      NetnsPair::in(net_.agentNs(),
                    {fleet::agentBin(), "run", "--state-dir", state_.string(), "--listen",
                     std::string(kAgentIp) + ":" + std::to_string(kAgentPort), "--probe",
                     "replay:" + capture, "--job-user", "nobody", "--sample-interval-ms", "200"}),
      so);
  if (!proc_->waitForOutput("listening on https://", 20s)) {
    auto st = proc_->kill();
    throw std::runtime_error("hwledger-agent did not start (" + st.describe() + "): " + logs());
  }
}

std::string NsAgent::logs() const { return proc_ ? proc_->out() + proc_->err() : ""; }

bool NsAgent::running() { return proc_ && proc_->running(); }

Http NsAgent::call(const NsServer& srv, const std::string& method, const std::string& path,
                   const std::optional<std::string>& body) const {
  std::vector<std::string> argv{"curl", "-sS", "--noproxy", "*",  "--max-time",
                                "30",   "-X",  method,      "-w", "\n%{http_code}"};
  auto creds = srv.agentCurlArgs();
  argv.insert(argv.end(), creds.begin(), creds.end());
  RunOptions ro;
  if (body) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    ro.input = *body;
  }
  argv.push_back("https://" + std::string(kAgentIp) + ":" + std::to_string(kAgentPort) + path);
  return httpFromCurl(run(NetnsPair::in(net_.serverNs(), argv), ro));
}

std::vector<bj::object> NsAgent::outbox(const NsServer& srv) const {
  auto h = call(srv, "GET", "/v1/outbox?after=0&limit=10000");
  if (h.status != 200)
    throw std::runtime_error("agent GET /v1/outbox: " + std::to_string(h.status) + " " + h.body +
                             h.err);
  std::vector<bj::object> out;
  const auto body = h.obj();
  for (const auto& e : body.at("entries").as_array()) out.push_back(e.as_object());
  return out;
}

std::optional<bj::object> NsAgent::jobOnDisk(const std::string& job_id) const {
  boost::system::error_code ec;
  auto v = bj::parse(readFile(state_ / "jobs" / job_id / "job.json"), ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

// ---- views ----

bj::object hostView(const NsServer& srv, const std::string& id) {
  return srv.getOk("/v1/hosts/" + id);
}

bj::object jobView(const NsServer& srv, const std::string& id) {
  return srv.getOk("/v1/jobs/" + id);
}

bj::object waitForJobState(const NsServer& srv, const std::string& id, const std::string& state,
                           std::chrono::milliseconds timeout) {
  bj::object last;
  eventually(
      [&] {
        last = jobView(srv, id);
        return str(last.at("state")) == state;
      },
      timeout);
  return last;
}

bool waitForHostState(const NsServer& srv, const std::string& id, const std::string& state,
                      std::chrono::milliseconds timeout) {
  return eventually([&] { return str(hostView(srv, id).at("state")) == state; }, timeout);
}

void waitForFleet(const NsServer& srv, const NsAgent& agent, std::chrono::milliseconds timeout) {
  std::string last;
  const bool ok = eventually(
      [&] {
        auto h = srv.request("GET", "/v1/hosts/" + agent.hostId());
        last = h.body + h.err;
        if (h.status != 200) return false;
        auto o = h.obj();
        if (str(o.at("state")) != "reachable") return false;
        const auto& gpus = o.at("gpus").as_array();
        if (gpus.empty()) return false;
        for (const auto& g : gpus)
          if (!g.as_object().contains("sample")) return false;
        return true;
      },
      timeout);
  if (!ok)
    throw std::runtime_error("the agent's host did not come up; last seen: " + last +
                             "\nserver: " + srv.logs() + "\nagent: " + agent.logs());
}

std::string submitJob(const NsServer& srv, const bj::object& body) {
  return str(srv.postCreated("/v1/jobs", body).at("id"));
}

// ---- audit ----

LedgerAudit audit(const NsServer& srv, const NsAgent& agent,
                  const std::vector<std::string>& job_ids) {
  LedgerAudit a;
  const auto outbox = agent.outbox(srv);
  std::map<std::string, std::string> want;                  // entry id -> type
  std::map<std::string, std::vector<std::string>> per_job;  // job id -> entry ids, seq order
  std::vector<std::pair<int64_t, const bj::object*>> by_seq;
  for (const auto& e : outbox) by_seq.emplace_back(i64(e.at("seq")), &e);
  std::sort(by_seq.begin(), by_seq.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  for (const auto& [seq, e] : by_seq) {
    want[str(e->at("id"))] = str(e->at("type"));
    const auto* data = e->if_contains("data");
    if (data != nullptr && data->is_object())
      if (const auto* j = data->as_object().if_contains("job_id"); j != nullptr && j->is_string())
        per_job[std::string(j->as_string())].push_back(str(e->at("id")));
  }
  a.outbox_entries = want.size();

  const std::string prefix = agent.hostId() + ":";
  std::map<std::string, int> seen;
  for (const auto& e : srv.allEvents()) {
    const std::string id = str(e.at("id"));
    if (id.rfind(prefix, 0) != 0) continue;
    if (++seen[id] == 2) {
      ++a.duplicates;
      a.problems.push_back("duplicate event id " + id);
    }
    auto it = want.find(id);
    if (it == want.end()) {
      ++a.unexpected;
      a.problems.push_back("ledger event " + id + " (" + str(e.at("type")) + ") not in the outbox");
    } else if (it->second != str(e.at("type"))) {
      ++a.wrong_type;
      a.problems.push_back(id + ": ledger " + str(e.at("type")) + ", outbox " + it->second);
    }
  }
  for (const auto& [id, type] : want) {
    if (seen.count(id) != 0)
      ++a.seen;
    else
      a.problems.push_back("lost: outbox entry " + id + " (" + type + ") is not in the ledger");
  }

  for (const auto& job : job_ids) {
    ++a.jobs;
    std::vector<std::string> expect_types{"job.submitted", "job.placed"};
    std::vector<std::string> expect_ids;
    for (const auto& id : per_job[job]) {
      expect_types.push_back(want[id]);
      expect_ids.push_back(id);
    }
    std::vector<std::string> got_types, got_ids;
    for (const auto& e : srv.allEvents("&stream=job/" + job)) {
      got_types.push_back(str(e.at("type")));
      const std::string id = str(e.at("id"));
      if (id.rfind(prefix, 0) == 0) got_ids.push_back(id);
    }
    if (got_types != expect_types || got_ids != expect_ids) {
      ++a.jobs_out_of_order;
      std::string g, w;
      for (const auto& t : got_types) g += t + " ";
      for (const auto& t : expect_types) w += t + " ";
      a.problems.push_back("job/" + job + ": ledger [ " + g + "], expected [ " + w + "]");
    }
    auto on_agent = agent.call(srv, "GET", "/v1/jobs/" + job);
    const std::string server_state = str(jobView(srv, job).at("state"));
    const std::string agent_state = on_agent.status == 200
                                        ? str(on_agent.obj().at("state"))
                                        : "HTTP " + std::to_string(on_agent.status);
    if (server_state != agent_state) {
      ++a.jobs_state_mismatch;
      a.problems.push_back("job " + job + ": server " + server_state + ", agent " + agent_state);
    }
  }
  return a;
}

}  // namespace hwl::itest::netns
