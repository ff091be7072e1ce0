// Fleet helpers: enrolled agents on picked ports, the server's views polled with curl, and the
// recorded captures read with plain string handling (not the agent's parsers).
#include "fleet_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "hwl/job_user_bin.hpp"

namespace hwl::itest::fleet {

namespace bj = boost::json;
using namespace std::chrono_literals;

std::string agentBin() { return HWL_FLEET_AGENT_BIN; }
std::string testHttpServerBin() {
  return hwl::test_fixtures::jobUserCopy(HWL_FLEET_TEST_HTTP_SERVER);
}
fs::path repoRoot() { return HWL_FLEET_REPO_ROOT; }
fs::path buildDir() { return HWL_FLEET_BUILD_DIR; }
fs::path telemetryDir() { return HWL_FLEET_TELEMETRY_DIR; }

bool portAccepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

bool processAlive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

void killJobsLeftIn(const fs::path& state_dir) {
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(state_dir / "jobs", ec)) {
    boost::system::error_code jec;
    auto v = bj::parse(readFile(d.path() / "job.json"), jec);
    if (jec || !v.is_object()) continue;
    const auto* pid = v.as_object().if_contains("pid");
    if (pid != nullptr && pid->is_int64() && pid->as_int64() > 0 &&
        processAlive(static_cast<pid_t>(pid->as_int64())))
      ::kill(-static_cast<pid_t>(pid->as_int64()), SIGKILL);
  }
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(100ms);
  }
}

namespace {

void makeTraversable(const fs::path& p) {
  fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec);
}

}  // namespace

FleetDir::FleetDir() : dir_("hwl-fleet") { makeTraversable(dir_.path()); }

FleetServer::FleetServer(const fs::path& root, const std::string& name)
    : LedgerServer(root, name), config_(root / (name + ".config.json")) {}

void FleetServer::launch(const std::string& config) {
  if (!initialised_) {
    init();
    writeFile(config_, config);
    initialised_ = true;
  }
  start({"--config", config_.string(), "--telemetry-interval-ms", "500", "--outbox-interval-ms",
         "300"});
}

std::vector<std::string> FleetServer::agentCurlArgs() const {
  return {"--cacert", (dataDir() / "ca.crt").string(),
          "--cert",   (dataDir() / "server.crt").string(),
          "--key",    (dataDir() / "server.key").string()};
}

FleetAgent::FleetAgent(const fs::path& root, std::string name, std::string probe)
    : root_(root / name),
      name_(std::move(name)),
      probe_(std::move(probe)),
      state_(root_ / "state") {
  fs::create_directories(root_);
  makeTraversable(root_);
  port_ = freeLoopbackPort();
}

FleetAgent::~FleetAgent() {
  if (proc_) {
    proc_->signal(SIGCONT);
    proc_->kill();
  }
  killJobsLeftIn(state_);
}

void FleetAgent::enroll(const FleetServer& srv) {
  auto t = srv.post("/v1/enroll-tokens", bj::serialize(bj::object{{"host_hint", name_}}));
  if (t.status != 201)
    throw std::runtime_error("POST /v1/enroll-tokens: " + std::to_string(t.status) + " " + t.body +
                             t.err + " (server: " + srv.serverOut() + srv.serverErr() + ")");
  auto o = t.obj();
  auto r = run({agentBin(), "enroll", "--server", srv.url(), "--token", str(o.at("token")),
                "--ca-pin", str(o.at("ca_pin")), "--state-dir", state_.string(), "--name", name_,
                "--advertise", "127.0.0.1:" + std::to_string(port_)});
  if (!r.status.success())
    throw std::runtime_error("hwledger-agent enroll (" + r.status.describe() + "): " + r.err +
                             r.out);
  auto state = bj::parse(readFile(state_ / "enrollment.json")).as_object();
  host_id_ = str(state.at("host_id"));
}

void FleetAgent::start() {
  if (proc_ && proc_->running()) throw std::runtime_error("the agent is already running");
  ++starts_;
  SpawnOptions so;
  so.stdout_file = root_ / ("agent" + std::to_string(starts_) + ".out");
  so.stderr_file = root_ / ("agent" + std::to_string(starts_) + ".err");
  proc_ = std::make_unique<Process>(
      std::vector<std::string>{agentBin(), "run", "--state-dir", state_.string(), "--listen",
                               "127.0.0.1:" + std::to_string(port_), "--probe", probe_,
                               "--job-user", "nobody", "--sample-interval-ms", "200"},
      so);
  if (!proc_->waitForOutput("listening on https://", 20s)) {
    auto st = proc_->kill();
    throw std::runtime_error("hwledger-agent " + name_ + " did not start (" + st.describe() +
                             "): " + proc_->err() + proc_->out());
  }
}

