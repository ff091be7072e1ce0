// Jobs on agentless hosts, the host's side: the POSIX sh scripts the SSH driver and the job
// tracker run over an exec channel, and the parsing of what they print. Pure functions (no
// session, no ledger), so that they can be checked against the real /bin/sh.
//
// On the host, every job has a directory ROOT/<job-id>/ (ROOT: the server's `ssh_job_root`,
// "~/.hwledger/jobs" by default, resolved against the remote user's HOME), 0700, holding:
//   spec.json     the spec as placed                launched_ms  when the launch made the dir
//   boot_id       the host's boot id at launch      log          the job's stdout and stderr
//   pid           the wrapper's pid, which is also the job's session and process-group id
//   started_ms    when the wrapper started          ready_ms     when ready_url first answered
//   stop          "<reason> <ms>": why it is being stopped (cancel, max_runtime, ready_timeout)
//   exit          "<status> <ms>": the shell's status of the command ($?: 0-255; a signal N
//                 shows as 128+N) or "none" when a stop came before the command ran
// The wrapper (a session leader started with setsid, so the job survives the SSH channel and
// the server) runs the command in the foreground, writes `exit`, then kills whatever the job left
// in its process group. Stopping is done by a detached "stopper" (its own session): SIGTERM to
// the group, SIGKILL after the grace period, and an `exit` of 137 if the wrapper itself had to be
// killed; it does not depend on the server staying up. Arguments reach the scripts only as
// single-quoted positional parameters (ssh::buildCommand), never inside their text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/driver.hpp"
#include "hwl/result.hpp"

namespace hwl::agentless {

inline constexpr char kDefaultJobRoot[] = "~/.hwledger/jobs";
// The most of the job's log a terminal event carries.
inline constexpr size_t kLogTailBytes = 16 * 1024;
// Linux passes the whole command to the remote shell as one argument (MAX_ARG_STRLEN, 128 KiB).
inline constexpr size_t kMaxRemoteCommandBytes = 120 * 1024;

// The job root: an absolute path, or "~" / "~/..." (the remote user's HOME); at most 1024 bytes,
// no control characters.
[[nodiscard]] Status validateJobRoot(std::string_view root);

// What the launch needs from a placed spec (checked with proto::parseJobSpec).
struct LaunchPlan {
  std::string job_id;
  std::vector<std::string> command;
  // The spec's env, then CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES (the reserved GPUs' uuids,
  // comma-separated; empty for a job without GPUs, which hides them all) and HWLEDGER_JOB_ID, as
  // the agent sets them. Added to the environment of the remote login.
  std::vector<std::pair<std::string, std::string>> env;
  // "" (the job's ROOT/<id>/work, created), an absolute path (must exist) or a relative one
  // (under ROOT/<id>/work, created).
  std::string working_dir;
  int64_t grace_ms = 10'000;
  int64_t max_runtime_ms = 0;
  std::string spec_json;
};
// Refuses pids_max and memory_max_bytes (no cgroup on an SSH host to enforce them).
[[nodiscard]] Result<LaunchPlan> launchPlan(const dispatch::LaunchSpec& job);

// Makes the job's directory and starts its wrapper detached, unless the directory exists (then
// nothing runs: the same job id was launched before). Prints "started <pid>", "launched" (the
// wrapper had not written its pid within 5 s) or "exists"; exit 3 (the directory cannot be made)
// and 4 (no setsid on the host) print why on stderr.
[[nodiscard]] Result<std::string> launchCommand(std::string_view root, const LaunchPlan& plan);

enum class LaunchAnswer { kStarted, kLaunched, kExists };
[[nodiscard]] Result<LaunchAnswer> parseLaunchOutput(std::string_view out);

// Starts a stopper for the job (reason "cancel"). Prints "unknown" (no such directory), "ended"
// (it has its exit already) or "cancelling".
[[nodiscard]] Result<std::string> cancelCommand(std::string_view root, std::string_view job_id,
                                                int64_t grace_ms);

// The last `tail` lines of the job's log; with follow, then what it writes until its wrapper
// ends (GNU tail --pid; elsewhere until a write finds the reader gone). Exit 3: no such job.
[[nodiscard]] Result<std::string> logsCommand(std::string_view root, std::string_view job_id,
                                              int64_t tail, bool follow);

// One job of a poll.
struct PollEntry {
  std::string job_id;
  std::string ready_url;  // "" when the job has none (or it is ready already)
  int64_t ready_timeout_ms = 0;
  int64_t grace_ms = 10'000;
};

// Reads the state of every listed job in one exec. For a job with a ready_url that has not
// answered yet, probes it from the host (curl, else wget; neither: no readiness) and records the
// first 2xx in ready_ms; past ready_timeout_ms without one, starts a stopper ("ready_timeout").
// Prints, between lines that carry `nonce` (16 hex digits), each job's files and whether its
// wrapper and its process group are alive, and the last kLogTailBytes of the log of a job that
// has its exit.
[[nodiscard]] Result<std::string> pollCommand(std::string_view root, std::string_view nonce,
                                              const std::vector<PollEntry>& jobs);

// A job as its host shows it.
struct RemoteJob {
  bool dir = false;
  enum class Boot { kUnknown, kSame, kOther } boot = Boot::kUnknown;
  std::optional<int64_t> launched_ms;
  std::optional<int64_t> pid;
  std::optional<int64_t> started_ms;
  bool alive = false;        // the wrapper
  bool group_alive = false;  // any process of the job's group
  bool has_exit = false;
  std::optional<int> status;  // absent with has_exit: "none" (stopped before it ran)
  std::optional<int64_t> ended_ms;
  std::string stop_reason;  // "", "cancel", "max_runtime", "ready_timeout"
  std::optional<int64_t> ready_ms;
  std::optional<std::string> log_tail;

  // The shell's status read back: an exit code, or the signal that ended the command.
  [[nodiscard]] std::optional<int> exitCode() const;
  [[nodiscard]] std::optional<int> signal() const;
};

struct PollResult {
  int64_t now_ms = 0;  // the host's clock when the poll ran
  std::string prober;  // "curl", "wget" or "none"
  std::map<std::string, RemoteJob> jobs;
};

// Refuses output that does not end with the closing line (cut short) or names a job twice.
[[nodiscard]] Result<PollResult> parsePollOutput(std::string_view out, std::string_view nonce);

// A fresh nonce for pollCommand.
[[nodiscard]] std::string newNonce();

}  // namespace hwl::agentless
