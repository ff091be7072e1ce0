// The fleet loop end to end: a real hwledger-server scraping real hwledger-agents over mutual TLS
// on loopback, each agent enrolled with a one-time token and replaying recorded real GPU
// captures. Helpers for the server's ledger (events, jobs, hosts) and for reading the captures
// independently of the agent's own parsers, so what the server shows is checked against the files.
#pragma once

#include <sys/types.h>

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "server_fixture.hpp"

namespace hwl::itest::fleet {

namespace fs = std::filesystem;

// Paths given by the build (compile definitions).
std::string agentBin();
std::string testHttpServerBin();  // answers 200 on 127.0.0.1:PORT, prints CUDA_VISIBLE_DEVICES
fs::path repoRoot();
fs::path buildDir();
fs::path telemetryDir();

// True while a process with this pid exists and is not a zombie.
bool processAlive(pid_t pid);
// Kills the process group of every live job recorded under an agent's state dir: jobs outlive
// the agent by design, and a test must not leave them behind.
void killJobsLeftIn(const fs::path& state_dir);
// Polls `pred` every 100 ms until it is true or `timeout` passes; returns its last answer.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout);
// Whether something accepts TCP connections on 127.0.0.1:port.
bool portAccepts(uint16_t port);

// A temp dir the job user (nobody) can traverse: agents' job directories live below it.
class FleetDir {
 public:
  FleetDir();
  [[nodiscard]] const fs::path& path() const { return dir_.path(); }
  fs::path operator/(std::string_view name) const { return dir_ / name; }

 private:
  TempDir dir_;
};

// A server with short scrape periods (telemetry 500 ms, outbox 300 ms, request timeout 1 s).
class FleetServer : public LedgerServer {
 public:
  explicit FleetServer(const fs::path& root, const std::string& name = "server");
  // init (first time, writing `config` as the config file) and run with the short periods.
  void launch(const std::string& config = R"({"scrape_timeout_ms":1000})");
  // The server's own client identity, as curl arguments, trusting the fleet CA.
  [[nodiscard]] std::vector<std::string> agentCurlArgs() const;

 private:
  fs::path config_;
  bool initialised_ = false;
};

// One enrolled agent: root/<name>/state, listening on a port picked before enrollment (the
// address the server is told to call).
class FleetAgent {
 public:
  FleetAgent(const fs::path& root, std::string name, std::string probe);
  ~FleetAgent();  // kills the agent and every job it recorded that may still run
  FleetAgent(const FleetAgent&) = delete;
  FleetAgent& operator=(const FleetAgent&) = delete;

  // A fresh token from POST /v1/enroll-tokens, then `hwledger-agent enroll`; throws on failure.
  void enroll(const FleetServer& srv);
  // hwledger-agent run ...; waits for "listening on https://".
  void start();
  void crash();  // SIGKILL; jobs keep running
  void signal(int sig);
  // The probe of the next start() (the same host with other GPUs).
  void setProbe(std::string probe) { probe_ = std::move(probe); }
  [[nodiscard]] bool running();

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& hostId() const { return host_id_; }
  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] const fs::path& stateDir() const { return state_; }
  [[nodiscard]] std::string logs() const;

  // curl against the agent's API as the server identity (mutual TLS).
  [[nodiscard]] Http call(const FleetServer& srv, const std::string& method,
                          const std::string& path,
                          const std::optional<std::string>& body = {}) const;
  // The whole outbox (after=0 acknowledges nothing).
  [[nodiscard]] std::vector<boost::json::object> outbox(const FleetServer& srv) const;

 private:
  fs::path root_;
  std::string name_;
  std::string probe_;
  fs::path state_;
  uint16_t port_ = 0;
  std::string host_id_;
  int starts_ = 0;
  std::unique_ptr<Process> proc_;
};

// ---- the server's views ----

// GET path as admin; throws unless 200.
boost::json::object getOk(const LedgerServer& srv, const std::string& path);
// GET /v1/hosts/{id}; throws unless 200.
boost::json::object host(const LedgerServer& srv, const std::string& id);
// GET /v1/jobs/{id}; throws unless 200.
boost::json::object job(const LedgerServer& srv, const std::string& id);
// Polls GET /v1/jobs/{id} until its state is `state`; the job as last seen.
boost::json::object waitForJobState(const LedgerServer& srv, const std::string& id,
                                    const std::string& state, std::chrono::milliseconds timeout);
// Polls until every agent's host is reachable and shows a sample for each of its GPUs.
void waitForFleet(const LedgerServer& srv, const std::vector<const FleetAgent*>& agents,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A launched server with one enrolled agent named "h100" replaying the H100 capture, started and
// scraped (host reachable, GPUs sampled).
struct OneHostFleet {
  OneHostFleet();
  FleetDir root;
  FleetServer srv{root.path()};
  FleetAgent agent{root.path(), "h100",
                   "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()};
};

// Events of one stream, or of one type, in seq order.
std::vector<boost::json::object> streamEvents(const LedgerServer& srv, const std::string& stream);
std::vector<boost::json::object> typedEvents(const LedgerServer& srv, const std::string& type);
std::vector<std::string> typesOf(const std::vector<boost::json::object>& events);
std::string str(const boost::json::value& v);
int64_t i64(const boost::json::value& v);

// POST /v1/jobs; the whole exchange.
Http submitJob(const LedgerServer& srv, const boost::json::object& body);
// Submits `body` and throws unless 201; returns the job id.
std::string submitJobOk(const LedgerServer& srv, const boost::json::object& body);

// ---- the captures, read by the test itself ----

struct CapturedGpu {
  std::string uuid;
  std::string name;
  int64_t memory_total_bytes = 0;
  std::string driver_version;
  std::vector<int64_t> memory_used_bytes;  // one per recorded frame (busy, idle, …)
};

// nvidia-smi --query-gpu CSV (with its -idle sibling when present).
std::vector<CapturedGpu> readQueryGpuCsv(const fs::path& busy);
// nvidia-smi -q -x.
std::vector<CapturedGpu> readSmiXml(const fs::path& xml);
// rocm-smi --json.
std::vector<CapturedGpu> readRocmSmiJson(const fs::path& json);

}  // namespace hwl::itest::fleet
