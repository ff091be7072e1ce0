// A job as submitted to the server (POST /v1/jobs): what to run and what it needs, before it is
// placed. Its fields that reach a host are checked by the host's own parser (parseJobSpec), so a
// submission the host would refuse is refused before anything is recorded, with the same message.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::proto {

inline constexpr size_t kMaxJobNameBytes = 256;
inline constexpr size_t kMaxHostFieldBytes = 256;
inline constexpr size_t kMaxReadyPathBytes = 1024;

struct JobRequest {
  std::optional<std::string> name;
  std::optional<std::string> host;          // a host id or name the job must run on
  int64_t gpus = 0;                         // how many GPUs
  std::optional<int64_t> gpu_memory_bytes;  // free memory each of them must have
  std::optional<int64_t> port;
  std::optional<std::string> ready_path;
  std::optional<int64_t> max_runtime_s;
  boost::json::value command;  // as submitted (checked by parseJobSpec)
  boost::json::value env;
  // "model": what the job serves, for the planner's prediction: {"config": config.json (an
  // object, or its text), "context": N, "batch": B, "kv": "...", "tp": T}; checked by the API
  // with the planner. Absent: no prediction.
  std::optional<boost::json::object> model;
  // The planner's per-GPU prediction for `model`, recorded on job.placed (set by the API).
  std::optional<boost::json::object> predicted;

  // The spec a host is given for job `id` on the GPUs `gpu_uuids`.
  [[nodiscard]] boost::json::object hostSpec(const std::string& id,
                                             const std::vector<std::string>& gpu_uuids) const;
  // What the submission asked for ("requested" of job.submitted).
  [[nodiscard]] boost::json::object requested() const;
};

// Keys: name, command, env, gpus, gpu_memory_bytes, host, ready_path, port, max_runtime_s,
// model (an object of at most 1 MiB); any other is refused. Errors are kInvalidArgument naming the
// field.
Result<JobRequest> parseJobRequest(const boost::json::value& body);

// Checks a host spec with the host's parser (GPU uuids against `gpu_uuids`), with the messages a
// submitter understands ("ready_path: …" where the host would say "ready_url: …").
Status checkHostSpec(const boost::json::object& spec, const std::vector<std::string>& gpu_uuids);

}  // namespace hwl::proto
