// job.usage: when a job has ended (and settled), its whole runtime; while it runs, every full
// hour since it started, cumulative. job.idle and gpu.unaccounted_use from the minutes of the
// time series and the collector's live view. See evidence_recorder.hpp.
#include "evidence_recorder.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <set>

#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"
#include "report.hpp"

namespace hwl::evidence {
namespace bj = boost::json;

std::string usageEventId(const std::string& job_id, int64_t to_ms) {
  return "usage:" + job_id + ":" + std::to_string(to_ms);
}

namespace {

constexpr int64_t kMinute = 60'000;

std::vector<std::string> gpusOf(const ledger::JobRow& job) {
  std::vector<std::string> gpus;
  boost::system::error_code ec;
  const bj::value v = bj::parse(job.gpus, ec);
  if (!ec && v.is_array()) {
    for (const auto& g : v.as_array()) {
      if (g.is_string()) gpus.emplace_back(g.as_string());
    }
  }
  return gpus;
}

double threshold(double baseline, const EvidenceSettings& s) {
  return baseline + std::max(s.idle_margin_w, s.idle_margin_frac * baseline);
}

bool idleMinute(const ledger::GpuMinute& m, double baseline, const EvidenceSettings& s) {
  return m.samples > 0 && m.util_max_pct && *m.util_max_pct <= s.idle_util_pct && m.power_mean_w &&
         *m.power_mean_w <= threshold(baseline, s);
}

// The idle evidence of one GPU over its minutes in [from, to): its baseline and threshold, mean
// power and largest utilisation; nullopt when a minute with samples was not idle, or none had
// samples (nothing is proven).
std::optional<bj::object> idleEvidence(const std::string& uuid,
                                       const std::vector<ledger::GpuMinute>& minutes,
                                       double baseline, int64_t from, int64_t to,
                                       const EvidenceSettings& s) {
  double power = 0, util = 0;
  int64_t n = 0;
  for (const auto& m : minutes) {
    if (m.bucket_ms < from - from % kMinute || m.bucket_ms >= to || m.samples == 0) continue;
    if (!idleMinute(m, baseline, s)) return std::nullopt;
    power += m.power_mean_w.value_or(0);
    util = std::max(util, m.util_max_pct.value_or(0));
    ++n;
  }
  if (n == 0) return std::nullopt;
  return bj::object{{"gpu_uuid", uuid},
                    {"baseline_w", std::round(baseline * 100) / 100},
                    {"threshold_w", std::round(threshold(baseline, s) * 100) / 100},
                    {"power_mean_w", std::round(power / static_cast<double>(n) * 100) / 100},
                    {"util_max_pct", util},
                    {"minutes_with_samples", n}};
}

}  // namespace

std::optional<double> idleBaseline(const std::vector<ledger::GpuMinute>& minutes,
                                   double idle_util_pct) {
  std::optional<double> low;
  for (const auto& m : minutes) {
    if (m.samples == 0 || !m.util_max_pct || *m.util_max_pct > idle_util_pct || !m.power_mean_w)
      continue;
    low = std::min(low.value_or(*m.power_mean_w), *m.power_mean_w);
  }
  return low;
}

std::optional<int64_t> idleSince(const std::vector<ledger::GpuMinute>& minutes, double baseline,
                                 const EvidenceSettings& s) {
  std::optional<int64_t> since;
  int64_t expect = -1;
  for (auto it = minutes.rbegin(); it != minutes.rend(); ++it) {
    if (!idleMinute(*it, baseline, s)) break;
    if (expect >= 0 && it->bucket_ms != expect) break;  // a gap: the host was away
    since = it->bucket_ms;
    expect = it->bucket_ms - kMinute;
  }
  return since;
}

EvidenceRecorder::EvidenceRecorder(ledger::Ledger& ledger, ledger::TimeSeries& series,
                                   EvidenceSettings settings, const Clock& clock, LiveGpus live)
    : ledger_(ledger),
      series_(series),
      settings_(settings),
      clock_(clock),
      live_(std::move(live)) {}

EvidenceRecorder::~EvidenceRecorder() { stop(); }

Status EvidenceRecorder::start() {
  if (auto s = load(); !s) return s;
  thread_ = std::thread([this] { run(); });
  return {};
}

Status EvidenceRecorder::load() {
  std::lock_guard lock(tick_mu_);
  // The job.usage events already in the ledger, so that none is computed again.
  for (const char* type :
       {proto::event::kJobUsage, proto::event::kJobIdle, proto::event::kGpuUnaccountedUse,
        proto::event::kRentalIdleBilled, proto::event::kJobReconciled}) {
    auto events = eventsOfType(ledger_, type);
    if (!events) return events.error();
    for (const auto& e : *events) recorded_.insert(e.id);
  }
  return {};
}

void EvidenceRecorder::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EvidenceRecorder::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    if (auto n = tick(); !n) spdlog::warn("job.usage: {}", n.error().message);
    lock.lock();
    cv_.wait_for(lock, settings_.interval, [this] { return stop_; });
  }
}

