#include "agentless/ssh_source.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "agentless/remote_probe.hpp"
#include "hwl/json.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/proto/events.hpp"
#include "ssh/ssh_errors.hpp"

namespace hwl::agentless {

namespace bj = boost::json;
using Clock = std::chrono::steady_clock;

ledger::AppendRequest hostKeyMismatchEvent(const std::string& host_id, const std::string& address,
                                           const Error& refusal) {
  std::string presented;
  if (auto d = json::parseObject(refusal.details)) {
    if (auto it = d->find("presented_fingerprint"); it != d->end() && it->value().is_string())
      presented = std::string(it->value().get_string());
  }
  ledger::AppendRequest req;
  req.actor = "system";
  bj::object data{{"host_id", host_id},
                  {"address", address},
                  {"presented_fingerprint", presented},
                  {"error", refusal.message}};
  // Before enrollment the host has no id: the ledger's own stream then.
  const std::string stream = host_id.empty() ? "ledger" : "host/" + host_id;
  const std::string who = host_id.empty() ? address : host_id;
  req.parts.push_back(
      {stream,
       ledger::kAnyVersion,
       {{"sshkey:" + who + ":" + presented, proto::event::kSshHostKeyMismatch, std::move(data)}}});
  return req;
}

namespace {

struct Host {
  std::string id;
  std::string address;
  std::string ssh;  // the projection's JSON, to notice a change
  SshTarget target;
  Clock::time_point next_poll;
  Clock::time_point next_jobs;
  bool jobs = true;       // follow jobs until the tracker says there are none
  uint64_t jobs_gen = 0;  // counts jobsChanged calls: one during a poll keeps the jobs followed
  bool busy = false;
  bool dropped = false;
  std::optional<probes::CpuTimes> cpu;
  std::optional<std::string> inventory;  // canonical JSON of the GPUs last known
};

std::string inventoryKey(const bj::array& gpus) { return json::canonical(gpus); }

}  // namespace

struct SshSource::Impl {
  collect::HostSink& sink;
  ledger::Ledger& ledger;
  SessionPool& pool;
  SshSourceSettings settings;
  JobPoller jobs;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::shared_ptr<Host>> hosts;
  std::vector<std::thread> threads;
  bool stopping = false;

  Impl(collect::HostSink& s, ledger::Ledger& l, SessionPool& p, SshSourceSettings st, JobPoller j)
      : sink(s), ledger(l), pool(p), settings(st), jobs(std::move(j)) {}

  void start() {
    for (int i = 0; i < std::max(1, settings.threads); ++i)
      threads.emplace_back([this] { work(); });
  }

  // The host whose next call is due first, if it is due.
  std::shared_ptr<Host> due(Clock::time_point now, Clock::time_point& wake, bool& poll) {
    std::shared_ptr<Host> best;
    Clock::time_point best_at = Clock::time_point::max();
    for (auto& [id, h] : hosts) {
      if (h->busy) continue;
      auto at = h->next_poll;
      bool p = true;
      if (h->jobs && jobs && h->next_jobs < at) {
        at = h->next_jobs;
        p = false;
      }
      if (at < best_at) {
        best_at = at;
        best = h;
        poll = p;
      }
    }
    if (best && best_at <= now) return best;
    wake = best_at;
    return nullptr;
  }

  void work() {
    std::unique_lock lk(mu);
    while (!stopping) {
      Clock::time_point wake = Clock::time_point::max();
      bool poll = true;
      auto h = due(Clock::now(), wake, poll);
      if (!h) {
        if (wake == Clock::time_point::max())
          cv.wait(lk);
        else
          cv.wait_until(lk, wake);
        continue;
      }
      h->busy = true;
      lk.unlock();
      if (poll)
        pollHost(*h);
      else
        pollJobs(*h);
      lk.lock();
      h->busy = false;
      const auto now = Clock::now();
      if (poll)
        h->next_poll = now + settings.poll_interval;
      else
        h->next_jobs = now + settings.job_interval;
      cv.notify_all();
    }
  }

  void pollJobs(Host& h) {
    uint64_t gen = 0;
    {
      std::lock_guard lk(mu);
      gen = h.jobs_gen;
    }
    bool more = jobs(h.id, h.target);
    std::lock_guard lk(mu);
    // A job placed while this poll ran (its "none" may predate it) is followed all the same.
    h.jobs = more || h.jobs_gen != gen;
  }

  void pollHost(Host& h) {
    const auto t0 = Clock::now();
    Result<Probed> probed = unavailable("not polled");
    Status st = pool.with(h.id, h.target, [&](ssh::SshSession& s) -> Status {
      probed = probeHost(s, settings.probe_timeout, h.cpu);
      if (!probed) return probed.error();
      return {};
    });
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    // One line per poll at debug level, for benchmarks and diagnosis (the collector keeps only
    // percentiles over its whole window).
    spdlog::debug("ssh host {}: poll {} in {:.2f} ms", h.id, st ? "ok" : "failed", ms);
    {
      // Revoked (or re-followed) while this poll ran: what it saw is no longer this host's.
      std::lock_guard lk(mu);
      if (h.dropped) return;
    }
    if (!st) {
      if (ssh::reason::is(st.error(), ssh::reason::kHostKeyMismatch)) {
        spdlog::warn("ssh host {}: {}", h.id, st.error().message);
        if (auto r = ledger.append(hostKeyMismatchEvent(h.id, h.address, st.error())); !r)
          spdlog::warn("ssh host {}: {}", h.id, r.error().message);
      }
      sink.observed(h.id, false, st.error().message, ms);
      return;
    }
    sink.observed(h.id, true, "", ms);
    h.cpu = probed->cpu;
    checkInventory(h, probed->sample);
    sink.telemetry(h.id, probes::toJson(probed->sample));
  }

