// A Driver runs jobs on hosts of one kind (agent today; SSH and cloud next). The Scheduler picks a
// host and reserves its GPUs in the ledger; the driver of the host's kind then does the host's
// side. Drivers are called without any lock held and may block for as long as their host takes.
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <string>
#include <vector>

#include "hwl/proto/types.hpp"
#include "hwl/result.hpp"

namespace hwl::dispatch {

// The host a call goes to, as the ledger has it.
struct HostTarget {
  proto::HostId id;
  std::string name;
  proto::HostKind kind = proto::HostKind::kAgent;
  std::string address;
};

// A job for a host: its id, the GPUs reserved for it, and the host spec (checked by
// proto::checkHostSpec before anything was recorded).
struct LaunchSpec {
  proto::JobId id;
  std::vector<std::string> gpus;
  boost::json::object spec;
};

struct LaunchResult {
  enum class Outcome {
    kAccepted,  // the host has the job (new, or the same id already there)
    kRefused,   // the host answered and will not run it
    kNoAnswer,  // no answer: it may or may not have it
  };
  Outcome outcome = Outcome::kNoAnswer;
  std::string detail;  // for kRefused and kNoAnswer: why
};

struct CancelResult {
  enum class Outcome {
    kCancelling,  // the host is stopping it; the end arrives as the host's report
    kUnknownJob,  // the host has no such job: nothing runs
  };
  Outcome outcome = Outcome::kCancelling;
};

struct LogRequest {
  int64_t tail = 100;   // lines
  bool follow = false;  // keep streaming as the job writes
};

// What a host answered for logs: its status and, unless followed, the text (or its error).
struct LogResult {
  unsigned status = 0;
  std::string body;
};

using LogSink = std::function<bool(std::string_view)>;  // false: stop
using Cancelled = std::function<bool()>;                // true: the reader left

class Driver {
 public:
  virtual ~Driver() = default;
  [[nodiscard]] virtual proto::HostKind kind() const = 0;
  // Idempotent by job id: a second launch of the same spec is accepted without a second run.
  virtual LaunchResult launch(const HostTarget& host, const LaunchSpec& job) = 0;
  // The host's own view of the job (its JSON), or kNotFound.
  virtual Result<boost::json::object> status(const HostTarget& host, const proto::JobId& job) = 0;
  // With follow, the text goes to `sink` as it comes (LogResult::body stays empty).
  virtual Result<LogResult> logs(const HostTarget& host, const proto::JobId& job, LogRequest req,
                                 const LogSink& sink, const Cancelled& cancelled) = 0;
  // Errors: kUnavailable (no answer), kBadGateway (the host answered with an error).
  virtual Result<CancelResult> cancel(const HostTarget& host, const proto::JobId& job) = 0;
};

}  // namespace hwl::dispatch
