// Following the jobs of agentless hosts into the ledger (see ssh_jobs.hpp).
#include "agentless/ssh_jobs.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <map>

#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"
#include "hwl/proto/job_spec.hpp"
#include "hwl/proto/types.hpp"

namespace hwl::agentless {

namespace bj = boost::json;
namespace ev = proto::event;
using proto::JobState;

namespace {

std::string stateName(JobState s) { return std::string(proto::toString(s)); }

// The log's tail as text: not starting inside a UTF-8 sequence, every byte valid.
std::string logText(const std::string& raw) {
  size_t skip = 0;
  while (skip < raw.size() && skip < 4 && (static_cast<unsigned char>(raw[skip]) & 0xC0) == 0x80)
    ++skip;
  return json::validUtf8(std::string_view(raw).substr(skip));
}

bool hasStarted(const std::string& state) {
  return state == proto::toString(JobState::kAccepted) ||
         state == proto::toString(JobState::kRunning) || state == proto::toString(JobState::kReady);
}

bj::object base(const ledger::JobRow& row, const std::string& host_id, const RemoteJob& r) {
  bj::object d{{"job_id", row.id}, {"host_id", host_id}};
  if (r.pid) d["pid"] = *r.pid;
  return d;
}

ledger::NewEvent lost(const ledger::JobRow& row, const std::string& host_id, const RemoteJob& r,
                      int64_t now_ms, const std::string& reason) {
  bj::object d = base(row, host_id, r);
  d["state"] = stateName(JobState::kLost);
  if (r.started_ms) d["started_ms"] = *r.started_ms;
  d["ended_ms"] = now_ms;
  d["reason"] = reason;
  return {row.id + ":end", ev::kJobLost, std::move(d)};
}

}  // namespace

JobEnd endOf(const RemoteJob& r) {
  if (r.stop_reason == "cancel")
    return {ev::kJobCancelled, stateName(JobState::kCancelled), "cancelled"};
  if (r.stop_reason == "max_runtime")
    return {ev::kJobFailed, stateName(JobState::kFailed), "max_runtime_s exceeded"};
  if (r.stop_reason == "ready_timeout")
    return {ev::kJobFailed, stateName(JobState::kFailed),
            "ready_url did not answer 2xx within ready_timeout_s"};
  if (!r.status)  // stopped before it ran, for a reason this server does not know
    return {ev::kJobFailed, stateName(JobState::kFailed),
            "stopped before it ran (" + r.stop_reason + ")"};
  // As on agent hosts: a job that ran to its end exited, whatever its code or signal (both are
  // in the event); failed is for what stopped it from outside (limits, a lost wrapper).
  return {ev::kJobExited, stateName(JobState::kExited), ""};
}

std::vector<ledger::NewEvent> jobEvents(const ledger::JobRow& row, const RemoteJob& r,
                                        const std::string& host_id, int64_t now_ms,
                                        const SshJobSettings& settings) {
  std::vector<ledger::NewEvent> out;
  const bool started = hasStarted(row.state);
  // A launch that gave no answer in time (dispatch_failed) may still have started the job: the
  // host's report then wins, as an agent's does. Only a job that runs or ran is reported then.
  const bool unanswered = row.state == proto::toString(JobState::kDispatchFailed);
  if (unanswered && !(r.dir && r.pid)) return out;
  const bool placed = row.state == proto::toString(JobState::kPlaced) || unanswered;
  if (!started && !placed) return out;  // ended, or not on a host yet
  if (!r.dir) {
    // A placed job's launch may still be on its way (or recovery will make it).
    if (started) out.push_back(lost(row, host_id, r, now_ms, "its job directory is gone"));
    return out;
  }
  if (!r.has_exit) {
    if (r.boot == RemoteJob::Boot::kOther) {
      out.push_back(lost(row, host_id, r, now_ms, "the host restarted after the job's launch"));
      return out;
    }
    if (r.pid && !r.alive) {
      out.push_back(lost(row, host_id, r, now_ms,
                         "its wrapper (pid " + std::to_string(*r.pid) +
                             ") ended without recording an exit status"));
      return out;
    }
    if (!r.pid) {
      const auto limit = settings.start_timeout.count();
      if (r.launched_ms && now_ms - *r.launched_ms > limit)
        out.push_back(lost(row, host_id, r, now_ms,
                           "its wrapper did not start within " + std::to_string(limit / 1000) +
                               " s of the launch"));
      return out;
    }
  }
  // The command ran (or runs): started, then ready, then the end, each once.
  const bool ran = r.pid && (!r.has_exit || r.status.has_value());
  if (placed && ran) {
    bj::object d = base(row, host_id, r);
    d["state"] = stateName(JobState::kRunning);
    if (r.started_ms) d["started_ms"] = *r.started_ms;
    if (auto spec = json::parseObject(row.spec)) d["spec"] = std::move(*spec);
    out.push_back({row.id + ":started", ev::kJobStarted, std::move(d)});
  }
  if (ran && r.ready_ms && !row.ready_ms && row.state != proto::toString(JobState::kReady)) {
    bj::object d = base(row, host_id, r);
    d["state"] = stateName(JobState::kReady);
    d["ready_ms"] = *r.ready_ms;
    out.push_back({row.id + ":ready", ev::kJobReady, std::move(d)});
  }
  if (!r.has_exit) return out;
  // The wrapper kills what the job left in its group right after writing the exit: the end is
  // recorded once the group is gone (or after group_wait).
  if (r.group_alive && r.ended_ms && now_ms - *r.ended_ms < settings.group_wait.count()) return out;
  const JobEnd end = endOf(r);
  bj::object d = base(row, host_id, r);
  d["state"] = end.state;
  if (r.started_ms && ran) d["started_ms"] = *r.started_ms;
  d["ended_ms"] = r.ended_ms.value_or(now_ms);
  if (auto c = r.exitCode()) d["exit_code"] = *c;
  if (auto s = r.signal()) d["signal"] = *s;
  if (!end.reason.empty()) d["reason"] = end.reason;
  if (end.type != ev::kJobCancelled) d["log_tail"] = logText(r.log_tail.value_or(""));
  out.push_back({row.id + ":end", end.type, std::move(d)});
  return out;
}

bool SshJobTracker::poll(const std::string& host_id, const SshTarget& target) {
  struct Active {
    ledger::JobRow row;
    int64_t version = 0;
  };
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  // Each job's state with its stream's version, read together: an append made since (a cancel
  // that ended it here, a dispatch failure) makes this poll's append for it fail.
  auto active = ledger_.withSnapshot([&](ledger::ReadView& view) -> Result<std::vector<Active>> {
    auto jobs = view.listJobs(host_id);
    if (!jobs) return jobs.error();
    std::vector<Active> out;
    for (auto& j : *jobs) {
      const bool recent_failure = j.state == proto::toString(JobState::kDispatchFailed) &&
                                  j.ended_ms &&
                                  *j.ended_ms > now_ms - settings_.unanswered_window.count();
      if (!hasStarted(j.state) && j.state != proto::toString(JobState::kPlaced) && !recent_failure)
        continue;
      auto v = view.streamVersion(std::string(proto::stream::kJobPrefix) + j.id);
      if (!v) return v.error();
      out.push_back({std::move(j), *v});
    }
    return out;
  });
  if (!active) {
    spdlog::warn("ssh host {}: jobs: {}", host_id, active.error().message);
    return true;
  }
  if (active->empty()) return false;

  std::vector<PollEntry> entries;
  for (const auto& a : *active) {
    PollEntry e{a.row.id, "", 0, 10'000};
    auto spec = json::parseObject(a.row.spec);
    if (spec) {
      std::vector<std::string> gpus;
      if (const auto* g = spec->if_contains("gpus"); g && g->is_array())
        for (const auto& u : g->as_array())
          if (u.is_string()) gpus.emplace_back(u.as_string());
      if (auto js = proto::parseJobSpec(*spec, gpus, "/")) {
        e.grace_ms = js->grace_ms;
        if (js->ready_url && !a.row.ready_ms && a.row.state != proto::toString(JobState::kReady)) {
          e.ready_url = js->ready_url->text;
          e.ready_timeout_ms = js->ready_timeout_ms;
        }
      }
    }
    entries.push_back(std::move(e));
  }
  const std::string nonce = newNonce();
  auto cmd = pollCommand(settings_.job_root, nonce, entries);
  if (!cmd) {
    spdlog::error("ssh host {}: jobs: {}", host_id, cmd.error().message);
    return true;
  }
  Result<PollResult> polled = unavailable("not polled");
  Status st = pool_.with(host_id, target, [&](ssh::SshSession& s) -> Status {
    // Each job's log tail at most, and the lines around it.
    const size_t limit = entries.size() * (kLogTailBytes + 4096) + 65536;
    auto r = s.exec(*cmd, settings_.command_timeout, limit);
    if (!r) return r.error();
    polled = parsePollOutput(r->out, nonce);
    if (!polled) return polled.error();
    return {};
  });
  if (!st) {
    spdlog::debug("ssh host {}: jobs not read: {}", host_id, st.error().message);
    return true;
  }
  for (const auto& a : *active) {
    auto it = polled->jobs.find(a.row.id);
    if (it == polled->jobs.end()) continue;
    auto events = jobEvents(a.row, it->second, host_id, polled->now_ms, settings_);
    if (events.empty()) continue;
    ledger::AppendRequest req;
    req.actor = "system";
    req.parts.push_back(
        {std::string(proto::stream::kJobPrefix) + a.row.id, a.version, std::move(events)});
    auto r = ledger_.append(std::move(req));
    if (!r) {
      // A conflict: the job moved since it was read (or this was recorded by another poll);
      // the next poll reads it again.
      if (r.error().code == Code::kConflict)
        spdlog::debug("ssh job {}: {}", a.row.id, r.error().message);
      else
        spdlog::warn("ssh job {}: {}", a.row.id, r.error().message);
    }
  }
  return true;
}

}  // namespace hwl::agentless