  // The GPU set the ledger has for the host, then the one each poll sees: a change is recorded.
  void checkInventory(Host& h, const probes::Sample& sample) {
    bj::array now = inventoryOf(sample);
    if (!h.inventory) {
      auto gpus = ledger.withReader([&](ledger::ReadView& v) { return v.listGpus(h.id); });
      if (!gpus) return;
      bj::array known;
      for (const auto& g : *gpus) {
        bj::object o{{"uuid", g.uuid}, {"name", g.name}, {"index", g.index}};
        if (g.memory_total_bytes) o["memory_total_bytes"] = *g.memory_total_bytes;
        if (!g.driver_version.empty()) o["driver_version"] = g.driver_version;
        known.push_back(std::move(o));
      }
      h.inventory = inventoryKey(known);
    }
    if (inventoryKey(now) == *h.inventory) return;
    auto before = json::parse(*h.inventory);
    std::map<std::string, bj::object> old_by, new_by;
    if (before && before->is_array())
      for (const auto& g : before->get_array())
        if (g.is_object())
          old_by[std::string(g.get_object().at("uuid").as_string())] = g.get_object();
    for (const auto& g : now)
      new_by[std::string(g.get_object().at("uuid").as_string())] = g.get_object();
    bj::array added, removed, changed;
    for (const auto& [u, g] : new_by) {
      auto it = old_by.find(u);
      if (it == old_by.end())
        added.push_back(bj::value(u));
      else if (json::canonical(it->second) != json::canonical(g))
        changed.push_back(bj::value(u));
    }
    for (const auto& [u, g] : old_by)
      if (new_by.count(u) == 0) removed.push_back(bj::value(u));
    ledger::AppendRequest req;
    req.actor = "system";
    req.parts.push_back({"host/" + h.id,
                         ledger::kAnyVersion,
                         {{"", proto::event::kHostInventoryChanged,
                           bj::object{{"host_id", h.id},
                                      {"added", added},
                                      {"removed", removed},
                                      {"changed", changed},
                                      {"gpus", now}}}}});
    if (auto r = ledger.append(std::move(req)); !r) {
      spdlog::warn("ssh host {}: {}", h.id, r.error().message);
      return;
    }
    h.inventory = inventoryKey(now);
  }
};

SshSource::SshSource(collect::HostSink& sink, ledger::Ledger& ledger, SessionPool& pool,
                     SshSourceSettings settings, JobPoller jobs)
    : impl_(std::make_unique<Impl>(sink, ledger, pool, settings, std::move(jobs))) {
  impl_->start();
}

SshSource::~SshSource() { stopAll(); }

bool SshSource::follows(const ledger::HostRow& host) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->hosts.find(host.id);
  return it != impl_->hosts.end() && it->second->address == host.address &&
         it->second->ssh == host.ssh;
}

void SshSource::follow(const ledger::HostRow& host, int64_t /*cursor*/) {
  auto o = json::parseObject(host.ssh);
  if (!o) {
    spdlog::warn("ssh host {}: no connection recorded", host.id);
    return;
  }
  auto target = sshTargetFromJson(*o);
  if (!target) {
    spdlog::warn("ssh host {}: {}", host.id, target.error().message);
    return;
  }
  auto h = std::make_shared<Host>();
  h->id = host.id;
  h->address = host.address;
  h->ssh = host.ssh;
  h->target = std::move(*target);
  h->next_poll = Clock::now();
  h->next_jobs = Clock::now();
  impl_->sink.following(host);
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->stopping) return;
    if (auto it = impl_->hosts.find(host.id); it != impl_->hosts.end()) it->second->dropped = true;
    impl_->hosts[host.id] = h;
  }
  impl_->pool.drop(host.id);
  impl_->cv.notify_all();
}

void SshSource::drop(const std::string& host_id) {
  {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->hosts.find(host_id);
    if (it == impl_->hosts.end()) return;
    it->second->dropped = true;
    impl_->hosts.erase(it);
  }
  impl_->pool.drop(host_id);
  impl_->sink.forget(host_id);
}

void SshSource::jobsChanged(const std::string& host_id) {
  {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->hosts.find(host_id);
    if (it == impl_->hosts.end()) return;
    it->second->jobs = true;
    ++it->second->jobs_gen;
    it->second->next_jobs = Clock::now();
  }
  impl_->cv.notify_all();
}

void SshSource::stopAll() {
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->stopping && impl_->threads.empty()) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
  impl_->pool.clear();
}

}  // namespace hwl::agentless
