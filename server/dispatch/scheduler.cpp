// Placement with optimistic concurrency, then dispatch through the host kind's Driver.
#include "scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "hwl/crypto.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::dispatch {

namespace bj = boost::json;
namespace ev = proto::event;
using proto::HostState;

namespace {
// Placements that lose a race read the fleet again; this many losses in a row is a fleet changing
// faster than it can be read, answered with "try again".
constexpr int kMaxPlacementAttempts = 8;

std::string jobStream(const std::string& id) { return std::string(proto::stream::kJobPrefix) + id; }
std::string gpusStream(const std::string& host) {
  return std::string(proto::stream::kGpusPrefix) + host;
}
}  // namespace

HostTarget targetOf(const ledger::HostRow& h) {
  return {proto::HostId::trusted(h.id), h.name, h.kind, h.address};
}

struct Scheduler::Choice {
  ledger::HostRow host;
  std::vector<std::string> gpus;
  int64_t gpus_version = 0;  // of the host's gpus/ stream, read with the holds it guards
};

Scheduler::Scheduler(ledger::Ledger& ledger, LiveView live, const Clock& clock)
    : ledger_(ledger), live_(std::move(live)), clock_(clock) {}

void Scheduler::addDriver(std::unique_ptr<Driver> driver) {
  const auto kind = driver->kind();
  drivers_[kind] = std::move(driver);
}

Driver* Scheduler::driverFor(proto::HostKind kind) const {
  auto it = drivers_.find(kind);
  return it == drivers_.end() ? nullptr : it->second.get();
}

Result<Scheduler::Choice> Scheduler::place(const proto::JobRequest& req) {
  return ledger_.withSnapshot([&](ledger::ReadView& view) -> Result<Choice> {
    auto hosts = view.listHosts();
    if (!hosts) return hosts.error();
    auto active = view.listActiveJobs();
    if (!active) return active.error();
    // GPUs held by jobs that have not ended.
    std::set<std::string> busy;
    for (const auto& j : *active) {
      boost::system::error_code ec;
      auto g = bj::parse(j.gpus, ec);
      if (g.is_array())
        for (const auto& u : g.get_array())
          if (u.is_string()) busy.insert(j.host_id + "/" + std::string(u.get_string()));
    }
    bj::object reasons;
    for (const auto& h : *hosts) {
      if (req.host && *req.host != h.id && *req.host != h.name) continue;
      auto why = [&](const std::string& r) { reasons[h.id] = r; };
      if (h.state == HostState::kRevoked) {
        why("revoked");
        continue;
      }
      if (driverFor(h.kind) == nullptr) {
        why("no driver for " + std::string(proto::toString(h.kind)) + " hosts");
        continue;
      }
      auto live = live_ ? live_(h.id) : std::nullopt;
      if (!live || !live->reachable) {
        why("unreachable");
        continue;
      }
      Choice c{h, {}, 0};
      if (req.gpus > 0) {
        if (!live->has_telemetry) {
          why("no telemetry yet");
          continue;
        }
        std::vector<std::pair<int64_t, std::string>> fit;  // free bytes, uuid
        for (const auto& g : live->gpus) {
          if (busy.count(h.id + "/" + g.uuid) != 0) continue;
          int64_t free = g.memory_total_bytes - g.memory_used_bytes.value_or(0);
          if (req.gpu_memory_bytes && free < *req.gpu_memory_bytes) continue;
          fit.emplace_back(free, g.uuid);
        }
        if (static_cast<int64_t>(fit.size()) < req.gpus) {
          std::string r = std::to_string(fit.size()) + " of " + std::to_string(live->gpus.size()) +
                          " GPUs available";
          if (req.gpu_memory_bytes)
            r += " with " + std::to_string(*req.gpu_memory_bytes) + " bytes free";
          r += ", " + std::to_string(req.gpus) + " needed";
          why(r);
          continue;
        }
        std::sort(fit.begin(), fit.end(), std::greater<>());
        for (int64_t i = 0; i < req.gpus; ++i) c.gpus.push_back(fit[i].second);
        auto v = view.streamVersion(gpusStream(h.id));
        if (!v) return v.error();
        c.gpus_version = *v;
      }
      return c;
    }
    if (req.host && reasons.empty()) return notFound("no host \"" + *req.host + "\"");
    Error e = conflict("no host can take this job");
    e.reason = "no_placement";
    e.details = bj::serialize(bj::object{{"hosts", std::move(reasons)}});
    return e;
  });
}

