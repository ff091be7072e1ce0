// The agent fixture: run/kill/restart hwledger-agent --dev, and curl as its client.
#include "agent_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "hwl/job_user_bin.hpp"
#include "hwl/jobs/containment.hpp"

namespace hwl::itest::agent {

namespace fs = std::filesystem;
namespace bj = boost::json;
using namespace std::chrono_literals;

std::string agentBin() { return HWL_AGENT_BIN; }
std::string testHttpServerBin() { return hwl::test_fixtures::jobUserCopy(HWL_TEST_HTTP_SERVER); }
std::string ignoreTermBin() { return hwl::test_fixtures::jobUserCopy(HWL_TEST_IGNORE_TERM); }
fs::path telemetryDir() { return HWL_TELEMETRY_DIR; }
std::string promtoolBin() { return HWL_PROMTOOL; }

bool processAlive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  // Field 3 follows the parenthesised command name, which may itself hold spaces.
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

uint64_t procStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  // Field 3 (state) is the first after the name; field 22 (starttime) is the 20th.
  for (int i = 3; i <= 22 && fields >> f; ++i)
    if (i == 22) return std::stoull(f);
  return 0;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(50ms);
  }
}

Agent::Agent(const fs::path& root, Options opts)
    : root_(root), state_(root / "state"), jobs_root_(root / "jobs"), opts_(std::move(opts)) {
  // The job user must reach its working directory: the temp root is made traversable and the
  // jobs root writable by anyone, as an operator would chown it to the job user.
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
  fs::create_directories(jobs_root_);
  fs::permissions(jobs_root_, fs::perms::all);
}

Agent::~Agent() {
  if (proc_) proc_->kill();
  // Jobs outlive the agent by design; a test must not leave them behind.
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(state_ / "jobs", ec)) {
    boost::system::error_code jec;
    auto v = bj::parse(readFile(d.path() / "job.json"), jec);
    if (jec || !v.is_object()) continue;
    // Only a live job whose pid still names the process it started (same /proc start time):
    // a pid reused by an unrelated process must never be signalled.
    const auto& o = v.as_object();
    const auto* pid = o.if_contains("pid");
    const auto* start = o.if_contains("proc_start_time");
    const auto* st = o.if_contains("state");
    if (pid == nullptr || !pid->is_int64() || pid->as_int64() <= 0 || start == nullptr ||
        !start->is_number() || st == nullptr || !st->is_string())
      continue;
    if (st->as_string() != "running" && st->as_string() != "ready") continue;
    const auto p = static_cast<pid_t>(pid->as_int64());
    if (processAlive(p) && procStartTime(p) == start->to_number<uint64_t>()) ::kill(-p, SIGKILL);
    // And whatever else is in the job's cgroups (processes that left its group).
    if (const auto* cg = o.if_contains("cgroups"); cg && cg->is_array()) {
      for (const auto& c : cg->as_array()) {
        if (!c.is_string()) continue;
        const fs::path dir(std::string(c.as_string()));
        std::istringstream procs(readFileOrEmpty(dir / "cgroup.procs"));
        for (pid_t q = 0; procs >> q;) ::kill(q, SIGKILL);
      }
    }
  }
  removeCgroups(state_);
}

std::string readFileOrEmpty(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string cgroupGroupOf(const fs::path& state_dir) { return jobs::cgroupGroupFor(state_dir); }

std::vector<fs::path> cgroupDirsNamed(const std::string& name) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const char* h : {"pids", "freezer", "memory", "unified"}) {
    fs::recursive_directory_iterator it(fs::path("/sys/fs/cgroup") / h, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      if (it.depth() >= 3) it.disable_recursion_pending();
      if (it->is_directory(ec) && it->path().filename() == name) out.push_back(it->path());
    }
  }
  return out;
}

void removeCgroups(const fs::path& state_dir) {
  for (const auto& group : cgroupDirsNamed(cgroupGroupOf(state_dir))) {
    std::error_code ec;
    for (const auto& job : fs::directory_iterator(group, ec)) {
      if (!job.is_directory(ec)) continue;
      for (int i = 0; i < 100 && ::rmdir(job.path().c_str()) != 0 && errno == EBUSY; ++i)
        std::this_thread::sleep_for(10ms);
    }
    ::rmdir(group.c_str());
  }
}

