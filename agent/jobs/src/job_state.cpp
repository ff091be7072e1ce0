// Job states and the persisted job record (see job_state.hpp).
#include "hwl/jobs/job_state.hpp"

#include <array>
#include <utility>

namespace hwl::jobs {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 8> kStates = {{
    {JobState::kAccepted, "accepted"},
    {JobState::kStarting, "starting"},
    {JobState::kRunning, "running"},
    {JobState::kReady, "ready"},
    {JobState::kExited, "exited"},
    {JobState::kFailed, "failed"},
    {JobState::kCancelled, "cancelled"},
    {JobState::kLost, "lost"},
}};

constexpr std::array<std::pair<StopReason, std::string_view>, 4> kReasons = {{
    {StopReason::kNone, ""},
    {StopReason::kCancel, "cancel"},
    {StopReason::kReadyTimeout, "ready_timeout"},
    {StopReason::kMaxRuntime, "max_runtime"},
}};

int64_t getInt(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_number()) return 0;
  boost::system::error_code ec;
  const auto n = v->to_number<int64_t>(ec);
  return ec ? 0 : n;
}

}  // namespace

std::string_view stateName(JobState state) {
  for (const auto& [s, n] : kStates) {
    if (s == state) return n;
  }
  return "unknown";
}

std::optional<JobState> parseState(std::string_view name) {
  for (const auto& [s, n] : kStates) {
    if (n == name) return s;
  }
  return std::nullopt;
}

bool isTerminal(JobState state) {
  return state == JobState::kExited || state == JobState::kFailed ||
         state == JobState::kCancelled || state == JobState::kLost;
}

std::string_view stopReasonName(StopReason reason) {
  for (const auto& [r, n] : kReasons) {
    if (r == reason) return n;
  }
  return "";
}

int64_t JobInfo::runtimeMs() const {
  if (started_ms == 0) return 0;
  return ended_ms > 0 ? ended_ms - started_ms : 0;
}

boost::json::object JobInfo::toJson() const {
  boost::json::object o{{"id", spec.id},
                        {"spec", spec.toJson()},
                        {"create_working_dir", spec.create_working_dir},
                        {"state", stateName(state)},
                        {"pid", pid},
                        {"proc_start_time", proc_start_time},
                        {"accepted_ms", accepted_ms},
                        {"started_ms", started_ms},
                        {"ready_ms", ready_ms},
                        {"ended_ms", ended_ms},
                        {"runtime_ms", runtimeMs()},
                        {"exit_status_known", exit_status_known},
                        {"adopted", adopted},
                        {"stop_reason", stopReasonName(stop_reason)},
                        {"reason", reason},
                        {"log_base", log_base},
                        {"last_event_seq", last_event_seq},
                        {"monitor_pid", monitor_pid},
                        {"monitor_start_time", monitor_start_time},
                        {"containment", containment}};
  boost::json::array cg;
  for (const auto& c : cgroups) cg.emplace_back(c);
  o["cgroups"] = std::move(cg);
  o["exit_code"] = exit_code ? boost::json::value(*exit_code) : boost::json::value(nullptr);
  o["signal"] = signal ? boost::json::value(*signal) : boost::json::value(nullptr);
  return o;
}

Result<JobInfo> JobInfo::fromJson(const boost::json::value& v,
                                  const std::filesystem::path& jobs_root) {
  if (!v.is_object()) return dataLoss("job record: not an object");
  const auto& o = v.as_object();
  const auto* spec = o.if_contains("spec");
  if (!spec || !spec->is_object()) return dataLoss("job record: no spec");
  std::vector<std::string> gpus;
  if (const auto* g = spec->as_object().if_contains("gpus"); g && g->is_array()) {
    for (const auto& u : g->as_array()) {
      if (u.is_string()) gpus.emplace_back(u.as_string());
    }
  }
  auto parsed = parseJobSpec(*spec, gpus, jobs_root);
  if (!parsed) return dataLoss("job record: " + parsed.error().message);
  JobInfo info;
  info.spec = std::move(*parsed);
  if (const auto* c = o.if_contains("create_working_dir"); c && c->is_bool()) {
    info.spec.create_working_dir = c->as_bool();
  }
  const auto* st = o.if_contains("state");
  auto state = st && st->is_string() ? parseState(st->as_string()) : std::nullopt;
  if (!state) return dataLoss("job record: bad state");
  info.state = *state;
  info.pid = static_cast<pid_t>(getInt(o, "pid"));
  info.proc_start_time = static_cast<uint64_t>(getInt(o, "proc_start_time"));
  info.accepted_ms = getInt(o, "accepted_ms");
  info.started_ms = getInt(o, "started_ms");
  info.ready_ms = getInt(o, "ready_ms");
  info.ended_ms = getInt(o, "ended_ms");
  if (const auto* e = o.if_contains("exit_code"); e && e->is_number()) {
    info.exit_code = static_cast<int32_t>(getInt(o, "exit_code"));
  }
  if (const auto* s = o.if_contains("signal"); s && s->is_number()) {
    info.signal = static_cast<int32_t>(getInt(o, "signal"));
  }
  if (const auto* k = o.if_contains("exit_status_known"); k && k->is_bool()) {
    info.exit_status_known = k->as_bool();
  }
  if (const auto* a = o.if_contains("adopted"); a && a->is_bool()) info.adopted = a->as_bool();
  if (const auto* r = o.if_contains("stop_reason"); r && r->is_string()) {
    for (auto candidate :
         {StopReason::kCancel, StopReason::kReadyTimeout, StopReason::kMaxRuntime}) {
      if (stopReasonName(candidate) == r->as_string()) info.stop_reason = candidate;
    }
  }
  if (const auto* r = o.if_contains("reason"); r && r->is_string()) {
    info.reason = std::string(r->as_string());
  }
  info.log_base = static_cast<uint64_t>(getInt(o, "log_base"));
  info.last_event_seq = static_cast<uint64_t>(getInt(o, "last_event_seq"));
  info.monitor_pid = static_cast<pid_t>(getInt(o, "monitor_pid"));
  info.monitor_start_time = static_cast<uint64_t>(getInt(o, "monitor_start_time"));
  if (const auto* c = o.if_contains("containment"); c && c->is_string()) {
    info.containment = std::string(c->as_string());
  }
  if (const auto* c = o.if_contains("cgroups"); c && c->is_array()) {
    for (const auto& d : c->as_array()) {
      // Only absolute paths under the cgroup file system are ever written here.
      if (d.is_string() && d.as_string().starts_with("/sys/fs/cgroup/") &&
          d.as_string().find("/../") == boost::json::string::npos)
        info.cgroups.emplace_back(d.as_string());
    }
  }
  return info;
}

}  // namespace hwl::jobs
