// The Driver of agentless hosts (see ssh_driver.hpp).
#include "agentless/ssh_driver.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <stop_token>
#include <thread>

#include "hwl/json.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ssh/ssh_errors.hpp"

namespace hwl::agentless {

namespace bj = boost::json;
using dispatch::CancelResult;
using dispatch::LaunchResult;
using dispatch::LogResult;

namespace {

constexpr int kNoSuchJob = 3;  // the scripts' exit status for a job directory that is not there

std::string firstLines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.size() > 300) s.resize(300);
  return s;
}

// One exec on a session to the host.
Status execOn(SessionPool& pool, const std::string& host_id, const SshTarget& target,
              const std::string& cmd, std::chrono::milliseconds timeout, ssh::ExecResult& out) {
  return pool.with(host_id, target, [&](ssh::SshSession& s) -> Status {
    auto r = s.exec(cmd, timeout);
    if (!r) return r.error();
    out = std::move(*r);
    return {};
  });
}

}  // namespace

bj::object remoteJobJson(const std::string& job_id, const RemoteJob& r) {
  std::string state;
  if (r.has_exit)
    state = endOf(r).state;
  else if (r.boot == RemoteJob::Boot::kOther || (r.pid && !r.alive))
    state = "lost";
  else if (r.pid)
    state = r.ready_ms ? "ready" : "running";
  else
    state = "starting";
  bj::object o{{"id", job_id}, {"state", state}};
  if (r.pid) o["pid"] = *r.pid;
  if (r.started_ms) o["started_ms"] = *r.started_ms;
  if (r.ready_ms) o["ready_ms"] = *r.ready_ms;
  if (r.ended_ms) o["ended_ms"] = *r.ended_ms;
  if (auto c = r.exitCode()) o["exit_code"] = *c;
  if (auto s = r.signal()) o["signal"] = *s;
  if (!r.stop_reason.empty()) o["stop"] = r.stop_reason;
  return o;
}

Result<SshTarget> SshDriver::targetOf(const dispatch::HostTarget& host) {
  auto row = ledger_.withReader([&](ledger::ReadView& v) { return v.findHost(host.id.str()); });
  if (!row) return row.error();
  if (!*row) return notFound("no host " + host.id.str());
  auto o = json::parseObject((**row).ssh);
  if (!o)
    return Error{Code::kFailedPrecondition,
                 "host " + host.id.str() + " has no SSH connection recorded"};
  return sshTargetFromJson(*o);
}

LaunchResult SshDriver::launch(const dispatch::HostTarget& host, const dispatch::LaunchSpec& job) {
  auto target = targetOf(host);
  if (!target) return {LaunchResult::Outcome::kRefused, target.error().message};
  auto plan = launchPlan(job);
  if (!plan) return {LaunchResult::Outcome::kRefused, "the spec: " + plan.error().message};
  auto cmd = launchCommand(settings_.job_root, *plan);
  if (!cmd) return {LaunchResult::Outcome::kRefused, cmd.error().message};
  ssh::ExecResult res;
  Status st = execOn(pool_, host.id.str(), *target, *cmd, settings_.command_timeout, res);
  if (!st) {
    // A host showing another key will not be reached: a verdict. Anything else (no connection,
    // a timeout while the launch may have gone through) is no answer.
    if (ssh::reason::is(st.error(), ssh::reason::kHostKeyMismatch))
      return {LaunchResult::Outcome::kRefused, st.error().message};
    // The tracker looks for it anyway: a launch that went through reports the job after all.
    wake(host.id.str());
    return {LaunchResult::Outcome::kNoAnswer, "over SSH: " + st.error().message};
  }
  if (res.exit_status != 0)
    return {LaunchResult::Outcome::kRefused,
            "the host could not start it (status " + std::to_string(res.exit_status) +
                "): " + firstLines(res.err.empty() ? res.out : res.err)};
  auto answer = parseLaunchOutput(res.out);
  if (!answer) return {LaunchResult::Outcome::kNoAnswer, answer.error().message};
  if (*answer == LaunchAnswer::kExists)
    spdlog::info("job {}: already launched on {}", job.id.str(), host.id.str());
  wake(host.id.str());
  return {LaunchResult::Outcome::kAccepted, ""};
}

