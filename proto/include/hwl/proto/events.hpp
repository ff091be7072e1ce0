// Event types of the ledger (the catalogue with each event's stream and data is proto/events.md).
// Code names these constants, never the strings, so a type is spelled in one place. They are
// character arrays so that they compare with and construct std::string and std::string_view alike.
#pragma once

namespace hwl::proto::event {

inline constexpr char kTokenCreated[] = "token.created";
inline constexpr char kTokenRevoked[] = "token.revoked";
inline constexpr char kTokenUsed[] = "token.used";
inline constexpr char kAuthDenied[] = "auth.denied";

inline constexpr char kHostEnrolled[] = "host.enrolled";
inline constexpr char kHostEnrolledSsh[] = "host.enrolled_ssh";
inline constexpr char kHostAgentInstalled[] = "host.agent_installed";
inline constexpr char kSshHostKeyMismatch[] = "ssh.hostkey_mismatch";
inline constexpr char kHostCertRenewed[] = "host.cert_renewed";
inline constexpr char kHostRevoked[] = "host.revoked";
inline constexpr char kHostReachable[] = "host.reachable";
inline constexpr char kHostUnreachable[] = "host.unreachable";
inline constexpr char kHostInventoryChanged[] = "host.inventory_changed";
inline constexpr char kHostOutboxConflict[] = "host.outbox_conflict";
inline constexpr char kTelemetryHourly[] = "telemetry.hourly";
inline constexpr char kAgentRejectedEntry[] = "agent.rejected_entry";

inline constexpr char kJobSubmitted[] = "job.submitted";
inline constexpr char kJobPlaced[] = "job.placed";
inline constexpr char kJobDispatchFailed[] = "job.dispatch_failed";
inline constexpr char kJobStarted[] = "job.started";
// Evidence about a job, not a change of its state (the job projection leaves the state alone).
inline constexpr char kJobUsage[] = "job.usage";
inline constexpr char kJobIdle[] = "job.idle";
inline constexpr char kJobReconciled[] = "job.reconciled";
// A rental hour billed while the rental's GPUs sat idle, on the rental's stream.
inline constexpr char kRentalIdleBilled[] = "rental.idle_billed";
// Processes on a GPU that no job holds, on the host's stream.
inline constexpr char kGpuUnaccountedUse[] = "gpu.unaccounted_use";
inline constexpr char kJobReady[] = "job.ready";
inline constexpr char kJobExited[] = "job.exited";
inline constexpr char kJobFailed[] = "job.failed";
inline constexpr char kJobCancelled[] = "job.cancelled";
inline constexpr char kJobLost[] = "job.lost";
// GPUs of a host taken by a placement, on the host's "gpus/<host-id>" stream: every placement on
// a host appends one at the version it read, so two placements racing for a GPU cannot both commit.
inline constexpr char kGpusReserved[] = "gpus.reserved";

// Cloud rentals, on "rental/<rental id>" streams (proto/events.md has their data).
inline constexpr char kRentalRequested[] = "rental.requested";
inline constexpr char kRentalLaunched[] = "rental.launched";
inline constexpr char kRentalRunning[] = "rental.running";
inline constexpr char kRentalFailed[] = "rental.failed";
inline constexpr char kRentalHostEnrolled[] = "rental.host_enrolled";
inline constexpr char kRentalTerminateRequested[] = "rental.terminate_requested";
inline constexpr char kRentalTerminated[] = "rental.terminated";
inline constexpr char kRentalOrphanFound[] = "rental.orphan_found";
inline constexpr char kCostAccrued[] = "cost.accrued";
inline constexpr char kCostDiscrepancy[] = "cost.discrepancy";
// On the "budget" stream.
inline constexpr char kBudgetExceeded[] = "budget.exceeded";

}  // namespace hwl::proto::event

namespace hwl::proto::stream {

inline constexpr char kJobPrefix[] = "job/";
inline constexpr char kHostPrefix[] = "host/";
inline constexpr char kGpusPrefix[] = "gpus/";
inline constexpr char kRentalPrefix[] = "rental/";
inline constexpr char kBudget[] = "budget";

}  // namespace hwl::proto::stream
