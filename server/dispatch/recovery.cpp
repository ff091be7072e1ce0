// Jobs left placed by a previous server process (see recovery.hpp).
#include "recovery.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "hwl/json.hpp"
#include "hwl/proto/types.hpp"

namespace hwl::dispatch {

namespace bj = boost::json;

PlacedJobRecovery::PlacedJobRecovery(ledger::Ledger& ledger, Scheduler& scheduler, LiveView live,
                                     RecoverySettings settings)
    : ledger_(ledger), scheduler_(scheduler), live_(std::move(live)), settings_(settings) {}

PlacedJobRecovery::~PlacedJobRecovery() { stop(); }

Status PlacedJobRecovery::start() {
  auto jobs = ledger_.withReader([](ledger::ReadView& view) { return view.listActiveJobs(); });
  if (!jobs) return jobs.error();
  std::vector<std::string> placed;
  for (const auto& j : *jobs)
    if (j.state == proto::toString(proto::JobState::kPlaced)) placed.push_back(j.id);
  if (placed.empty()) {
    finished_ = true;
    return {};
  }
  spdlog::info("{} job(s) were left placed by the previous run: dispatching them again",
               placed.size());
  thread_ = std::thread([this, p = std::move(placed)]() mutable { run(std::move(p)); });
  return {};
}

void PlacedJobRecovery::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PlacedJobRecovery::run(std::vector<std::string> job_ids) {
  const auto deadline = std::chrono::steady_clock::now() + settings_.host_wait;
  while (!job_ids.empty()) {
    std::erase_if(job_ids, [&](const std::string& id) {
      {
        std::lock_guard lk(mu_);
        if (stopping_) return false;
      }
      return attempt(id, deadline);
    });
    std::unique_lock lk(mu_);
    if (stopping_) return;
    if (job_ids.empty()) break;
    cv_.wait_for(lk, settings_.retry, [this] { return stopping_; });
  }
  finished_ = true;
}

bool PlacedJobRecovery::attempt(const std::string& job_id,
                                std::chrono::steady_clock::time_point deadline) {
  const auto id = proto::JobId::trusted(job_id);
  // Read before the job's state: a report that commits after makes the failure append conflict.
  auto version = ledger_.streamVersion("job/" + job_id);
  if (!version) return false;
  auto found = scheduler_.jobAndHost(id);
  if (!found) return false;
  // Not a structured binding: clang 15 (clang-tidy) cannot capture one in the lambda below.
  const auto& job = found->first;
  const auto& host = found->second;
  // Reported by its host (or ended) meanwhile: nothing left to do.
  if (job.state != proto::toString(proto::JobState::kPlaced)) return true;
  auto failed = [&](const std::string& reason) {
    // A conflict: something happened to the job since it was read; look again next round.
    return scheduler_.dispatchFailed(id, *version, reason).has_value();
  };
  if (!host) return failed("placed on " + job.host_id + ", which is not in the ledger");
  auto row =
      ledger_.withReader([&](ledger::ReadView& view) { return view.findHost(host->id.str()); });
  if (row && *row && (**row).state == proto::HostState::kRevoked)
    return failed("its host " + host->id.str() + " was revoked");
  auto spec = json::parseObject(job.spec);
  if (!spec) return failed("its recorded spec cannot be read: " + spec.error().message);
  std::vector<std::string> gpus;
  if (auto* g = spec->if_contains("gpus"); g && g->is_array())
    for (const auto& u : g->as_array())
      if (u.is_string()) gpus.emplace_back(u.as_string());
  const auto live = live_ ? live_(host->id.str()) : std::nullopt;
  const bool expired = std::chrono::steady_clock::now() >= deadline;
  const auto waited =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(settings_.host_wait).count());
  // The host checks GPU uuids against its latest sample: wait for one before asking.
  if (!live || !live->reachable || (!gpus.empty() && !live->has_telemetry)) {
    if (!expired) return false;
    return failed("not dispatched: its host " + host->id.str() + " was not reachable within " +
                  waited + " s of a server restart");
  }
  auto r = scheduler_.launchPlaced(*host, {id, gpus, *spec});
  switch (r.outcome) {
    case LaunchResult::Outcome::kAccepted:
      spdlog::info("job {} dispatched to {} after a server restart", job_id, host->id.str());
      return true;
    case LaunchResult::Outcome::kRefused:
      return failed("after a server restart: " + r.detail);
    case LaunchResult::Outcome::kNoAnswer:
      if (!expired) return false;
      return failed("after a server restart, for " + waited + " s: " + r.detail);
  }
  return false;
}

}  // namespace hwl::dispatch
