// Where the collector's observations of a host come from, one implementation per host kind (the
// agent's HTTPS API today; SSH polling and cloud providers next). The collector reads the hosts
// projection and hands each unrevoked host to the source of its kind; a source feeds what it
// observes (reachability, samples, the host's own events) into the collector's live view, the
// time series and the ledger.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "hwl/proto/types.hpp"
#include "ledger/event.hpp"
#include "ledger/rows.hpp"

namespace hwl::collect {

// Whether a host was last recorded reachable: the collector appends host.reachable and
// host.unreachable only on a change.
enum class Known { kUnknown, kUp, kDown };

// The event a poll's outcome calls for (host.reachable on the first answer after none or an
// outage; host.unreachable after `threshold` misses in a row), updating `known`; none when the
// recorded state stays true.
[[nodiscard]] std::optional<ledger::NewEvent> reachabilityChange(const std::string& host_id,
                                                                 bool ok, int misses, int threshold,
                                                                 Known& known,
                                                                 const std::string& why);
[[nodiscard]] Known knownOf(proto::HostState s);

// What a source outside the collector reports to it, from its own threads.
class HostSink {
 public:
  virtual ~HostSink() = default;
  // A host is followed from now on, in the state the ledger has for it.
  virtual void following(const ledger::HostRow& host) = 0;
  // A poll's outcome: last seen, the latency figures, and host.reachable / host.unreachable as
  // reachabilityChange decides (appended before this returns).
  virtual void observed(const std::string& host_id, bool ok, const std::string& why,
                        double latency_ms) = 0;
  // A telemetry document in the agent's GET /v1/telemetry shape: into the time series (and so
  // the hourly events) and the live view.
  virtual void telemetry(const std::string& host_id, boost::json::object body) = 0;
  // The host is no longer followed.
  virtual void forget(const std::string& host_id) = 0;
};

class HostSource {
 public:
  virtual ~HostSource() = default;
  [[nodiscard]] virtual proto::HostKind kind() const = 0;
  // Whether `host` is followed now at its current address.
  [[nodiscard]] virtual bool follows(const ledger::HostRow& host) const = 0;
  // Starts following `host` (again, when its address changed); `cursor`: how far the host's own
  // event feed is already in the ledger.
  virtual void follow(const ledger::HostRow& host, int64_t cursor) = 0;
  // Stops following a host (revoked, or gone from the ledger): no more calls to it.
  virtual void drop(const std::string& host_id) = 0;
  // Stops every host and returns once no work of this source runs.
  virtual void stopAll() = 0;
};

}  // namespace hwl::collect