Result<int> EvidenceRecorder::tick() {
  std::lock_guard lock(tick_mu_);
  auto jobs = ledger_.withReader([](ledger::ReadView& view) { return view.listJobs(); });
  if (!jobs) return jobs.error();
  const int64_t now = clock_.nowMs();
  int appended = 0;
  for (const auto& job : *jobs) {
    if (!job.started_ms || job.gpus == "[]") continue;
    const int64_t start = *job.started_ms;
    const bool ended = ledger::isTerminalJobState(job.state) && job.ended_ms.has_value();
    // Every full hour of runtime, while it runs (and for the hours a job ran before it ended).
    // A recorded final usage means every hour before it was looked at too (they are appended
    // first, in the same pass): the job's history is not walked again on every pass.
    const bool final_done = ended && recorded_.count(usageEventId(job.id, *job.ended_ms)) > 0;
    const int64_t end = ended ? *job.ended_ms : now;
    for (int64_t to = start + settings_.hour_ms; !final_done && to < end; to += settings_.hour_ms) {
      if (to + settings_.settle_ms > now) break;
      if (recorded_.count(usageEventId(job.id, to)) > 0) continue;
      if (auto s = appendUsage(job, start, to, false); !s) return s.error();
      ++appended;
    }
    if (ended && !final_done && *job.ended_ms + settings_.settle_ms <= now) {
      if (auto s = appendUsage(job, start, *job.ended_ms, true); !s) return s.error();
      ++appended;
    }
    if (!ended) {
      auto n = checkIdle(job, now);
      if (!n) return n.error();
      appended += *n;
    }
    auto rec = checkReconciled(job, now);
    if (!rec) return rec.error();
    appended += *rec;
  }
  auto n = checkUnaccounted(*jobs, now);
  if (!n) return n.error();
  auto b = checkIdleBilled(now);
  if (!b) return b.error();
  return appended + *n + *b;
}

