// job.usage: when a job has ended (and settled), its whole runtime; while it runs, every full
// hour since it started, cumulative. See usage_recorder.hpp.
#include "usage_recorder.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "hwl/proto/events.hpp"

namespace hwl::evidence {
namespace bj = boost::json;

std::string usageEventId(const std::string& job_id, int64_t to_ms) {
  return "usage:" + job_id + ":" + std::to_string(to_ms);
}

UsageRecorder::UsageRecorder(ledger::Ledger& ledger, ledger::TimeSeries& series,
                             UsageSettings settings, const Clock& clock)
    : ledger_(ledger), series_(series), settings_(settings), clock_(clock) {}

UsageRecorder::~UsageRecorder() { stop(); }

Status UsageRecorder::start() {
  // The job.usage events already in the ledger, so that none is computed again.
  int64_t after = 0;
  for (;;) {
    auto page = ledger_.read({after, 1000, "", proto::event::kJobUsage});
    if (!page) return page.error();
    for (const auto& e : *page) recorded_.insert(e.id);
    if (page->size() < 1000) break;
    after = page->back().seq;
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void UsageRecorder::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void UsageRecorder::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    if (auto n = tick(); !n) spdlog::warn("job.usage: {}", n.error().message);
    lock.lock();
    cv_.wait_for(lock, settings_.interval, [this] { return stop_; });
  }
}

Result<int> UsageRecorder::tick() {
  auto jobs = ledger_.withReader([](ledger::ReadView& view) { return view.listJobs(); });
  if (!jobs) return jobs.error();
  const int64_t now = clock_.nowMs();
  int appended = 0;
  for (const auto& job : *jobs) {
    if (!job.started_ms || job.gpus == "[]") continue;
    const int64_t start = *job.started_ms;
    const bool ended = ledger::isTerminalJobState(job.state) && job.ended_ms.has_value();
    // Every full hour of runtime, while it runs (and for the hours a job ran before it ended).
    const int64_t end = ended ? *job.ended_ms : now;
    for (int64_t to = start + settings_.hour_ms; to < end; to += settings_.hour_ms) {
      if (to + settings_.settle_ms > now) break;
      if (recorded_.count(usageEventId(job.id, to)) > 0) continue;
      if (auto s = appendUsage(job, start, to, false); !s) return s.error();
      ++appended;
    }
    if (ended && *job.ended_ms + settings_.settle_ms <= now &&
        recorded_.count(usageEventId(job.id, *job.ended_ms)) == 0) {
      if (auto s = appendUsage(job, start, *job.ended_ms, true); !s) return s.error();
      ++appended;
    }
  }
  return appended;
}

Status UsageRecorder::appendUsage(const ledger::JobRow& job, int64_t from_ms, int64_t to_ms,
                                  bool final) {
  std::vector<std::string> gpus;
  boost::system::error_code ec;
  const bj::value v = bj::parse(job.gpus, ec);
  if (!ec && v.is_array()) {
    for (const auto& g : v.as_array()) {
      if (g.is_string()) gpus.emplace_back(g.as_string());
    }
  }
  auto usage = series_.jobUsage(job.host_id, gpus, from_ms, std::max(from_ms, to_ms));
  if (!usage) return usage.error();
  bj::object d = std::move(*usage);
  d["job_id"] = job.id;
  d["host_id"] = job.host_id;
  d["final"] = final;
  d["state"] = job.state;
  const std::string id = usageEventId(job.id, to_ms);
  ledger::AppendRequest req;
  req.actor = "system";
  req.parts.push_back(
      {"job/" + job.id, ledger::kAnyVersion, {{id, proto::event::kJobUsage, std::move(d)}}});
  auto r = ledger_.append(std::move(req));
  if (!r) return r.error();
  recorded_.insert(id);
  return {};
}

}  // namespace hwl::evidence
