// Where the collector's observations of a host come from, one implementation per host kind (the
// agent's HTTPS API today; SSH polling and cloud providers next). The collector reads the hosts
// projection and hands each unrevoked host to the source of its kind; a source feeds what it
// observes (reachability, samples, the host's own events) into the collector's live view, the
// time series and the ledger.
#pragma once

#include <string>

#include "hwl/proto/types.hpp"
#include "ledger/rows.hpp"

namespace hwl::collect {

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
