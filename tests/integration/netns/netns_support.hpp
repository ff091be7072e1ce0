// Partitions between the real hwledger-server and a real hwledger-agent, each in a network
// namespace of its own joined by one veth pair (10.199.0.1/30 server, 10.199.0.2/30 agent:
// addresses that exist only inside these namespaces). The link is cut by taking the agent's end
// down, or silently (half-open: packets dropped, no RST) by nftables drop rules inside the
// agent's namespace. Both programs run under `ip netns exec`; the test talks to the server's REST
// API with curl run inside the server's namespace. Shared by the ctest test and the soak bench.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "server_fixture.hpp"

namespace hwl::itest::netns {

namespace fs = std::filesystem;

inline constexpr const char* kServerIp = "10.199.0.1";
inline constexpr const char* kAgentIp = "10.199.0.2";
inline constexpr uint16_t kAgentPort = 9443;
// The collector's settings in the server these helpers start, and its documented miss count
// (proto/events.md: host.unreachable after 3 missed scrapes in a row).
inline constexpr int kScrapeTimeoutMs = 1000;
inline constexpr int kTelemetryIntervalMs = 500;
inline constexpr int kOutboxIntervalMs = 300;
inline constexpr int kMissThreshold = 3;

// Why network namespaces (or, with `need_nft`, nftables inside them) cannot be used by this
// process; "" when they can. Tries a real `ip netns add` (and an nft table) and removes it.
std::string unavailableReason(bool need_nft);

int64_t wallMs();

enum class Cut { kLinkDown, kNftDrop };
const char* cutName(Cut c);

// Two fresh namespaces (names unique to this process) joined by a veth pair, loopback up in
// both. The destructor deletes the nft table and both namespaces, whatever happened before;
// namespaces left by a test process that was killed are removed by the next one.
class NetnsPair {
 public:
  NetnsPair();
  ~NetnsPair();
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  [[nodiscard]] const std::string& serverNs() const { return server_ns_; }
  [[nodiscard]] const std::string& agentNs() const { return agent_ns_; }
  // argv prefixed with `ip netns exec NS`.
  [[nodiscard]] static std::vector<std::string> in(const std::string& ns,
                                                   const std::vector<std::string>& argv);

  // Cuts the link between the two namespaces; throws when the commands fail.
  void cut(Cut how);
  // Restores the link; throws when the commands fail.
  void heal();
  [[nodiscard]] std::optional<Cut> current() const { return cut_; }

 private:
  void ip(const std::vector<std::string>& args) const;
  void nft(const std::string& script) const;
  std::string server_ns_;
  std::string agent_ns_;
  std::string nft_table_;
  std::vector<std::string> created_;
  std::optional<Cut> cut_;
};

// hwledger-server in the server namespace, listening on 10.199.0.1 (port 0), with short collector
// periods; its REST API through curl inside that namespace.
class NsServer {
 public:
  NsServer(const NetnsPair& net, const fs::path& root);
  ~NsServer();
  NsServer(const NsServer&) = delete;
  NsServer& operator=(const NsServer&) = delete;

  void launch();  // init, then run; waits for "listening on https://"
  [[nodiscard]] std::string url() const { return "https://" + addr_; }
  [[nodiscard]] const std::string& adminToken() const { return admin_token_; }
  [[nodiscard]] const fs::path& dataDir() const { return dir_; }
  [[nodiscard]] std::string logs() const;
  [[nodiscard]] bool running();

  [[nodiscard]] Http request(const std::string& method, const std::string& path,
                             const std::optional<std::string>& body = {},
                             const std::vector<std::string>& extra = {}) const;
  // GET as admin; throws unless 200.
  [[nodiscard]] boost::json::object getOk(const std::string& path) const;
  // POST as admin; throws unless 201; the body.
  boost::json::object postCreated(const std::string& path, const boost::json::object& body) const;
  [[nodiscard]] std::vector<boost::json::object> allEvents(const std::string& query = "") const;
  // The server's own client identity, as curl arguments, trusting the fleet CA.
  [[nodiscard]] std::vector<std::string> agentCurlArgs() const;
  [[nodiscard]] const NetnsPair& net() const { return net_; }