namespace {
// job.placed: where, and the planner's prediction when the job named its model.
bj::object placedData(const std::string& id, const std::string& host, const bj::array& gpus,
                      const proto::JobRequest& req) {
  bj::object o{{"job_id", id}, {"host_id", host}, {"gpus", gpus}};
  if (req.predicted) o["predicted"] = *req.predicted;
  return o;
}
}  // namespace

Result<Placed> Scheduler::submit(const proto::JobRequest& req, const std::string& actor) {
  for (int attempt = 0; attempt < kMaxPlacementAttempts; ++attempt) {
    auto choice = place(req);
    if (!choice) return choice.error();
    const std::string id = crypto::newId("job-", 6);
    bj::object spec = req.hostSpec(id, choice->gpus);
    if (auto s = proto::checkHostSpec(spec, choice->gpus); !s)
      return internal("the placed spec does not validate: " + s.error().message);
    bj::array gpu_arr;
    for (const auto& g : choice->gpus) gpu_arr.emplace_back(g);
    const auto& h = choice->host;
    ledger::AppendRequest ar;
    ar.actor = actor;
    ar.parts.push_back({jobStream(id),
                        ledger::kNoStream,
                        {{"", std::string(ev::kJobSubmitted),
                          bj::object{{"job_id", id},
                                     {"name", req.name.value_or(id)},
                                     {"spec", spec},
                                     {"requested", req.requested()}}},
                         {"", std::string(ev::kJobPlaced), placedData(id, h.id, gpu_arr, req)}}});
    // The reservation: at the version read with the holds, so a placement that took one of these
    // GPUs since makes this append fail.
    if (!choice->gpus.empty())
      ar.parts.push_back({gpusStream(h.id),
                          choice->gpus_version,
                          {{"", std::string(ev::kGpusReserved),
                            bj::object{{"host_id", h.id}, {"job_id", id}, {"gpus", gpu_arr}}}}});
    {
      // Marked before the append commits: a cancel that sees the job placed waits for its
      // dispatch.
      std::lock_guard lk(mu_);
      dispatching_.insert(id);
    }
    auto done = [&] {
      {
        std::lock_guard lk(mu_);
        dispatching_.erase(id);
      }
      dispatched_cv_.notify_all();
    };
    auto r = ledger_.append(std::move(ar));
    if (!r) {
      done();
      if (r.error().code == Code::kConflict) {
        ++conflicts_;
        continue;
      }
      return r.error();
    }
    Placed placed{proto::JobId::trusted(id), targetOf(h), choice->gpus};
    auto res = driverFor(h.kind)->launch(placed.host, {placed.id, choice->gpus, spec});
    if (res.outcome != LaunchResult::Outcome::kAccepted) {
      // At the version of submitted + placed: a report from the host since (it did get the job)
      // wins over this verdict.
      auto s = dispatchFailed(placed.id, 2, res.detail);
      done();
      if (s || s.error().code != Code::kConflict)
        return badGateway("dispatch_failed",
                          "job " + id + " was placed on " + h.id + " but " + res.detail);
      return placed;
    }
    done();
    return placed;
  }
  return unavailable("the fleet changed under " + std::to_string(kMaxPlacementAttempts) +
                     " placements in a row; try again");
}

