// The server fixture: init/run/stop/kill of hwledger-server, and curl as its client.
#include "server_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace hwl::itest {

namespace fs = std::filesystem;
namespace bj = boost::json;
using namespace std::chrono_literals;

std::string serverBin() { return HWL_SERVER_BIN; }
std::string cliBin() { return HWL_CLI_BIN; }

bj::value Http::json() const {
  boost::system::error_code ec;
  bj::value v = bj::parse(body, ec);
  if (ec)
    throw std::runtime_error("HTTP " + std::to_string(status) + " body is not JSON (" +
                             ec.message() + "): " + body.substr(0, 500) + " " + err);
  return v;
}

bj::object Http::obj() const {
  auto v = json();
  if (!v.is_object()) throw std::runtime_error("body is not a JSON object: " + body);
  return v.get_object();
}

std::string Http::errorMessage() const {
  boost::system::error_code ec;
  bj::value v = bj::parse(body, ec);
  if (ec || !v.is_object()) return "";
  const auto* e = v.get_object().if_contains("error");
  if (e == nullptr || !e->is_object()) return "";
  const auto* m = e->get_object().if_contains("message");
  return m != nullptr && m->is_string() ? std::string(m->get_string()) : "";
}

LedgerServer::LedgerServer(const fs::path& root, const std::string& name)
    : root_(root), dir_(root / name), name_(name) {}

LedgerServer::~LedgerServer() {
  if (proc_) proc_->kill();
}

void LedgerServer::init() {
  fs::path token_file = root_ / (name_ + ".admin-token");
  auto r = run({serverBin(), "init", "--data-dir", dir_.string(), "--admin-token-file",
                token_file.string()});
  if (!r.status.success())
    throw std::runtime_error("hwledger-server init failed (" + r.status.describe() + "): " + r.err);
  admin_token_ = readFile(token_file);
  while (!admin_token_.empty() && (admin_token_.back() == '\n' || admin_token_.back() == '\r'))
    admin_token_.pop_back();
  if (admin_token_.rfind("tok_", 0) != 0)
    throw std::runtime_error("unexpected admin token file content: " + admin_token_);
}

void LedgerServer::start(const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--data-dir",  dir_.string(), "--listen",
                                "127.0.0.1:0", "--log-level", "warn"};
  args.insert(args.end(), extra.begin(), extra.end());
  startRaw(args);
}

