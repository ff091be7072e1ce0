// The host's side of jobs on agentless hosts (see ssh_job_scripts.hpp).
#include "agentless/ssh_job_scripts.hpp"

#include <boost/json.hpp>
#include <charconv>

#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ssh/shell_quote.hpp"

namespace hwl::agentless {

namespace bj = boost::json;

namespace {

// Shared by every script: C locale (byte lengths), the host's clock in ms (GNU date; elsewhere
// whole seconds) and the job root with a leading "~" resolved against the remote user's HOME.
constexpr std::string_view kPrelude = R"SH(export LC_ALL=C
now_ms() { t=$(date +%s%3N 2>/dev/null); case $t in ''|*[!0-9]*) t=$(date +%s)000 ;; esac; printf '%s\n' "$t"; }
root_of() { case $1 in '~') printf '%s\n' "$HOME" ;; '~/'*) printf '%s/%s\n' "$HOME" "${1#'~/'}" ;; *) printf '%s\n' "$1" ;; esac; }
)SH";

// The job's wrapper, a session leader: d wd max_runtime_ms grace_ms STOPPER nenv NAME=VALUE...
// argv... It records its pid before it looks for a stop (a stopper records the stop before it
// reads the pid), so a cancel that comes before the command runs is never missed. TERM is caught
// (a handler, so the command gets the default action back) and only ends the command: the exit is
// still written. A command that is a shell builtin's name is run as a program (exec).
constexpr std::string_view kWrapper = R"SH(d=$1 wd=$2 maxrt=$3 grace=$4 S=$5 nenv=$6
shift 6
trap 'hwl_term=1' TERM
put() { printf '%s\n' "$2" > "$d/$1.tmp" && mv -f "$d/$1.tmp" "$d/$1"; }
put started_ms "$(now_ms)"
put pid "$$"
if [ -f "$d/stop" ]; then put exit "none $(now_ms)"; exit 0; fi
i=0
while [ "$i" -lt "$nenv" ]; do export "$1"; shift; i=$((i + 1)); done
exec </dev/null >>"$d/log" 2>&1
rc=1
case $wd in
  '') wd=$d/work; mkdir -p "$wd" ;;
  /*) ;;
  *) wd=$d/work/$wd; mkdir -p "$wd" ;;
esac
if cd "$wd"; then
  timer=
  if [ "$maxrt" -gt 0 ]; then
    setsid sh -c "$S" hwl-stop "$d" "$maxrt" "$grace" max_runtime </dev/null >/dev/null 2>&1 &
    timer=$!
  fi
  sh -c 'exec "$@"' "$1" "$@"
  rc=$?
  if [ -n "$timer" ]; then kill -TERM -"$timer" 2>/dev/null || kill -TERM "$timer" 2>/dev/null; fi
else
  printf 'hwledger: cannot enter the working directory %s\n' "$wd"
fi
put exit "$rc $(now_ms)"
kill -KILL -"$$" 2>/dev/null
)SH";

// The stopper, in a session of its own: d delay_ms grace_ms reason. After the delay, unless the
// job has ended: records the stop (the first reason stays), SIGTERM to the job's process group,
// SIGKILL to what is left after the grace period; a wrapper that had to be killed wrote no exit,
// so the stopper writes 137 (128 + SIGKILL) for it.
constexpr std::string_view kStopper = R"SH(d=$1 delay=$2 grace=$3 why=$4
if [ "$delay" -gt 0 ]; then sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"; fi
[ -f "$d/exit" ] && exit 0
(set -C; printf '%s %s\n' "$why" "$(now_ms)" > "$d/stop") 2>/dev/null
pid=$(cat "$d/pid" 2>/dev/null)
case $pid in ''|*[!0-9]*) exit 0 ;; esac
kill -TERM -"$pid" 2>/dev/null
n=$(((grace + 199) / 200))
while [ "$n" -gt 0 ] && kill -0 -"$pid" 2>/dev/null; do sleep 0.2; n=$((n - 1)); done
if kill -0 -"$pid" 2>/dev/null; then
  kill -KILL -"$pid" 2>/dev/null
  sleep 0.2
  if [ ! -f "$d/exit" ]; then
    printf '137 %s\n' "$(now_ms)" > "$d/exit.stop" && mv -f "$d/exit.stop" "$d/exit"
  fi
fi
)SH";

// root id WRAPPER STOPPER wd max_runtime_ms grace_ms spec nenv NAME=VALUE... argv...
constexpr std::string_view kLaunch =
    R"SH(root=$(root_of "$1") id=$2 W=$3 S=$4 wd=$5 maxrt=$6 grace=$7 spec=$8
shift 8
if ! command -v setsid >/dev/null 2>&1; then
  echo 'setsid (util-linux) is not installed on this host' >&2; exit 4
fi
if ! (umask 077; mkdir -p "$root"); then printf 'cannot create the job root %s\n' "$root" >&2; exit 3; fi
d=$root/$id
if ! (umask 077; mkdir "$d") 2>/dev/null; then
  if [ -d "$d" ]; then echo exists; exit 0; fi
  printf 'cannot create the job directory %s\n' "$d" >&2; exit 3
fi
printf '%s\n' "$spec" > "$d/spec.json"
cat /proc/sys/kernel/random/boot_id > "$d/boot_id" 2>/dev/null || rm -f "$d/boot_id"
now_ms > "$d/launched_ms"
: >> "$d/log"
setsid sh -c "$W" hwl-job "$d" "$wd" "$maxrt" "$grace" "$S" "$@" </dev/null >/dev/null 2>&1 &
i=0
while [ ! -s "$d/pid" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -s "$d/pid" ]; then printf 'started %s\n' "$(cat "$d/pid")"; else echo launched; fi
)SH";

// root id STOPPER grace_ms
constexpr std::string_view kCancel = R"SH(root=$(root_of "$1") id=$2 S=$3 grace=$4
d=$root/$id
if [ ! -d "$d" ]; then echo unknown; exit 0; fi
if [ -f "$d/exit" ]; then echo ended; exit 0; fi
setsid sh -c "$S" hwl-stop "$d" 0 "$grace" cancel </dev/null >/dev/null 2>&1 &
echo cancelling
)SH";

// root id lines follow(0|1)
constexpr std::string_view kLogs = R"SH(root=$(root_of "$1") id=$2 n=$3 follow=$4
d=$root/$id
if [ ! -d "$d" ]; then printf 'no job %s on this host\n' "$id" >&2; exit 3; fi
if [ "$follow" != 1 ]; then
  if [ -f "$d/log" ]; then exec tail -n "$n" "$d/log"; fi
  exit 0
fi
i=0
while [ ! -s "$d/pid" ] && [ ! -f "$d/exit" ] && [ "$i" -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
pid=$(cat "$d/pid" 2>/dev/null)
case $pid in ''|*[!0-9]*) pid= ;; esac
if [ -f "$d/exit" ] || [ -z "$pid" ]; then exec tail -n "$n" "$d/log"; fi
if tail --pid="$pid" -n 0 /dev/null >/dev/null 2>&1; then
  exec tail --pid="$pid" -n "$n" -F "$d/log"
fi
exec tail -n "$n" -f "$d/log"
)SH";

// MARK root STOPPER, then id ready_url ready_timeout_ms grace_ms per job. The wrapper's liveness
// is read before its exit file: a wrapper found gone with no exit file had none when it died.
constexpr std::string_view kPoll = R"SH(M=$1 root=$(root_of "$2") S=$3
shift 3
boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
prober=none
if command -v curl >/dev/null 2>&1; then prober=curl; elif command -v wget >/dev/null 2>&1; then prober=wget; fi
now=$(now_ms)
printf '%s now %s %s\n' "$M" "$now" "$prober"
val() { if [ -f "$d/$2" ]; then printf '%s %s\n' "$1" "$(cat "$d/$2" 2>/dev/null)"; fi; }
probe() {
  case $prober in
    curl) curl -fsS -o /dev/null --max-time 2 "$1" >/dev/null 2>&1 ;;
    wget) wget -q -O /dev/null -T 2 "$1" >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}
while [ "$#" -ge 4 ]; do
  id=$1 url=$2 rto=$3 grace=$4
  shift 4
  d=$root/$id
  printf '%s job %s\n' "$M" "$id"
  if [ ! -d "$d" ]; then echo 'dir 0'; continue; fi
  echo 'dir 1'
  b=$(cat "$d/boot_id" 2>/dev/null)
  if [ -z "$boot" ] || [ -z "$b" ]; then echo 'boot unknown'
  elif [ "$b" = "$boot" ]; then echo 'boot same'
  else echo 'boot other'; fi
  val launched launched_ms
  pid=$(cat "$d/pid" 2>/dev/null)
  case $pid in ''|*[!0-9]*) pid= ;; esac
  if [ -n "$pid" ]; then
    echo "pid $pid"
    val started started_ms
    if kill -0 "$pid" 2>/dev/null; then echo 'alive 1'; else echo 'alive 0'; fi
    if kill -0 -"$pid" 2>/dev/null; then echo 'group 1'; else echo 'group 0'; fi
    if [ -n "$url" ] && [ "$prober" != none ] && [ ! -f "$d/exit" ] && [ ! -f "$d/ready_ms" ]; then
      if probe "$url"; then
        (set -C; now_ms > "$d/ready_ms") 2>/dev/null
      else
        st=$(cat "$d/started_ms" 2>/dev/null)
        case $st in ''|*[!0-9]*) st= ;; esac
        if [ -n "$st" ] && [ "$rto" -gt 0 ] && [ $((st + rto)) -lt "$now" ] && [ ! -f "$d/stop" ]; then
          setsid sh -c "$S" hwl-stop "$d" 0 "$grace" ready_timeout </dev/null >/dev/null 2>&1 &
        fi
      fi
    fi
  fi
  val ready ready_ms
  val stop stop
  val exit exit
  if [ -f "$d/exit" ]; then
    printf '%s log\n' "$M"
    tail -c 16384 "$d/log" 2>/dev/null
    printf '\n%s endlog\n' "$M"
  fi
done
printf '%s end\n' "$M"
)SH";

std::string script(std::string_view body) {
  std::string s(kPrelude);
  s += body;
  return s;
}

// `sh -c SCRIPT NAME ARGS...`, every part quoted.
Result<std::string> shCommand(std::string_view body, std::string_view name,
                              const std::vector<std::string>& args) {
  std::vector<std::string> argv{"sh", "-c", script(body), std::string(name)};
  argv.insert(argv.end(), args.begin(), args.end());
  return ssh::buildCommand(argv);
}

bool isNonce(std::string_view n) {
  if (n.size() != 16) return false;
  for (char c : n)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<int64_t> toInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// "first rest" → (first, rest).
std::pair<std::string_view, std::string_view> cut(std::string_view s) {
  auto sp = s.find(' ');
  if (sp == std::string_view::npos) return {s, {}};
  return {s.substr(0, sp), s.substr(sp + 1)};
}

}  // namespace

Status validateJobRoot(std::string_view root) {
  if (root.empty() || root.size() > 1024)
    return invalidArgument("ssh_job_root must be 1 to 1024 bytes");
  for (char c : root)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return invalidArgument("ssh_job_root must not hold control characters");
  if (root.front() == '/' || root == "~" || root.rfind("~/", 0) == 0) return {};
  return invalidArgument("ssh_job_root must be an absolute path or start with ~/");
}

Result<LaunchPlan> launchPlan(const dispatch::LaunchSpec& job) {
  // The host's own parser, as the agent applies it: what was placed validates, and a spec that
  // does not is refused here too.
  auto spec = proto::parseJobSpec(job.spec, job.gpus, "/");
  if (!spec) return spec.error();
  if (spec->id != job.id.str())
    return invalidArgument("the spec's id " + spec->id + " is not the job's " + job.id.str());
  // As an agent refuses a limit its host cannot enforce: an SSH host has no cgroup of the job's.
  if (spec->pids_max > 0) return invalidArgument("pids_max: cannot be enforced on an SSH host");
  if (spec->memory_max_bytes > 0)
    return invalidArgument("memory_max_bytes: cannot be enforced on an SSH host");
  LaunchPlan p;
  p.job_id = spec->id;
  p.command = spec->command;
  for (const auto& [k, v] : spec->env) p.env.emplace_back(k, v);
  std::string gpus;
  for (const auto& g : spec->gpus) gpus += (gpus.empty() ? "" : ",") + g;
  p.env.emplace_back("CUDA_VISIBLE_DEVICES", gpus);
  p.env.emplace_back("ROCR_VISIBLE_DEVICES", gpus);
  p.env.emplace_back("HWLEDGER_JOB_ID", spec->id);
  if (const auto* wd = job.spec.if_contains("working_dir"); wd && wd->is_string()) {
    // Absolute as given; relative (checked to stay inside) under the job's own work dir.
    std::string w(wd->as_string());
    p.working_dir = w.front() == '/' ? spec->working_dir.string()
                                     : std::filesystem::path(w).lexically_normal().string();
  }
  p.grace_ms = spec->grace_ms;
  p.max_runtime_ms = spec->max_runtime_ms;
  p.spec_json = json::canonical(job.spec);
  return p;
}

Result<std::string> launchCommand(std::string_view root, const LaunchPlan& plan) {
  if (auto s = validateJobRoot(root); !s) return s.error();
  if (!proto::validJobId(plan.job_id)) return invalidArgument("bad job id");
  if (plan.command.empty()) return invalidArgument("command: must not be empty");
  std::vector<std::string> args{std::string(root),
                                plan.job_id,
                                script(kWrapper),
                                script(kStopper),
                                plan.working_dir,
                                std::to_string(plan.max_runtime_ms),
                                std::to_string(plan.grace_ms),
                                plan.spec_json,
                                std::to_string(plan.env.size())};
  for (const auto& [k, v] : plan.env) args.push_back(k + "=" + v);
  args.insert(args.end(), plan.command.begin(), plan.command.end());
  auto cmd = shCommand(kLaunch, "hwl-launch", args);
  if (!cmd) return cmd.error();
  if (cmd->size() > kMaxRemoteCommandBytes)
    return invalidArgument("the job's command, environment and spec take " +
                           std::to_string(cmd->size()) +
                           " bytes as a remote command line; an SSH host takes at most " +
                           std::to_string(kMaxRemoteCommandBytes));
  return cmd;
}

Result<LaunchAnswer> parseLaunchOutput(std::string_view out) {
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.remove_suffix(1);
  // Only the last line: a login script may print before the command runs.
  if (auto nl = out.rfind('\n'); nl != std::string_view::npos) out = out.substr(nl + 1);
  if (out == "exists") return LaunchAnswer::kExists;
  if (out == "launched") return LaunchAnswer::kLaunched;
  auto [word, rest] = cut(out);
  if (word == "started" && toInt(rest)) return LaunchAnswer::kStarted;
  return internal("unexpected answer from the launch: \"" + std::string(out.substr(0, 200)) + "\"");
}

Result<std::string> cancelCommand(std::string_view root, std::string_view job_id,
                                  int64_t grace_ms) {
  if (auto s = validateJobRoot(root); !s) return s.error();
  if (!proto::validJobId(job_id)) return invalidArgument("bad job id");
  return shCommand(
      kCancel, "hwl-cancel",
      {std::string(root), std::string(job_id), script(kStopper), std::to_string(grace_ms)});
}

Result<std::string> logsCommand(std::string_view root, std::string_view job_id, int64_t tail,
                                bool follow) {
  if (auto s = validateJobRoot(root); !s) return s.error();
  if (!proto::validJobId(job_id)) return invalidArgument("bad job id");
  if (tail < 0) return invalidArgument("tail must not be negative");
  return shCommand(
      kLogs, "hwl-logs",
      {std::string(root), std::string(job_id), std::to_string(tail), follow ? "1" : "0"});
}

Result<std::string> pollCommand(std::string_view root, std::string_view nonce,
                                const std::vector<PollEntry>& jobs) {
  if (auto s = validateJobRoot(root); !s) return s.error();
  if (!isNonce(nonce)) return invalidArgument("poll nonce must be 16 lowercase hex digits");
  std::vector<std::string> args{"@@hwl-" + std::string(nonce), std::string(root), script(kStopper)};
  for (const auto& j : jobs) {
    if (!proto::validJobId(j.job_id)) return invalidArgument("bad job id " + j.job_id);
    args.push_back(j.job_id);
    args.push_back(j.ready_url);
    args.push_back(std::to_string(j.ready_timeout_ms));
    args.push_back(std::to_string(j.grace_ms));
  }
  return shCommand(kPoll, "hwl-poll", args);
}

std::optional<int> RemoteJob::exitCode() const {
  if (!status || *status > 128) return std::nullopt;
  return status;
}

std::optional<int> RemoteJob::signal() const {
  if (!status || *status <= 128) return std::nullopt;
  return *status - 128;
}

Result<PollResult> parsePollOutput(std::string_view out, std::string_view nonce) {
  if (!isNonce(nonce)) return invalidArgument("poll nonce must be 16 lowercase hex digits");
  const std::string mark = "@@hwl-" + std::string(nonce) + " ";
  PollResult r;
  RemoteJob* job = nullptr;
  bool ended = false;
  size_t pos = 0;
  // Output before the first mark (a login script's) is not the poll's.
  if (auto first = out.find(mark); first != std::string_view::npos)
    pos = first;
  else
    return unavailable("the job poll printed nothing of its own (cut short?)");
  while (pos < out.size() && !ended) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string_view::npos) nl = out.size();
    std::string_view line = out.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind(mark, 0) == 0) {
      auto [what, rest] = cut(line.substr(mark.size()));
      if (what == "now") {
        auto [ms, prober] = cut(rest);
        r.now_ms = toInt(ms).value_or(0);
        r.prober = std::string(prober);
      } else if (what == "job") {
        auto [it, fresh] = r.jobs.try_emplace(std::string(rest));
        if (!fresh) return internal("the job poll named " + std::string(rest) + " twice");
        job = &it->second;
      } else if (what == "log") {
        const std::string end = "\n" + mark + "endlog\n";
        size_t e = out.find(end, pos);
        if (e == std::string_view::npos || job == nullptr)
          return unavailable("the job poll's output was cut short in a log");
        // The script printed one newline of its own before the closing line.
        job->log_tail = std::string(out.substr(pos, e - pos));
        pos = e + end.size();
      } else if (what == "end") {
        ended = true;
      }
      continue;
    }
    if (job == nullptr) continue;
    auto [key, value] = cut(line);
    if (key == "dir") {
      job->dir = value == "1";
    } else if (key == "boot") {
      job->boot = value == "same"    ? RemoteJob::Boot::kSame
                  : value == "other" ? RemoteJob::Boot::kOther
                                     : RemoteJob::Boot::kUnknown;
    } else if (key == "launched") {
      job->launched_ms = toInt(value);
    } else if (key == "pid") {
      job->pid = toInt(value);
    } else if (key == "started") {
      job->started_ms = toInt(value);
    } else if (key == "alive") {
      job->alive = value == "1";
    } else if (key == "group") {
      job->group_alive = value == "1";
    } else if (key == "ready") {
      job->ready_ms = toInt(value);
    } else if (key == "stop") {
      job->stop_reason = std::string(cut(value).first);
    } else if (key == "exit") {
      auto [status, ms] = cut(value);
      job->has_exit = true;
      job->ended_ms = toInt(ms);
      if (status != "none") {
        auto s = toInt(status);
        if (!s || *s < 0 || *s > 255)
          return internal("the job poll read an exit status \"" +
                          std::string(status.substr(0, 20)) + "\"");
        job->status = static_cast<int>(*s);
      }
    }
  }
  if (!ended) return unavailable("the job poll's output was cut short");
  return r;
}

std::string newNonce() { return crypto::newId("", 8); }

}  // namespace hwl::agentless
