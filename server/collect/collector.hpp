// The pull loop: every enrolled, unrevoked host is followed by the HostSource of its kind. For
// agents (the only kind so far) that is a coroutine per host on the shared AgentTransport that, on
// a schedule, drains its outbox into the ledger (exactly once: event id
// "<host-id>:<seq>") and stores its telemetry. Each host is a coroutine on one io_context with
// its own timeouts, so a slow or dead agent delays no other. Asio/Beast stay in collector.cpp.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collect/host_source.hpp"
#include "dispatch/agent_transport.hpp"
#include "dispatch/scheduler.hpp"
#include "ledger/store.hpp"
#include "ledger/time_series.hpp"

namespace hwl::collect {

struct CollectorSettings {
  std::chrono::milliseconds telemetry_interval{10'000};
  std::chrono::milliseconds outbox_interval{2'000};
  std::chrono::milliseconds request_timeout{5'000};
  std::chrono::milliseconds host_sync_interval{5'000};
  int miss_threshold = 3;  // consecutive missed scrapes before host.unreachable
  size_t outbox_page = 500;
};

// What the collector knows of a host right now (not in the ledger: observations).
struct HostLive {
  bool connected = false;
  bool reachable = false;
  int misses = 0;
  int64_t last_seen_ms = 0;
  int64_t outbox_cursor = 0;
  std::shared_ptr<const boost::json::object> telemetry;  // latest /v1/telemetry answer
  int64_t telemetry_ms = 0;
};

struct ScrapeStats {
  uint64_t ok = 0;      // requests answered, since start
  uint64_t failed = 0;  // requests that failed or timed out, since start
  // Latency of the last (up to) 20000 answered requests.
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  size_t window = 0;
};

class Collector {
 public:
  // Agents are called over `transport`, which must outlive the collector.
  Collector(ledger::Ledger& ledger, ledger::TimeSeries& store, CollectorSettings settings,
            dispatch::AgentTransport& transport);
  ~Collector();
  // A source for another host kind (before start()); it reports to the collector through `sink`.
  void addSource(std::unique_ptr<HostSource> source);
  [[nodiscard]] HostSink& sink();
  Status start();
  void stop();
  // Reads the hosts projection again: starts links to new hosts, stops revoked ones.
  void syncHosts();
  [[nodiscard]] std::optional<HostLive> live(const std::string& host_id) const;
  [[nodiscard]] std::map<std::string, HostLive> liveAll() const;
  [[nodiscard]] ScrapeStats stats() const;
  // Changes whenever what live()/liveAll() return may have changed (a read model's key).
  [[nodiscard]] uint64_t generation() const;
  // What placement needs of a host now: reachability and its GPUs' memory by the latest sample.
  [[nodiscard]] std::optional<dispatch::HostNow> now(const std::string& host_id) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The ledger event an agent outbox entry becomes (pure: the same entry always gives the same
// event, which is what makes re-draining after a crash a no-op). Entries are checked first: a
// type outside the agent's (job.started/ready/exited/failed/cancelled/lost,
// host.inventory_changed), data of the wrong shape, an invalid job id or an entry over its size
// bound becomes agent.rejected_entry instead; free text (reason, log_tail) is cut to its bound.
ledger::AppendRequest outboxEntryToEvent(const std::string& host_id,
                                         const boost::json::object& entry);

// The event recording an entry the server refused: on the host's stream, under the entry's own
// event id "<host-id>:<seq>", so the drain moves past it exactly once.
ledger::AppendRequest rejectedEntryEvent(const std::string& host_id, int64_t seq,
                                         const std::string& type, const std::string& reason);

}  // namespace hwl::collect
