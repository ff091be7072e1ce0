// A real hwledger-agent in --dev mode (plain HTTP on loopback) for the agent's end-to-end tests,
// with curl as its client, plus the small real programs its jobs run.
#pragma once

#include <sys/types.h>

#include <boost/json/array.hpp>
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

namespace hwl::itest::agent {

// Paths given by the build (compile definitions).
std::string agentBin();
std::string testHttpServerBin();  // stand-in inference server: answers 200 on 127.0.0.1:PORT
std::string ignoreTermBin();      // a job that ignores SIGTERM
std::filesystem::path telemetryDir();
std::string promtoolBin();

// True while a process with this pid exists and is not a zombie.
bool processAlive(pid_t pid);

// Field 22 of /proc/PID/stat (start time in clock ticks after boot), or 0.
uint64_t procStartTime(pid_t pid);

// Polls `pred` every 50 ms until it is true or `timeout` passes; returns its last answer.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// One agent state directory and the agent that runs on it. Everything lives under `root`:
// root/state (the agent's), root/jobs (job working dirs, writable by the job user), and the
// agent's stdout/stderr files. Restarting reuses the state directory.
class Agent {
 public:
  struct Options {
    std::string probe;  // passed as --probe
    std::string job_user = "nobody";
    int64_t sample_interval_ms = 200;
    std::vector<std::string> extra;  // more flags for `run`
  };

  Agent(const std::filesystem::path& root, Options opts);
  ~Agent();  // kills the agent and every job it recorded that may still be running
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // hwledger-agent run --dev ...; waits for "listening on http://ADDR".
  void start();
  // SIGKILL, as a crash would. The jobs keep running.
  void crash();
  // SIGTERM; waits for the exit.
  ExitStatus stop();
  [[nodiscard]] bool running();

  [[nodiscard]] const std::filesystem::path& stateDir() const { return state_; }
  [[nodiscard]] const std::filesystem::path& jobsRoot() const { return jobs_root_; }
  [[nodiscard]] const std::string& address() const { return addr_; }  // 127.0.0.1:PORT
  [[nodiscard]] std::string url() const { return "http://" + addr_; }
  [[nodiscard]] std::string out() const;
  [[nodiscard]] std::string err() const;
  [[nodiscard]] pid_t pid() const;

  [[nodiscard]] Http request(const std::string& method, const std::string& path,
                             const std::optional<std::string>& body = {}) const;
  [[nodiscard]] Http get(const std::string& path) const { return request("GET", path); }

  // GET /v1/telemetry until it answers 200 (the first sample is taken after start).
  [[nodiscard]] boost::json::object telemetry() const;
  // POST /v1/jobs; the whole exchange.
  [[nodiscard]] Http submit(const boost::json::object& spec) const;
  // GET /v1/jobs/{id}; throws unless 200.
  [[nodiscard]] boost::json::object job(const std::string& id) const;
  // Polls the job until `state` or a terminal state other than `state`; returns the job then.
  boost::json::object waitForState(const std::string& id, const std::string& state,
                                   std::chrono::milliseconds timeout) const;
  // Every outbox entry after `after`. A non-zero `after` acknowledges the entries up to it, as
  // the server's scrape does; 0 reads the whole journal and acknowledges nothing.
  [[nodiscard]] std::vector<boost::json::object> outbox(uint64_t after = 0) const;
  // The outbox entries about one job, in seq order.
  [[nodiscard]] std::vector<boost::json::object> jobEvents(const std::string& id) const;

 private:
  std::filesystem::path root_;
  std::filesystem::path state_;
  std::filesystem::path jobs_root_;
  Options opts_;
  std::string addr_;
  int starts_ = 0;
  std::unique_ptr<Process> proc_;
};

// The cgroup directory name an agent on `state_dir` puts its jobs' cgroups in, every directory of
// that name in the cgroup hierarchies, and their removal (with the job cgroups inside, which must
// be empty: kill their processes first).
std::string cgroupGroupOf(const std::filesystem::path& state_dir);
std::vector<std::filesystem::path> cgroupDirsNamed(const std::string& name);
void removeCgroups(const std::filesystem::path& state_dir);
std::string readFileOrEmpty(const std::filesystem::path& p);

// The types of a list of outbox entries.
std::vector<std::string> types(const std::vector<boost::json::object>& entries);

// A job spec running the stand-in inference server on `port`, ready at /health.
boost::json::object serverJob(const std::string& id, uint16_t port);

}  // namespace hwl::itest::agent
