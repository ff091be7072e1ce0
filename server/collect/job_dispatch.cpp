// Dispatch of placed jobs to agents, and the start-up pass over jobs left placed.
#include "job_dispatch.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "collector.hpp"
#include "hwl/json.hpp"
#include "ledger/fleet_projection.hpp"
#include "ledger/hosts_projection.hpp"

namespace hwl::collect {

namespace bj = boost::json;

std::unique_ptr<http::Client> agentClient(const AgentIdentity& id, const std::string& host_id,
                                          const std::string& address) {
  return std::make_unique<http::Client>(http::ClientSettings{
      .base_url = "https://" + address,
      .ca_file = id.ca_file,
      .cert_file = id.cert_file,
      .key_file = id.key_file,
      .verify_hostname = false,
      .expected_uri = "hwledger://host/" + host_id,
      .timeout = id.timeout});
}

namespace {

// The message of an agent's error body, else the start of the body.
std::string agentMessage(const std::string& body) {
  if (auto o = json::parseObject(body)) {
    if (const auto* e = o->if_contains("error"); e && e->is_object())
      if (const auto* m = e->as_object().if_contains("message"); m && m->is_string())
        return std::string(m->as_string()).substr(0, 300);
  }
  return body.substr(0, 300);
}

}  // namespace

DispatchResult dispatchJob(http::Client& client, const bj::object& agent_spec) {
  const std::string body = bj::serialize(agent_spec);
  auto res = client.request("POST", "/v1/jobs", body);
  if (!res) return {DispatchResult::Outcome::kNoAnswer, res.error().message};
  if (res->status < 300 || res->status == 409) return {DispatchResult::Outcome::kAccepted, ""};
  std::string why =
      "the agent answered HTTP " + std::to_string(res->status) + ": " + agentMessage(res->body);
  // 5xx: the agent is there but cannot take it now (stopping, its outbox full): not a verdict.
  if (res->status >= 500) return {DispatchResult::Outcome::kNoAnswer, why};
  return {DispatchResult::Outcome::kRefused, why};
}

PlacedJobRecovery::PlacedJobRecovery(ledger::Ledger& ledger, const Collector* collector,
                                     RecoverySettings settings, const Clock& clock)
    : ledger_(ledger), collector_(collector), settings_(std::move(settings)), clock_(clock) {}

PlacedJobRecovery::~PlacedJobRecovery() { stop(); }

Status PlacedJobRecovery::start() {
  auto jobs = ledger_.withReader([](sqlite::Db& db) { return ledger::listJobs(db); });
  if (!jobs) return jobs.error();
  std::vector<std::string> placed;
  for (const auto& j : *jobs)
    if (j.state == "placed") placed.push_back(j.id);
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

Status PlacedJobRecovery::fail(const std::string& job_id, int64_t version,
                               const std::string& reason) {
  spdlog::warn("job {}: {}", job_id, reason);
  // At the version read with the job's state: an agent report that arrived since wins.
  auto r = ledger_.append("job/" + job_id, version, "system",
                          {{"", "job.failed",
                            bj::object{{"job_id", job_id},
                                       {"state", "failed"},
                                       {"reason", reason},
                                       {"ended_ms", clock_.nowMs()}}}});
  if (!r) return r.error();
  return {};
}

bool PlacedJobRecovery::attempt(const std::string& job_id,
                                std::chrono::steady_clock::time_point deadline) {
  const std::string stream = "job/" + job_id;
  auto version = ledger_.streamVersion(stream);
  if (!version) return false;
  auto found = ledger_.withReader(
      [&](sqlite::Db& db)
          -> Result<std::pair<std::optional<ledger::JobRow>, std::optional<ledger::HostRow>>> {
        auto j = ledger::findJob(db, job_id);
        if (!j) return j.error();
        if (!j->has_value()) return std::make_pair(std::move(*j), std::optional<ledger::HostRow>());
        auto h = ledger::findHost(db, (*j)->host_id);
        if (!h) return h.error();
        return std::make_pair(std::move(*j), std::move(*h));
      });
  if (!found) return false;
  const auto& [job, host] = *found;
  // Reported by its agent (or ended) meanwhile: nothing left to do.
  if (!job || job->state != "placed") return true;
  auto failed = [&](const std::string& reason) {
    auto s = fail(job_id, *version, reason);
    // A conflict: something happened to the job since it was read; look again next round.
    return s.has_value();
  };
  if (!host) return failed("placed on " + job->host_id + ", which is not in the ledger");
  if (host->state == "revoked") return failed("its host " + host->id + " was revoked");
  auto spec = json::parseObject(job->spec);
  if (!spec) return failed("its recorded spec cannot be read: " + spec.error().message);
  const bool needs_gpus = spec->contains("gpus") && spec->at("gpus").is_array() &&
                          !spec->at("gpus").as_array().empty();
  const auto live = collector_ != nullptr ? collector_->live(host->id) : std::nullopt;
  const bool expired = std::chrono::steady_clock::now() >= deadline;
  const auto waited = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(settings_.host_wait).count());
  // The agent checks GPU uuids against its latest sample: wait for one before asking.
  if (!live || !live->reachable || (needs_gpus && !live->telemetry)) {
    if (!expired) return false;
    return failed("not dispatched: its host " + host->id + " was not reachable within " + waited +
                  " s of a server restart");
  }
  auto client = agentClient(settings_.agent, host->id, host->address);
  auto r = dispatchJob(*client, *spec);
  switch (r.outcome) {
    case DispatchResult::Outcome::kAccepted:
      spdlog::info("job {} dispatched to {} after a server restart", job_id, host->id);
      return true;
    case DispatchResult::Outcome::kRefused:
      return failed("dispatch after a server restart failed: " + r.detail);
    case DispatchResult::Outcome::kNoAnswer:
      if (!expired) return false;
      return failed("dispatch after a server restart failed for " + waited + " s: " + r.detail);
  }
  return false;
}

}  // namespace hwl::collect