void FleetAgent::crash() {
  if (!proc_) throw std::runtime_error("the agent was never started");
  auto st = proc_->kill();
  if (st.signal != SIGKILL)
    throw std::runtime_error("the agent had already ended: " + st.describe() + " " + proc_->err());
}

void FleetAgent::signal(int sig) {
  if (!proc_) throw std::runtime_error("the agent was never started");
  proc_->signal(sig);
}

bool FleetAgent::running() { return proc_ && proc_->running(); }

std::string FleetAgent::logs() const { return proc_ ? proc_->out() + proc_->err() : ""; }

Http FleetAgent::call(const FleetServer& srv, const std::string& method, const std::string& path,
                      const std::optional<std::string>& body) const {
  std::vector<std::string> argv{"curl", "-sS",  "--max-time", "30",
                                "-X",   method, "-w",         "\n%{http_code}"};
  auto creds = srv.agentCurlArgs();
  argv.insert(argv.end(), creds.begin(), creds.end());
  RunOptions ro;
  if (body) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    ro.input = *body;
  }
  argv.push_back("https://127.0.0.1:" + std::to_string(port_) + path);
  return httpFromCurl(run(argv, ro));
}

std::vector<bj::object> FleetAgent::outbox(const FleetServer& srv) const {
  auto h = call(srv, "GET", "/v1/outbox?after=0&limit=10000");
  if (h.status != 200)
    throw std::runtime_error("agent GET /v1/outbox: " + std::to_string(h.status) + " " + h.body +
                             h.err);
  std::vector<bj::object> out;
  const auto body = h.obj();
  for (const auto& e : body.at("entries").as_array()) out.push_back(e.as_object());
  return out;
}

bj::object getOk(const LedgerServer& srv, const std::string& path) {
  auto h = srv.get(path);
  if (h.status != 200)
    throw std::runtime_error("GET " + path + ": " + std::to_string(h.status) + " " + h.body +
                             h.err);
  return h.obj();
}

bj::object host(const LedgerServer& srv, const std::string& id) {
  return getOk(srv, "/v1/hosts/" + id);
}

bj::object job(const LedgerServer& srv, const std::string& id) {
  return getOk(srv, "/v1/jobs/" + id);
}

bj::object waitForJobState(const LedgerServer& srv, const std::string& id, const std::string& state,
                           std::chrono::milliseconds timeout) {
  bj::object last;
  eventually(
      [&] {
        last = job(srv, id);
        return str(last.at("state")) == state;
      },
      timeout);
  return last;
}

void waitForFleet(const LedgerServer& srv, const std::vector<const FleetAgent*>& agents,
                  std::chrono::milliseconds timeout) {
  std::string last;
  bool ok = eventually(
      [&] {
        for (const auto* a : agents) {
          auto h = srv.get("/v1/hosts/" + a->hostId());
          last = h.body;
          if (h.status != 200) return false;
          auto o = h.obj();
          if (str(o.at("state")) != "reachable") return false;
          const auto& gpus = o.at("gpus").as_array();
          if (gpus.empty()) return false;
          for (const auto& g : gpus)
            if (!g.as_object().contains("sample")) return false;
        }
        return true;
      },
      timeout);
  if (!ok) throw std::runtime_error("the fleet did not come up; last host seen: " + last);
}

std::vector<bj::object> streamEvents(const LedgerServer& srv, const std::string& stream) {
  return srv.allEvents("&stream=" + stream);
}

std::vector<bj::object> typedEvents(const LedgerServer& srv, const std::string& type) {
  return srv.allEvents("&type=" + type);
}

std::vector<std::string> typesOf(const std::vector<bj::object>& events) {
  std::vector<std::string> out;
  out.reserve(events.size());
  for (const auto& e : events) out.push_back(str(e.at("type")));
  return out;
}

std::string str(const bj::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return bj::serialize(v);
}

int64_t i64(const bj::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<int64_t>(v.as_uint64());
  if (v.is_double()) return static_cast<int64_t>(v.as_double());
  throw std::runtime_error("not a number: " + bj::serialize(v));
}

Http submitJob(const LedgerServer& srv, const bj::object& body) {
  return srv.post("/v1/jobs", bj::serialize(body));
}

std::string submitJobOk(const LedgerServer& srv, const bj::object& body) {
  auto h = submitJob(srv, body);
  if (h.status != 201)
    throw std::runtime_error("POST /v1/jobs: " + std::to_string(h.status) + " " + h.body + h.err);
  return str(h.obj().at("id"));
}

// ---- captures ----