// Planned versus observed per-GPU memory of a job that named its model: once ready (its first
// minutes), and again over its whole ready time once it ended.
Result<int> EvidenceRecorder::checkReconciled(const ledger::JobRow& job, int64_t now) {
  if (!job.ready_ms) return 0;
  const bool ended = ledger::isTerminalJobState(job.state) && job.ended_ms.has_value();
  struct Stage {
    const char* name;
    int64_t to;
  };
  std::vector<Stage> stages;
  const int64_t ready_to = *job.ready_ms + settings_.reconcile_after_ready_ms;
  stages.push_back({"ready", ended ? std::min(ready_to, *job.ended_ms) : ready_to});
  if (ended) stages.push_back({"end", *job.ended_ms});
  int appended = 0;
  for (const Stage& st : stages) {
    const std::string id = "reconciled:" + job.id + ":" + st.name;
    if (recorded_.count(id) > 0 || st.to + settings_.settle_ms > now) continue;
    auto it = predicted_.find(job.id);
    if (it == predicted_.end()) {
      auto placed = ledger_.read({0, 10, "job/" + job.id, proto::event::kJobPlaced});
      if (!placed) return placed.error();
      std::optional<bj::object> p;
      if (!placed->empty()) {
        boost::system::error_code ec;
        bj::value v = bj::parse(placed->front().data, ec);
        if (!ec && v.is_object()) {
          if (const bj::value* x = v.as_object().if_contains("predicted");
              x != nullptr && x->is_object()) {
            p = x->as_object();
          }
        }
      }
      it = predicted_.emplace(job.id, std::move(p)).first;
    }
    if (!it->second) return appended;  // the job named no model
    const bj::object& pred = *it->second;
    const bj::value* pv = pred.if_contains("per_gpu_bytes");
    if (pv == nullptr || !pv->is_number() || pv->to_number<double>() <= 0) return appended;
    const double predicted = pv->to_number<double>();
    const int64_t from = *job.ready_ms - *job.ready_ms % kMinute;
    // The job's own processes' memory where the agent reported it, else the whole GPU's: the
    // same figure, by the same rule, as the job's usage over the window.
    auto usage = series_.jobUsage(job.host_id, gpusOf(job), from, st.to, job.id);
    if (!usage) return usage.error();
    bj::array per_gpu;
    for (const auto& gv : usage->at("gpus").as_array()) {
      const auto& g = gv.as_object();
      if (!g.contains("mem_used_max_bytes")) continue;
      per_gpu.push_back(bj::object{{"gpu_uuid", g.at("gpu_uuid")},
                                   {"observed_bytes", g.at("mem_used_max_bytes")},
                                   {"memory_source", g.at("memory_source")}});
    }
    const std::optional<int64_t> observed =
        usage->contains("mem_used_max_bytes")
            ? std::optional<int64_t>(usage->at("mem_used_max_bytes").as_int64())
            : std::nullopt;
    if (!observed) continue;  // no memory samples: nothing to compare
    std::string engine;
    {
      boost::system::error_code ec;
      const bj::value spec = bj::parse(job.spec, ec);
      const bj::value* cmd =
          !ec && spec.is_object() ? spec.as_object().if_contains("command") : nullptr;
      if (cmd != nullptr && cmd->is_array() && !cmd->as_array().empty() &&
          cmd->as_array()[0].is_string()) {
        const std::string c(cmd->as_array()[0].as_string());
        engine = c.substr(c.find_last_of('/') + 1);
      }
    }
    const double err = (static_cast<double>(*observed) - predicted) / predicted;
    bj::object d{{"job_id", job.id},
                 {"host_id", job.host_id},
                 {"stage", st.name},
                 {"from_ms", from},
                 {"to_ms", st.to},
                 {"model", json::textOf(pred, "model")},
                 {"architecture", json::textOf(pred, "architecture")},
                 {"engine", engine},
                 {"predicted_per_gpu_bytes", static_cast<int64_t>(predicted)},
                 {"observed_per_gpu_bytes", *observed},
                 {"relative_error", std::round(err * 10000) / 10000},
                 {"memory_source", usage->at("memory_source")},
                 {"gpus", std::move(per_gpu)},
                 {"predicted", pred}};
    if (auto s = appendOnce("job/" + job.id, id, proto::event::kJobReconciled, std::move(d)); !s)
      return s.error();
    ++appended;
  }
  return appended;
}

Result<std::optional<bj::object>> EvidenceRecorder::idleWindow(const std::string& host,
                                                               const std::string& uuid,
                                                               int64_t from, int64_t to) {
  auto history = series_.gpuMinutes(host, uuid, to - settings_.baseline_window_ms, to);
  if (!history) return history.error();
  const auto baseline = idleBaseline(*history, settings_.idle_util_pct);
  if (!baseline) return std::optional<bj::object>();
  return idleEvidence(uuid, *history, *baseline, from, to, settings_);
}

// Every billed hour (cost.accrued) once settled: idle GPUs throughout make it rental.idle_billed.
Result<int> EvidenceRecorder::checkIdleBilled(int64_t now) {
  auto costs = eventsOfType(ledger_, proto::event::kCostAccrued, cost_cursor_);
  if (!costs) return costs.error();
  for (auto& e : *costs) {
    cost_cursor_ = e.seq;
    costs_pending_.push_back(std::move(e));
  }
  int appended = 0;
  std::vector<ledger::Event> later;
  for (auto& e : costs_pending_) {
    boost::system::error_code ec;
    const bj::value v = bj::parse(e.data, ec);
    if (ec || !v.is_object()) continue;
    const bj::object& d = v.as_object();
    const int64_t from = json::intOf(d, "from_ms"), to = json::intOf(d, "to_ms");
    if (to + settings_.settle_ms > now) {
      later.push_back(std::move(e));
      continue;
    }
    const std::string id = "idle-billed:" + e.id;
    const std::string host = json::textOf(d, "host_id");
    const std::string rental = json::textOf(d, "rental");
    if (recorded_.count(id) > 0 || host.empty() || rental.empty()) continue;
    auto gpus = ledger_.withReader([&](ledger::ReadView& view) { return view.listGpus(host); });
    if (!gpus) return gpus.error();
    if (gpus->empty()) continue;
    bj::array per_gpu;
    bool idle = true;
    for (const auto& g : *gpus) {
      auto w = idleWindow(host, g.uuid, from, to);
      if (!w) return w.error();
      if (!*w) {
        idle = false;
        break;
      }
      per_gpu.push_back(std::move(**w));
    }
    if (!idle) continue;
    bj::object out{
        {"rental", rental},   {"host_id", host},   {"from_ms", from},           {"to_ms", to},
        {"cost_event", e.id}, {"cost_seq", e.seq}, {"gpus", std::move(per_gpu)}};
    if (const bj::value* a = d.if_contains("amount_usd"); a != nullptr && a->is_number())
      out["amount_usd"] = a->to_number<double>();
    if (auto s =
            appendOnce("rental/" + rental, id, proto::event::kRentalIdleBilled, std::move(out));
        !s) {
      return s.error();
    }
    ++appended;
  }
  costs_pending_ = std::move(later);
  return appended;
}

