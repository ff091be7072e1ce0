// Placing jobs on hosts and handing them to the host's Driver. A placement reads the fleet, picks
// a host and its GPUs, and appends job.submitted + job.placed together with gpus.reserved on the
// host's "gpus/<host-id>" stream at the version it read: two placements that race for a GPU
// cannot both commit (the loser reads again). No lock is held across a call to a host, so a slow
// host delays only the submissions that go to it.
#pragma once

#include <boost/json/object.hpp>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "driver.hpp"
#include "hwl/clock.hpp"
#include "hwl/proto/job_request.hpp"
#include "ledger/rows.hpp"
#include "ledger/store.hpp"

namespace hwl::dispatch {

// What the collector knows of a host now (its latest sample), for placement.
struct GpuNow {
  std::string uuid;
  int64_t memory_total_bytes = 0;
  std::optional<int64_t> memory_used_bytes;
};
struct HostNow {
  bool reachable = false;
  bool has_telemetry = false;
  std::vector<GpuNow> gpus;
};
using LiveView = std::function<std::optional<HostNow>(const std::string& host_id)>;

struct Placed {
  proto::JobId id;
  HostTarget host;
  std::vector<std::string> gpus;
};

class Scheduler {
 public:
  Scheduler(ledger::Ledger& ledger, LiveView live, const Clock& clock = SystemClock::instance());
  void addDriver(std::unique_ptr<Driver> driver);
  [[nodiscard]] Driver* driverFor(proto::HostKind kind) const;

  // Places and dispatches a job. Errors: kNotFound (the wanted host does not exist),
  // kConflict/"no_placement" with {"hosts": {host id: why}} in the details, kBadGateway/
  // "dispatch_failed" when the host did not take it (the job then ends as dispatch_failed and its
  // GPUs are free again).
  Result<Placed> submit(const proto::JobRequest& req, const std::string& actor);

  struct Cancelled {
    HostTarget host;
    bool ended = false;  // true: ended here (the host had no such job); false: being cancelled
    std::string reason;
  };
  Result<Cancelled> cancel(const proto::JobId& id, const std::string& actor);

  // The job and the host it was placed on (kNotFound naming what is missing).
  Result<std::pair<ledger::JobRow, std::optional<HostTarget>>> jobAndHost(const proto::JobId& id);

  // Records that `job` (placed at `version` of its stream) could not be dispatched: appends
  // job.dispatch_failed with the reason, which frees its GPUs.
  Status dispatchFailed(const proto::JobId& job, int64_t version, const std::string& reason);

  // Dispatches a job that is already placed (one a previous server process left placed), marked
  // as being dispatched meanwhile like a submission's.
  LaunchResult launchPlaced(const HostTarget& host, const LaunchSpec& job);

  [[nodiscard]] uint64_t placementConflicts() const { return conflicts_; }

 private:
  struct Choice;
  Result<Choice> place(const proto::JobRequest& req);
  // Waits while `id` is being dispatched by a submission (so a cancel does not overtake it).
  void awaitDispatch(const std::string& id);

  ledger::Ledger& ledger_;
  LiveView live_;
  const Clock& clock_;
  std::map<proto::HostKind, std::unique_ptr<Driver>> drivers_;
  std::mutex mu_;  // guards dispatching_ only; never held across a call
  std::condition_variable dispatched_cv_;
  std::set<std::string> dispatching_;
  std::atomic<uint64_t> conflicts_{0};
};

HostTarget targetOf(const ledger::HostRow& h);

}  // namespace hwl::dispatch