void LedgerServer::startRaw(const std::vector<std::string>& args) {
  if (proc_ && proc_->running()) throw std::runtime_error("the server is already running");
  std::vector<std::string> argv{serverBin(), "run"};
  argv.insert(argv.end(), args.begin(), args.end());
  ++starts_;
  SpawnOptions so;
  so.stdout_file = root_ / (name_ + ".server" + std::to_string(starts_) + ".out");
  so.stderr_file = root_ / (name_ + ".server" + std::to_string(starts_) + ".err");
  proc_ = std::make_unique<Process>(argv, so);
  const std::string marker = "listening on https://";
  if (!proc_->waitForOutput(marker, 20s)) {
    auto st = proc_->kill();
    throw std::runtime_error("hwledger-server did not start (" + st.describe() +
                             "): " + proc_->err() + proc_->out());
  }
  // The whole line is written at once (std::endl), but wait for the newline to be safe.
  for (int i = 0; i < 100; ++i) {
    std::string out = proc_->out();
    auto at = out.find(marker) + marker.size();
    auto nl = out.find('\n', at);
    if (nl != std::string::npos) {
      addr_ = out.substr(at, nl - at);
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("no complete address line in: " + proc_->out());
}

ExitStatus LedgerServer::stop() {
  if (!proc_) throw std::runtime_error("the server was never started");
  proc_->signal(SIGTERM);
  auto st = proc_->wait(30s);
  if (!st) {
    auto killed = proc_->kill();
    throw std::runtime_error("hwledger-server did not exit within 30 s of SIGTERM (" +
                             killed.describe() + ")");
  }
  return *st;
}

void LedgerServer::crash() {
  if (!proc_) throw std::runtime_error("the server was never started");
  auto st = proc_->kill();
  if (st.signal != SIGKILL)
    throw std::runtime_error("the server had already ended before SIGKILL: " + st.describe());
}

bool LedgerServer::running() { return proc_ && proc_->running(); }

std::string LedgerServer::port() const { return addr_.substr(addr_.rfind(':') + 1); }
std::string LedgerServer::serverOut() const { return proc_ ? proc_->out() : ""; }
std::string LedgerServer::serverErr() const { return proc_ ? proc_->err() : ""; }

Http LedgerServer::request(const std::string& method, const std::string& path,
                           const std::string& token, const std::optional<std::string>& body,
                           const std::vector<std::string>& extra_args) const {
  std::vector<std::string> argv{"curl", "-sS",  "--cacert", caCert().string(), "--max-time", "30",
                                "-X",   method, "-w",       "\n%{http_code}"};
  if (!token.empty()) argv.insert(argv.end(), {"-H", "Authorization: Bearer " + token});
  RunOptions ro;
  if (body) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    ro.input = *body;
    if (ro.input.empty()) argv.back() = "";
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.push_back(url() + path);
  return httpFromCurl(run(argv, ro));
}

Http httpFromCurl(const RunResult& r) {
  Http h;
  h.curl_exit = r.code();
  h.err = r.err;
  auto nl = r.out.rfind('\n');
  if (nl == std::string::npos) {
    h.body = r.out;
  } else {
    h.body = r.out.substr(0, nl);
    h.status = std::atoi(r.out.c_str() + nl + 1);
  }
  return h;
}

uint16_t freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind 127.0.0.1:0 failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int64_t LedgerServer::eventCount() const {
  auto h = request("GET", "/v1/health", "");
  if (h.status != 200)
    throw std::runtime_error("GET /v1/health: " + std::to_string(h.status) + " " + h.err);
  return h.obj().at("events").as_int64();
}

CreatedToken LedgerServer::createToken(const std::string& role, std::optional<int64_t> ttl_s,
                                       const std::string& note) const {
  bj::object body{{"role", role}};
  if (ttl_s) body["ttl_s"] = *ttl_s;
  if (!note.empty()) body["note"] = note;
  auto h = post("/v1/tokens", bj::serialize(body));
  if (h.status != 201)
    throw std::runtime_error("POST /v1/tokens: " + std::to_string(h.status) + " " + h.body + h.err);
  auto o = h.obj();
  return {std::string(o.at("id").as_string()), std::string(o.at("token").as_string()),
          o.at("seq").as_int64()};
}

std::vector<std::string> LedgerServer::createTokens(int n, int parallel,
                                                    const std::string& role) const {
  std::vector<std::string> argv{"curl",
                                "-sS",
                                "--cacert",
                                caCert().string(),
                                "--max-time",
                                "120",
                                "-H",
                                "Authorization: Bearer " + admin_token_,
                                "-H",
                                "Content-Type: application/json",
                                "--data-binary",
                                R"({"role":")" + role + R"(","note":"bulk"})",
                                "-w",
                                "\n=%{http_code}=\n"};
  if (parallel > 1)
    argv.insert(argv.end(), {"--parallel", "--parallel-max", std::to_string(parallel)});
  argv.push_back(url() + "/v1/tokens?n=[1-" + std::to_string(n) + "]");
  auto r = run(argv);
  std::vector<std::string> ids;
  size_t created = 0;
  for (const auto& line : lines(r.out)) {
    if (line == "=201=") ++created;
    for (size_t at = line.find(R"("id":"tok_)"); at != std::string::npos;
         at = line.find(R"("id":"tok_)", at + 1)) {
      auto start = at + 6;
      ids.push_back(line.substr(start, line.find('"', start) - start));
    }
  }
  if (created != static_cast<size_t>(n) || ids.size() != static_cast<size_t>(n))
    throw std::runtime_error("bulk token creation: " + std::to_string(created) + " of " +
                             std::to_string(n) + " answered 201 (" + r.status.describe() + ") " +
                             r.err);
  return ids;
}

void LedgerServer::revokeToken(const std::string& id) const {
  auto h = request("DELETE", "/v1/tokens/" + id, admin_token_);
  if (h.status != 200)
    throw std::runtime_error("DELETE /v1/tokens/" + id + ": " + std::to_string(h.status) + " " +
                             h.body);
}

std::vector<bj::object> LedgerServer::allEvents(const std::string& query) const {
  std::vector<bj::object> out;
  int64_t after = 0;
  for (;;) {
    auto h = get("/v1/events?limit=1000&after=" + std::to_string(after) + query);
    if (h.status != 200)
      throw std::runtime_error("GET /v1/events: " + std::to_string(h.status) + " " + h.body);
    auto o = h.obj();
    const auto& evs = o.at("events").as_array();
    for (const auto& e : evs) out.push_back(e.as_object());
    if (evs.empty()) return out;
    after = o.at("next_after").as_int64();
  }
}

Env LedgerServer::cliEnv(const std::string& token) const {
  return {
      {"HWLEDGER_SERVER", url()}, {"HWLEDGER_TOKEN", token}, {"HWLEDGER_CA", caCert().string()}};
}

std::string sqlite(const fs::path& db, const std::string& sql) {
  auto r = run({"sqlite3", "-batch", "-noheader", db.string(), sql});
  if (!r.status.success() || !r.err.empty())
    throw std::runtime_error("sqlite3 " + db.string() + " \"" + sql + "\": " + r.status.describe() +
                             " " + r.err);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

RunResult cli(const std::vector<std::string>& args, const Env& env) {
  std::vector<std::string> argv{cliBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions ro;
  ro.env = env;
  return run(argv, ro);
}

void copyDir(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    if (e.is_regular_file()) fs::copy_file(e.path(), to / e.path().filename());
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

}  // namespace hwl::itest