Status EvidenceRecorder::appendOnce(const std::string& stream, const std::string& id,
                                    const char* type, bj::object data) {
  if (recorded_.count(id) > 0) return {};
  ledger::AppendRequest req;
  req.actor = "system";
  req.parts.push_back({stream, ledger::kAnyVersion, {{id, type, std::move(data)}}});
  auto r = ledger_.append(std::move(req));
  if (!r) return r.error();
  recorded_.insert(id);
  return {};
}

// A GPU's idle baseline over the baseline window before `at`, computed at most once an hour per
// GPU (every ready job's check needs it on every pass).
Result<std::optional<double>> EvidenceRecorder::cachedBaseline(const std::string& host,
                                                               const std::string& uuid,
                                                               int64_t at) {
  constexpr int64_t kRefresh = 3'600'000;
  auto& entry = baselines_[{host, uuid}];
  if (entry.first > 0 && at - entry.first < kRefresh) return entry.second;
  auto history = series_.gpuMinutes(host, uuid, at - settings_.baseline_window_ms, at);
  if (!history) return history.error();
  const auto baseline = idleBaseline(*history, settings_.idle_util_pct);
  // A GPU not yet seen idle is looked at again within minutes, not an hour.
  entry = {baseline ? at : at - kRefresh + 5 * kMinute, baseline};
  return entry.second;
}

// A ready job whose GPUs all sat idle through the last idle_after_ms (closed minutes only).
Result<int> EvidenceRecorder::checkIdle(const ledger::JobRow& job, int64_t now) {
  if (!job.ready_ms) return 0;
  const std::vector<std::string> gpus = gpusOf(job);
  if (gpus.empty()) return 0;
  const int64_t closed = now - now % kMinute;  // minutes before this one are complete
  const int64_t ready_minute = *job.ready_ms - *job.ready_ms % kMinute + kMinute;
  int64_t since = ready_minute;
  // Each GPU's trailing idle run; the job is idle since the latest of their starts.
  struct Gpu {
    const std::string& uuid;
    double baseline;
    std::vector<ledger::GpuMinute> minutes;
  };
  std::vector<Gpu> idle;
  for (const auto& uuid : gpus) {
    auto baseline = cachedBaseline(job.host_id, uuid, closed);
    if (!baseline) return baseline.error();
    if (!*baseline) return 0;
    // The run of idle minutes can start no earlier than the job became ready.
    auto minutes = series_.gpuMinutes(
        job.host_id, uuid, std::max(ready_minute, closed - settings_.baseline_window_ms), closed);
    if (!minutes) return minutes.error();
    if (minutes->empty() || minutes->back().bucket_ms != closed - kMinute) return 0;
    const auto first = idleSince(*minutes, **baseline, settings_);
    if (!first) return 0;
    since = std::max(since, *first);
    idle.push_back({uuid, **baseline, std::move(*minutes)});
  }
  // Every GPU's figures over the same run, [since, closed).
  bj::array per_gpu;
  for (const Gpu& g : idle) {
    auto e = idleEvidence(g.uuid, g.minutes, g.baseline, since, closed, settings_);
    if (!e) return 0;
    per_gpu.push_back(std::move(*e));
  }
  if (closed - since < settings_.idle_after_ms) return 0;
  bj::object d{{"job_id", job.id},
               {"host_id", job.host_id},
               {"ready_ms", *job.ready_ms},
               {"since_ms", since},
               {"checked_to_ms", closed},
               {"idle_minutes", (closed - since) / kMinute},
               {"idle_after_ms", settings_.idle_after_ms},
               {"idle_util_pct", settings_.idle_util_pct},
               {"gpus", std::move(per_gpu)}};
  const std::string id = "idle:" + job.id + ":" + std::to_string(since);
  if (recorded_.count(id) > 0) return 0;
  if (auto s = appendOnce("job/" + job.id, id, proto::event::kJobIdle, std::move(d)); !s)
    return s.error();
  return 1;
}