namespace {

std::vector<std::string> splitCsv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  std::stringstream ss(line);
  while (std::getline(ss, cur, ',')) {
    auto b = cur.find_first_not_of(' ');
    auto e = cur.find_last_not_of(" \r");
    out.push_back(b == std::string::npos ? "" : cur.substr(b, e - b + 1));
  }
  return out;
}

int64_t mib(const std::string& v) {  // "81559 MiB"
  return std::stoll(v) * 1024 * 1024;
}

// Rows of a --query-gpu CSV as column name -> value.
std::vector<std::map<std::string, std::string>> csvRows(const fs::path& p) {
  auto all = lines(readFile(p));
  if (all.empty()) throw std::runtime_error("empty capture " + p.string());
  auto head = splitCsv(all[0]);
  std::vector<std::map<std::string, std::string>> rows;
  for (size_t i = 1; i < all.size(); ++i) {
    auto cells = splitCsv(all[i]);
    if (cells.size() != head.size())
      throw std::runtime_error(p.string() + ": row " + std::to_string(i) + " has " +
                               std::to_string(cells.size()) + " cells, the header " +
                               std::to_string(head.size()));
    std::map<std::string, std::string> row;
    for (size_t c = 0; c < head.size(); ++c) row[head[c]] = cells[c];
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string between(const std::string& text, const std::string& open, const std::string& close,
                    size_t from = 0) {
  auto a = text.find(open, from);
  if (a == std::string::npos) return "";
  a += open.size();
  auto b = text.find(close, a);
  return b == std::string::npos ? "" : text.substr(a, b - a);
}

}  // namespace

std::vector<CapturedGpu> readQueryGpuCsv(const fs::path& busy) {
  std::vector<CapturedGpu> out;
  for (const auto& row : csvRows(busy)) {
    CapturedGpu g;
    g.uuid = row.at("uuid");
    g.name = row.at("name");
    g.driver_version = row.at("driver_version");
    g.memory_total_bytes = mib(row.at("memory.total [MiB]"));
    g.memory_used_bytes.push_back(mib(row.at("memory.used [MiB]")));
    out.push_back(std::move(g));
  }
  std::string f = busy.filename().string();
  fs::path idle = busy.parent_path() / (f.substr(0, f.size() - 4) + "-idle.csv");
  if (fs::exists(idle)) {
    auto rows = csvRows(idle);
    for (size_t i = 0; i < rows.size() && i < out.size(); ++i)
      out[i].memory_used_bytes.push_back(mib(rows[i].at("memory.used [MiB]")));
  }
  return out;
}

std::vector<CapturedGpu> readSmiXml(const fs::path& xml) {
  std::string text = readFile(xml);
  std::string driver = between(text, "<driver_version>", "</driver_version>");
  std::vector<CapturedGpu> out;
  for (size_t at = text.find("<gpu id="); at != std::string::npos;
       at = text.find("<gpu id=", at + 1)) {
    std::string block = text.substr(at, text.find("</gpu>", at) - at);
    CapturedGpu g;
    g.uuid = between(block, "<uuid>", "</uuid>");
    g.name = between(block, "<product_name>", "</product_name>");
    g.driver_version = driver;
    std::string fb = between(block, "<fb_memory_usage>", "</fb_memory_usage>");
    g.memory_total_bytes = mib(between(fb, "<total>", "</total>"));
    g.memory_used_bytes.push_back(mib(between(fb, "<used>", "</used>")));
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<CapturedGpu> readRocmSmiJson(const fs::path& json) {
  auto doc = bj::parse(readFile(json)).as_object();
  std::string driver = str(doc.at("system").as_object().at("Driver version"));
  std::vector<std::pair<int, CapturedGpu>> cards;
  for (const auto& kv : doc) {
    std::string key(kv.key());
    if (key.rfind("card", 0) != 0) continue;
    const auto& c = kv.value().as_object();
    CapturedGpu g;
    g.uuid = str(c.at("Unique ID"));
    g.name = str(c.at("Card series"));
    g.driver_version = driver;
    g.memory_total_bytes = std::stoll(str(c.at("VRAM Total Memory (B)")));
    g.memory_used_bytes.push_back(std::stoll(str(c.at("VRAM Total Used Memory (B)"))));
    cards.emplace_back(std::stoi(key.substr(4)), std::move(g));
  }
  std::sort(cards.begin(), cards.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<CapturedGpu> out;
  out.reserve(cards.size());
  for (auto& [n, g] : cards) out.push_back(std::move(g));
  return out;
}

OneHostFleet::OneHostFleet() {
  srv.launch();
  agent.enroll(srv);
  agent.start();
  waitForFleet(srv, {&agent});
}

}  // namespace hwl::itest::fleet