Result<bj::object> SshDriver::status(const dispatch::HostTarget& host, const proto::JobId& job) {
  auto target = targetOf(host);
  if (!target) return target.error();
  const std::string nonce = newNonce();
  // No ready_url: a status read changes nothing on the host.
  auto cmd = pollCommand(settings_.job_root, nonce, {{job.str(), "", 0, 0}});
  if (!cmd) return cmd.error();
  ssh::ExecResult res;
  if (auto st = execOn(pool_, host.id.str(), *target, *cmd, settings_.command_timeout, res); !st)
    return unavailable("ssh host " + host.id.str() + ": " + st.error().message);
  auto polled = parsePollOutput(res.out, nonce);
  if (!polled) return badGateway("ssh_job_poll", polled.error().message);
  auto it = polled->jobs.find(job.str());
  if (it == polled->jobs.end() || !it->second.dir)
    return notFound("ssh host " + host.id.str() + " has no job " + job.str());
  return remoteJobJson(job.str(), it->second);
}

Result<LogResult> SshDriver::logs(const dispatch::HostTarget& host, const proto::JobId& job,
                                  dispatch::LogRequest req, const dispatch::LogSink& sink,
                                  const dispatch::Cancelled& cancelled) {
  auto target = targetOf(host);
  if (!target) return target.error();
  auto cmd = logsCommand(settings_.job_root, job.str(), req.tail, req.follow);
  if (!cmd) return cmd.error();
  const std::string no_job = "ssh host " + host.id.str() + " has no job " + job.str();
  if (!req.follow) {
    ssh::ExecResult res;
    if (auto st = execOn(pool_, host.id.str(), *target, *cmd, settings_.command_timeout, res); !st)
      return unavailable("ssh host " + host.id.str() + ": " + st.error().message);
    if (res.exit_status == kNoSuchJob) return notFound(no_job);
    if (res.exit_status != 0)
      return badGateway("ssh_logs", "tail on the host: " + firstLines(res.err));
    return LogResult{200, std::move(res.out)};
  }
  // Followed: the reader leaving (checked every 200 ms) or the sink refusing closes the channel;
  // the remote tail then ends at its next write or with the job (tail --pid).
  std::stop_source stop;
  std::jthread watcher([&](const std::stop_token& done) {
    while (!done.stop_requested()) {
      if (cancelled && cancelled()) {
        stop.request_stop();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  int status = 0;
  Status st = pool_.with(host.id.str(), *target, [&](ssh::SshSession& s) -> Status {
    auto r = s.execStream(*cmd,
                          [&](ssh::Stream stream, std::string_view chunk) {
                            if (stream != ssh::Stream::kStdout) return true;
                            return sink(chunk);
                          },
                          {.timeout = std::chrono::milliseconds(0), .stop = stop.get_token()});
    if (!r) return r.error();
    status = r->exit_status;
    return {};
  });
  watcher.request_stop();
  if (!st) return unavailable("ssh host " + host.id.str() + ": " + st.error().message);
  if (status == kNoSuchJob) return notFound(no_job);
  return LogResult{200, {}};
}

Result<CancelResult> SshDriver::cancel(const dispatch::HostTarget& host, const proto::JobId& job) {
  auto target = targetOf(host);
  if (!target) return target.error();
  // The grace period is the job's own (the spec as placed).
  int64_t grace_ms = 10'000;
  auto row = ledger_.withReader([&](ledger::ReadView& v) { return v.findJob(job.str()); });
  if (row && *row) {
    if (auto spec = json::parseObject((**row).spec)) {
      std::vector<std::string> gpus;
      if (const auto* g = spec->if_contains("gpus"); g && g->is_array())
        for (const auto& u : g->as_array())
          if (u.is_string()) gpus.emplace_back(u.as_string());
      if (auto js = proto::parseJobSpec(*spec, gpus, "/")) grace_ms = js->grace_ms;
    }
  }
  auto cmd = cancelCommand(settings_.job_root, job.str(), grace_ms);
  if (!cmd) return cmd.error();
  ssh::ExecResult res;
  if (auto st = execOn(pool_, host.id.str(), *target, *cmd, settings_.command_timeout, res); !st)
    return unavailable("ssh host " + host.id.str() + ": " + st.error().message);
  if (res.exit_status != 0)
    return badGateway("ssh_cancel", "cancel on the host (status " +
                                        std::to_string(res.exit_status) +
                                        "): " + firstLines(res.err));
  std::string out = firstLines(res.out);
  if (auto nl = out.rfind('\n'); nl != std::string::npos) out = out.substr(nl + 1);
  if (out == "unknown") return CancelResult{CancelResult::Outcome::kUnknownJob};
  if (out != "cancelling" && out != "ended")
    return badGateway("ssh_cancel", "unexpected answer from the cancel: \"" + out + "\"");
  wake(host.id.str());
  return CancelResult{CancelResult::Outcome::kCancelling};
}

}  // namespace hwl::agentless
