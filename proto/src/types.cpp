// Names of the enums as they appear on the wire and in the ledger.
#include "hwl/proto/types.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "hwl/proto/job_spec.hpp"

namespace hwl::proto {
namespace {

template <typename E, size_t N>
std::string_view nameOf(const std::array<std::pair<E, std::string_view>, N>& names, E e) {
  for (const auto& [k, v] : names)
    if (k == e) return v;
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> parseOf(const std::array<std::pair<E, std::string_view>, N>& names,
                         std::string_view s) {
  for (const auto& [k, v] : names)
    if (v == s) return k;
  return std::nullopt;
}

constexpr std::array<std::pair<HostKind, std::string_view>, 3> kHostKinds{{
    {HostKind::kAgent, "agent"},
    {HostKind::kSsh, "ssh"},
    {HostKind::kCloud, "cloud"},
}};

constexpr std::array<std::pair<HostState, std::string_view>, 4> kHostStates{{
    {HostState::kEnrolled, "enrolled"},
    {HostState::kReachable, "reachable"},
    {HostState::kUnreachable, "unreachable"},
    {HostState::kRevoked, "revoked"},
}};

constexpr std::array<std::pair<JobState, std::string_view>, 10> kJobStates{{
    {JobState::kSubmitted, "submitted"},
    {JobState::kPlaced, "placed"},
    {JobState::kAccepted, "accepted"},
    {JobState::kRunning, "running"},
    {JobState::kReady, "ready"},
    {JobState::kExited, "exited"},
    {JobState::kFailed, "failed"},
    {JobState::kCancelled, "cancelled"},
    {JobState::kLost, "lost"},
    {JobState::kDispatchFailed, "dispatch_failed"},
}};

}  // namespace

std::string_view toString(HostKind k) { return nameOf(kHostKinds, k); }
std::optional<HostKind> parseHostKind(std::string_view s) { return parseOf(kHostKinds, s); }
std::string_view toString(HostState s) { return nameOf(kHostStates, s); }
std::optional<HostState> parseHostState(std::string_view s) { return parseOf(kHostStates, s); }
std::string_view toString(JobState s) { return nameOf(kJobStates, s); }
std::optional<JobState> parseJobState(std::string_view s) { return parseOf(kJobStates, s); }

bool isTerminal(JobState s) {
  switch (s) {
    case JobState::kExited:
    case JobState::kFailed:
    case JobState::kCancelled:
    case JobState::kLost:
    case JobState::kDispatchFailed:
      return true;
    default:
      return false;
  }
}

bool isTerminalJobState(std::string_view s) {
  auto st = parseJobState(s);
  return st && isTerminal(*st);
}

bool validName(std::string_view s) { return validJobId(s); }

bool validGpuUuid(std::string_view v) {
  return !v.empty() && v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':' || c == '/';
  });
}

}  // namespace hwl::proto
