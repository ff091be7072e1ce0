// A job spec as submitted to POST /v1/jobs, and its validation.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::proto {

// Bounds on every stored field of a spec: a spec is recorded in the server's ledger, in the
// agent's job record and in its outbox (job.started carries it), so none of them may grow
// without limit. The serialized spec must also fit well inside one outbox entry.
inline constexpr size_t kMaxIdLength = 128;
inline constexpr size_t kMaxCommandArgs = 1024;
inline constexpr size_t kMaxArgBytes = 16 * 1024;
inline constexpr size_t kMaxCommandBytes = 64 * 1024;  // all arguments together
inline constexpr size_t kMaxEnvVars = 256;
inline constexpr size_t kMaxEnvNameBytes = 128;
inline constexpr size_t kMaxEnvValueBytes = 16 * 1024;
inline constexpr size_t kMaxEnvBytes = 64 * 1024;  // all names and values together
inline constexpr size_t kMaxGpus = 64;
inline constexpr size_t kMaxGpuUuidBytes = 128;
inline constexpr size_t kMaxWorkingDirBytes = 4096;
inline constexpr size_t kMaxReadyUrlBytes = 2048;
inline constexpr size_t kMaxSpecJsonBytes = 160 * 1024;

// Whether `id` is a valid job id: 1-128 of [A-Za-z0-9._-], not starting with '.'.
bool validJobId(std::string_view id);

// Where a job's readiness is probed: plain HTTP on a loopback address.
struct ReadyUrl {
  std::string host;  // "127.0.0.1", "::1" or "localhost"
  uint16_t port = 0;
  std::string target;  // path and query, starts with '/'
  std::string text;    // the URL as given
};

struct JobSpec {
  std::string id;                          // validJobId
  std::vector<std::string> command;        // argv; command[0] resolved against PATH if bare
  std::map<std::string, std::string> env;  // added to a minimal base environment
  std::vector<std::string> gpus;           // GPU uuids, each one the probes reported
  // Absolute; for a relative or absent "working_dir" this is jobs_root/<dir> (default
  // jobs_root/<id>), created by the job itself (as the job user) before exec.
  std::filesystem::path working_dir;
  bool create_working_dir = false;  // true when working_dir lies under jobs_root
  std::optional<ReadyUrl> ready_url;
  int64_t ready_timeout_ms = 300'000;
  int64_t max_runtime_ms = 0;  // 0: no limit
  int64_t grace_ms = 10'000;
  int64_t pids_max = 0;          // 0: the agent's default; enforced through the job's cgroup
  int64_t memory_max_bytes = 0;  // 0: no limit; enforced through the job's cgroup

  // The spec in submission form; two submissions are the same job iff these are equal.
  [[nodiscard]] boost::json::object toJson() const;
  friend bool operator==(const JobSpec& a, const JobSpec& b) { return a.toJson() == b.toJson(); }
};

// Validates a submitted spec. Any problem is kInvalidArgument with a message that starts with the
// offending field ("command[1]: must be a string", "gpus[0]: unknown GPU uuid …"), so the API can
// answer 400 with the field named. Keys: id, command, env, gpus, working_dir, ready_url,
// ready_timeout_s, max_runtime_s, grace_s, pids_max (1..4194304), memory_max_bytes (1 MiB..1 PiB);
// anything else is rejected. Durations are seconds (fractions allowed), non-negative and at most
// 30 days. Sizes are bounded by the kMax* limits above ("command[3]: longer than 16384 bytes").
Result<JobSpec> parseJobSpec(const boost::json::value& body,
                             const std::vector<std::string>& known_gpu_uuids,
                             const std::filesystem::path& jobs_root);

// Parses "http://127.0.0.1:PORT/path" (loopback hosts only).
Result<ReadyUrl> parseReadyUrl(std::string_view url);

}  // namespace hwl::proto