 private:
  const NetnsPair& net_;
  fs::path root_;
  fs::path dir_;
  fs::path config_;
  std::string admin_token_;
  std::string addr_;
  int starts_ = 0;
  std::unique_ptr<Process> proc_;
};

// hwledger-agent in the agent namespace, enrolled with --advertise 10.199.0.2:9443, replaying
// the repository's H100 capture, jobs as `nobody`.
class NsAgent {
 public:
  NsAgent(const NetnsPair& net, const fs::path& root);
  ~NsAgent();  // kills the agent and every job it recorded that may still run
  NsAgent(const NsAgent&) = delete;
  NsAgent& operator=(const NsAgent&) = delete;

  void enroll(const NsServer& srv);
  void start();
  [[nodiscard]] const std::string& hostId() const { return host_id_; }
  [[nodiscard]] const fs::path& stateDir() const { return state_; }
  [[nodiscard]] std::string logs() const;
  [[nodiscard]] bool running();

  // curl from the server namespace to the agent, as the server identity.
  [[nodiscard]] Http call(const NsServer& srv, const std::string& method, const std::string& path,
                          const std::optional<std::string>& body = {}) const;
  // The whole outbox, drained entries not yet compacted included (after=0 acknowledges nothing).
  [[nodiscard]] std::vector<boost::json::object> outbox(const NsServer& srv) const;
  // The job's record in the agent's state directory (read from disk: works while cut off).
  [[nodiscard]] std::optional<boost::json::object> jobOnDisk(const std::string& job_id) const;

 private:
  const NetnsPair& net_;
  fs::path root_;
  fs::path state_;
  std::string host_id_;
  int starts_ = 0;
  std::unique_ptr<Process> proc_;
};

// ---- the server's views ----
boost::json::object hostView(const NsServer& srv, const std::string& id);
boost::json::object jobView(const NsServer& srv, const std::string& id);
// Polls until the job's state is `state`; the job as last seen.
boost::json::object waitForJobState(const NsServer& srv, const std::string& id,
                                    const std::string& state, std::chrono::milliseconds timeout);
// Polls until the host is `state` ("reachable"/"unreachable"); whether it got there.
bool waitForHostState(const NsServer& srv, const std::string& id, const std::string& state,
                      std::chrono::milliseconds timeout);
// Host reachable with a sample for every GPU; throws with the last answer when it does not.
void waitForFleet(const NsServer& srv, const NsAgent& agent, std::chrono::milliseconds timeout);
std::string submitJob(const NsServer& srv, const boost::json::object& body);

// ---- ledger against outbox ----
struct LedgerAudit {
  size_t outbox_entries = 0;  // entries in the agent's outbox (expected in the ledger)
  size_t seen = 0;            // of these, found in the ledger (by event id)
  size_t duplicates = 0;      // ledger events whose id appears more than once
  size_t wrong_type = 0;      // ledger event type differs from the outbox entry's
  size_t unexpected = 0;      // ledger events with the host's id prefix absent from the outbox
  size_t jobs = 0;
  size_t jobs_out_of_order = 0;    // job streams differing from submitted, placed, then the outbox
  size_t jobs_state_mismatch = 0;  // server job state differs from the agent's
  std::vector<std::string> problems;  // one line per discrepancy
  [[nodiscard]] size_t missing() const { return outbox_entries - seen; }
  [[nodiscard]] bool clean() const { return problems.empty(); }
};

// Compares the agent's outbox and job records with the ledger and the server's job views.
// Jobs the server created and dispatched: each stream must be exactly job.submitted, job.placed,
// then the agent's entries for that job in outbox order, each once.
LedgerAudit audit(const NsServer& srv, const NsAgent& agent,
                  const std::vector<std::string>& job_ids);

}  // namespace hwl::itest::netns
