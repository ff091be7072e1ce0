// The typed vocabulary of the wire and the ledger: host kinds and states, job states, and ids that
// are validated once, where they enter, and then carried as their own types.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/result.hpp"

namespace hwl::proto {

// How the server reaches a host. Each kind has one Driver (dispatch/) and one HostSource
// (collect/). kUnknown is what a stored value this build does not know reads as: no driver and no
// source take it, so such a host is never called.
enum class HostKind { kUnknown, kAgent, kSsh, kCloud };
std::string_view toString(HostKind k);
std::optional<HostKind> parseHostKind(std::string_view s);

// kUnknown as for HostKind: a host in a state this build does not know is not placeable.
enum class HostState { kUnknown, kEnrolled, kReachable, kUnreachable, kRevoked };
std::string_view toString(HostState s);
std::optional<HostState> parseHostState(std::string_view s);

// A job's life: submitted → placed → (dispatch_failed | running → ready → exited | failed |
// cancelled | lost). "accepted" is a job an agent reports that the server never placed.
enum class JobState {
  kSubmitted,
  kPlaced,
  kAccepted,
  kRunning,
  kReady,
  kExited,
  kFailed,
  kCancelled,
  kLost,
  kDispatchFailed,
};
std::string_view toString(JobState s);
std::optional<JobState> parseJobState(std::string_view s);
// Ended: the job holds no GPU and will not change again (except an agent's late report).
bool isTerminal(JobState s);
// The same for a state as stored (an unknown state is not terminal).
bool isTerminalJobState(std::string_view s);

// Ids, each with the grammar it is checked against when it enters from outside.
template <typename Tag>
class Id {
 public:
  Id() = default;
  // Checked: an error names what was wrong.
  static Result<Id> parse(std::string_view s) {
    if (!Tag::valid(s))
      return invalidArgument("\"" + std::string(s.substr(0, 64)) + "\" is not a valid " +
                             std::string(Tag::kWhat));
    return Id(std::string(s));
  }
  // For values the server itself made or read back from its own ledger.
  static Id trusted(std::string s) { return Id(std::move(s)); }
  [[nodiscard]] const std::string& str() const { return v_; }
  [[nodiscard]] bool empty() const { return v_.empty(); }
  auto operator<=>(const Id&) const = default;

 private:
  explicit Id(std::string v) : v_(std::move(v)) {}
  std::string v_;
};

// [A-Za-z0-9._-], 1-128, not starting with '.' (job ids, and host ids "host-<hex>").
bool validName(std::string_view s);
// A GPU uuid as the probes report them ("GPU-…", "MIG-…/1/0", "0x…"), at most 128 bytes.
bool validGpuUuid(std::string_view s);

struct HostIdTag {
  static constexpr std::string_view kWhat = "host id";
  static bool valid(std::string_view s) { return validName(s); }
};
struct JobIdTag {
  static constexpr std::string_view kWhat = "job id";
  static bool valid(std::string_view s) { return validName(s); }
};
struct GpuUuidTag {
  static constexpr std::string_view kWhat = "GPU uuid";
  static bool valid(std::string_view s) { return validGpuUuid(s); }
};
using HostId = Id<HostIdTag>;
using JobId = Id<JobIdTag>;
using GpuUuid = Id<GpuUuidTag>;

// A position in the ledger (1-based; 0 is "before the first event").
struct EventSeq {
  int64_t value = 0;
  auto operator<=>(const EventSeq&) const = default;
};

}  // namespace hwl::proto