// Processes on GPUs that no active job holds, and, where the agent matched processes to its
// jobs, processes on a held GPU that are not the holding job's: once per GPU and set of them.
Result<int> EvidenceRecorder::checkUnaccounted(const std::vector<ledger::JobRow>& jobs,
                                               int64_t now) {
  if (!live_) return 0;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> held;
  for (const auto& j : jobs) {
    if (ledger::isTerminalJobState(j.state)) continue;
    for (const auto& g : gpusOf(j)) held[{j.host_id, g}].insert(j.id);
  }
  int appended = 0;
  for (const LiveGpu& g : live_()) {
    std::vector<LiveGpu::Process> procs;
    const auto h = held.find({g.host_id, g.uuid});
    if (h == held.end()) {
      procs = g.processes;
    } else if (g.processes_matched) {
      for (const auto& p : g.processes)
        if (h->second.count(p.job_id) == 0) procs.push_back(p);
    }
    if (procs.empty()) continue;
    std::sort(procs.begin(), procs.end(),
              [](const auto& a, const auto& b) { return a.pid < b.pid; });
    std::string key;
    bj::array list;
    int64_t memory = 0;
    for (const auto& p : procs) {
      key += std::to_string(p.pid) + ":" + p.name + (p.job_id.empty() ? "" : ":" + p.job_id) + "\n";
      bj::object o{{"pid", p.pid}, {"name", p.name}};
      if (!p.job_id.empty()) o["job"] = p.job_id;
      if (p.memory_bytes) {
        o["memory_bytes"] = *p.memory_bytes;
        memory += *p.memory_bytes;
      }
      list.push_back(std::move(o));
    }
    const std::string id = "unaccounted:" + g.host_id + ":" + g.uuid + ":" +
                           crypto::hex(crypto::sha256(key)).substr(0, 16);
    if (recorded_.count(id) > 0) continue;
    auto& seen = unaccounted_seen_.emplace(id, std::make_pair(now, now)).first->second;
    seen.second = now;
    const int64_t first = seen.first;
    if (now - first < settings_.unaccounted_after_ms) continue;
    bj::object d{{"host_id", g.host_id},         {"first_seen_ms", first},
                 {"gpu_uuid", g.uuid},           {"seen_ms", g.time_ms > 0 ? g.time_ms : now},
                 {"processes", std::move(list)}, {"processes_memory_bytes", memory}};
    if (g.util_pct) d["utilization_gpu_pct"] = *g.util_pct;
    if (h != held.end()) {
      bj::array by;
      for (const auto& j : h->second) by.emplace_back(j);
      d["held_by"] = std::move(by);
    }
    if (auto s =
            appendOnce("host/" + g.host_id, id, proto::event::kGpuUnaccountedUse, std::move(d));
        !s) {
      return s.error();
    }
    ++appended;
  }
  // Process sets not seen for a whole unaccounted_after_ms start over (a sampler that sees
  // them only now and then still counts as seeing them).
  std::erase_if(unaccounted_seen_, [&](const auto& kv) {
    return now - kv.second.second > settings_.unaccounted_after_ms;
  });
  return appended;
}

Status EvidenceRecorder::appendUsage(const ledger::JobRow& job, int64_t from_ms, int64_t to_ms,
                                     bool final) {
  auto usage =
      series_.jobUsage(job.host_id, gpusOf(job), from_ms, std::max(from_ms, to_ms), job.id);
  if (!usage) return usage.error();
  bj::object d = std::move(*usage);
  d["job_id"] = job.id;
  d["host_id"] = job.host_id;
  d["final"] = final;
  d["state"] = job.state;
  return appendOnce("job/" + job.id, usageEventId(job.id, to_ms), proto::event::kJobUsage,
                    std::move(d));
}

}  // namespace hwl::evidence