void Agent::start() {
  if (proc_ && proc_->running()) throw std::runtime_error("the agent is already running");
  std::vector<std::string> argv{agentBin(),
                                "run",
                                "--dev",
                                "--state-dir",
                                state_.string(),
                                "--jobs-root",
                                jobs_root_.string(),
                                "--listen",
                                "127.0.0.1:0",
                                "--probe",
                                opts_.probe,
                                "--sample-interval-ms",
                                std::to_string(opts_.sample_interval_ms)};
  if (!opts_.job_user.empty()) argv.insert(argv.end(), {"--job-user", opts_.job_user});
  argv.insert(argv.end(), opts_.extra.begin(), opts_.extra.end());
  ++starts_;
  SpawnOptions so;
  so.stdout_file = root_ / ("agent" + std::to_string(starts_) + ".out");
  so.stderr_file = root_ / ("agent" + std::to_string(starts_) + ".err");
  proc_ = std::make_unique<Process>(argv, so);
  const std::string marker = "listening on http://";
  if (!proc_->waitForOutput(marker, 20s)) {
    auto st = proc_->kill();
    throw std::runtime_error("hwledger-agent did not start (" + st.describe() +
                             "): " + proc_->err() + proc_->out());
  }
  for (int i = 0; i < 200; ++i) {
    std::string o = proc_->out();
    auto at = o.find(marker) + marker.size();
    auto end = o.find_first_of(" \n", at);
    if (end != std::string::npos) {
      addr_ = o.substr(at, end - at);
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("no complete address in: " + proc_->out());
}

void Agent::crash() {
  if (!proc_) throw std::runtime_error("the agent was never started");
  auto st = proc_->kill();
  if (st.signal != SIGKILL)
    throw std::runtime_error("the agent had already ended before SIGKILL: " + st.describe() + " " +
                             proc_->err());
}

ExitStatus Agent::stop() {
  if (!proc_) throw std::runtime_error("the agent was never started");
  proc_->signal(SIGTERM);
  auto st = proc_->wait(30s);
  if (!st) {
    auto killed = proc_->kill();
    throw std::runtime_error("hwledger-agent did not exit within 30 s of SIGTERM (" +
                             killed.describe() + ")");
  }
  return *st;
}

bool Agent::running() { return proc_ && proc_->running(); }
std::string Agent::out() const { return proc_ ? proc_->out() : ""; }
std::string Agent::err() const { return proc_ ? proc_->err() : ""; }
pid_t Agent::pid() const { return proc_ ? proc_->pid() : -1; }

Http Agent::request(const std::string& method, const std::string& path,
                    const std::optional<std::string>& body) const {
  std::vector<std::string> argv{"curl", "-sS",  "--max-time", "30",
                                "-X",   method, "-w",         "\n%{http_code}"};
  RunOptions ro;
  if (body) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    ro.input = *body;
  }
  argv.push_back(url() + path);
  return httpFromCurl(run(argv, ro));
}

bj::object Agent::telemetry() const {
  Http last;
  for (int i = 0; i < 200; ++i) {
    last = get("/v1/telemetry");
    if (last.status == 200) return last.obj();
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("GET /v1/telemetry never answered 200: " + std::to_string(last.status) +
                           " " + last.body + last.err);
}

Http Agent::submit(const bj::object& spec) const {
  return request("POST", "/v1/jobs", bj::serialize(spec));
}

bj::object Agent::job(const std::string& id) const {
  auto h = get("/v1/jobs/" + id);
  if (h.status != 200)
    throw std::runtime_error("GET /v1/jobs/" + id + ": " + std::to_string(h.status) + " " + h.body +
                             h.err);
  return h.obj();
}

bj::object Agent::waitForState(const std::string& id, const std::string& state,
                               std::chrono::milliseconds timeout) const {
  static const std::vector<std::string> kTerminal{"exited", "failed", "cancelled", "lost"};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bj::object j;
  for (;;) {
    j = job(id);
    const std::string now(j.at("state").as_string());
    if (now == state) return j;
    if (std::find(kTerminal.begin(), kTerminal.end(), now) != kTerminal.end())
      throw std::runtime_error("job " + id + " ended " + now + " while waiting for " + state +
                               ": " + bj::serialize(j));
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("job " + id + " still " + now + " after waiting for " + state +
                               ": " + bj::serialize(j));
    std::this_thread::sleep_for(50ms);
  }
}

std::vector<bj::object> Agent::outbox(uint64_t after) const {
  // One page of up to 10000 (the API's limit) is more than any test here writes; paging on
  // would acknowledge what was read, so a full page is treated as an error.
  auto h = get("/v1/outbox?after=" + std::to_string(after) + "&limit=10000");
  if (h.status != 200)
    throw std::runtime_error("GET /v1/outbox: " + std::to_string(h.status) + " " + h.body + h.err);
  std::vector<bj::object> all;
  const auto page = h.obj();
  for (const auto& e : page.at("entries").as_array()) all.push_back(e.as_object());
  if (all.size() >= 10000) throw std::runtime_error("outbox larger than one page");
  return all;
}

std::vector<bj::object> Agent::jobEvents(const std::string& id) const {
  std::vector<bj::object> out;
  for (auto& e : outbox()) {
    const auto* d = e.if_contains("data");
    if (d == nullptr || !d->is_object()) continue;
    const auto* jid = d->as_object().if_contains("job_id");
    if (jid != nullptr && jid->is_string() && jid->as_string() == id) out.push_back(e);
  }
  return out;
}

std::vector<std::string> types(const std::vector<bj::object>& entries) {
  std::vector<std::string> out;
  out.reserve(entries.size());
  for (const auto& e : entries) out.emplace_back(e.at("type").as_string());
  return out;
}

bj::object serverJob(const std::string& id, uint16_t port) {
  const std::string p = std::to_string(port);
  return bj::object{{"id", id},
                    {"command", bj::array{testHttpServerBin(), p}},
                    {"ready_url", "http://127.0.0.1:" + p + "/health"},
                    {"ready_timeout_s", 30},
                    {"grace_s", 5}};
}

}  // namespace hwl::itest::agent