Status Scheduler::dispatchFailed(const proto::JobId& job, int64_t version,
                                 const std::string& reason) {
  spdlog::warn("job {}: dispatch failed: {}", job.str(), reason);
  auto r = ledger_.append(
      jobStream(job.str()), version, "system",
      {{"", std::string(ev::kJobDispatchFailed),
        bj::object{{"job_id", job.str()},
                   {"state", std::string(proto::toString(proto::JobState::kDispatchFailed))},
                   {"reason", "dispatch failed: " + reason},
                   {"ended_ms", clock_.nowMs()}}}});
  if (!r) return r.error();
  return {};
}

LaunchResult Scheduler::launchPlaced(const HostTarget& host, const LaunchSpec& job) {
  Driver* d = driverFor(host.kind);
  if (d == nullptr)
    return {LaunchResult::Outcome::kRefused,
            "no driver for " + std::string(proto::toString(host.kind)) + " hosts"};
  {
    std::lock_guard lk(mu_);
    dispatching_.insert(job.id.str());
  }
  auto r = d->launch(host, job);
  {
    std::lock_guard lk(mu_);
    dispatching_.erase(job.id.str());
  }
  dispatched_cv_.notify_all();
  return r;
}

void Scheduler::awaitDispatch(const std::string& id) {
  std::unique_lock lk(mu_);
  dispatched_cv_.wait(lk, [&] { return dispatching_.count(id) == 0; });
}

Result<std::pair<ledger::JobRow, std::optional<HostTarget>>> Scheduler::jobAndHost(
    const proto::JobId& id) {
  return ledger_.withSnapshot(
      [&](ledger::ReadView& view) -> Result<std::pair<ledger::JobRow, std::optional<HostTarget>>> {
        auto j = view.findJob(id.str());
        if (!j) return j.error();
        if (!j->has_value()) return notFound("no job \"" + id.str() + "\"");
        auto h = view.findHost((*j)->host_id);
        if (!h) return h.error();
        std::optional<HostTarget> t;
        if (*h) t = targetOf(**h);
        return std::make_pair(std::move(**j), std::move(t));
      });
}

Result<Scheduler::Cancelled> Scheduler::cancel(const proto::JobId& id, const std::string& actor) {
  // A job still being dispatched is not cancelled under its dispatch.
  awaitDispatch(id.str());
  // The version is read before the job's state (see Ledger::streamVersion): a state change that
  // commits between the two makes the append below fail rather than end the job twice.
  const std::string stream = jobStream(id.str());
  auto version = ledger_.streamVersion(stream);
  if (!version) return version.error();
  auto jh = jobAndHost(id);
  if (!jh) return jh.error();
  if (proto::isTerminalJobState(jh->first.state))
    return conflict("job \"" + id.str() + "\" has already ended (" + jh->first.state + ")");
  const auto& h = jh->second;
  if (!h) return notFound("job \"" + id.str() + "\" has no host");
  Driver* d = driverFor(h->kind);
  if (d == nullptr)
    return Error{Code::kFailedPrecondition,
                 "no driver for " + std::string(proto::toString(h->kind)) + " hosts"};
  auto r = d->cancel(*h, id);
  if (!r) return r.error();
  if (r->outcome == CancelResult::Outcome::kCancelling) return Cancelled{*h, false, ""};
  // The host has no such job (it never got it, or lost its state): nothing runs, so the job ends
  // here, at the version read above (a host's report since then wins).
  const std::string reason = "cancelled by " + actor + ": " +
                             (h->kind == proto::HostKind::kAgent ? "the agent of " : "host ") +
                             h->id.str() + " has no such job";
  auto a = ledger_.append(stream, *version, actor,
                          {{"", std::string(ev::kJobCancelled),
                            bj::object{{"job_id", id.str()},
                                       {"state", "cancelled"},
                                       {"reason", reason},
                                       {"ended_ms", clock_.nowMs()}}}});
  if (!a) {
    if (a.error().code == Code::kConflict)
      return conflict("job \"" + id.str() + "\" changed while it was being cancelled; try again");
    return a.error();
  }
  return Cancelled{*h, true, reason};
}

}  // namespace hwl::dispatch
