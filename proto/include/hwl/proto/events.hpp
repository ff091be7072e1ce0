// Event types of the ledger (the catalogue with each event's stream and data is proto/events.md).
// Code names these constants, never the strings, so a type is spelled in one place.
#pragma once

#include <string_view>

namespace hwl::proto::event {

inline constexpr std::string_view kTokenCreated = "token.created";
inline constexpr std::string_view kTokenRevoked = "token.revoked";
inline constexpr std::string_view kTokenUsed = "token.used";
inline constexpr std::string_view kAuthDenied = "auth.denied";

inline constexpr std::string_view kHostEnrolled = "host.enrolled";
inline constexpr std::string_view kHostEnrolledSsh = "host.enrolled_ssh";
inline constexpr std::string_view kHostCertRenewed = "host.cert_renewed";
inline constexpr std::string_view kHostRevoked = "host.revoked";
inline constexpr std::string_view kHostReachable = "host.reachable";
inline constexpr std::string_view kHostUnreachable = "host.unreachable";
inline constexpr std::string_view kHostInventoryChanged = "host.inventory_changed";
inline constexpr std::string_view kHostOutboxConflict = "host.outbox_conflict";
inline constexpr std::string_view kTelemetryHourly = "telemetry.hourly";
inline constexpr std::string_view kAgentRejectedEntry = "agent.rejected_entry";

inline constexpr std::string_view kJobSubmitted = "job.submitted";
inline constexpr std::string_view kJobPlaced = "job.placed";
inline constexpr std::string_view kJobDispatchFailed = "job.dispatch_failed";
inline constexpr std::string_view kJobStarted = "job.started";
inline constexpr std::string_view kJobReady = "job.ready";
inline constexpr std::string_view kJobExited = "job.exited";
inline constexpr std::string_view kJobFailed = "job.failed";
inline constexpr std::string_view kJobCancelled = "job.cancelled";
inline constexpr std::string_view kJobLost = "job.lost";
// GPUs of a host taken by a placement, on the host's "gpus/<host-id>" stream: every placement on
// a host appends one at the version it read, so two placements racing for a GPU cannot both commit.
inline constexpr std::string_view kGpusReserved = "gpus.reserved";

}  // namespace hwl::proto::event

namespace hwl::proto::stream {

inline constexpr std::string_view kJobPrefix = "job/";
inline constexpr std::string_view kHostPrefix = "host/";
inline constexpr std::string_view kGpusPrefix = "gpus/";

}  // namespace hwl::proto::stream
