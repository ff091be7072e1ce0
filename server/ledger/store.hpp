// The ledger as the server's layers see it: append with an expected version, read by cursor,
// wait for the head, checkpoints, verification, and read views of the projections. The API, the
// collector and the dispatch code depend on this interface only; server/storage implements it on
// SQLite, and another backend (PostgreSQL for several server replicas) would implement it again
// without touching them.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "event.hpp"
#include "hwl/crypto.hpp"
#include "hwl/result.hpp"
#include "rows.hpp"
#include "telemetry_span.hpp"

namespace hwl::ledger {

struct Checkpoint {
  int64_t seq = 0;
  crypto::Digest hash{};
  int64_t time_ms = 0;
  std::string signature;
};
std::string checkpointMessage(int64_t seq, const crypto::Digest& hash, int64_t time_ms);
boost::json::object checkpointToJson(const Checkpoint& c);

struct VerifyReport {
  bool ok = true;
  int64_t events = 0;
  int64_t head_seq = 0;
  crypto::Digest head_hash{};
  std::optional<int64_t> first_bad_seq;
  bool checkpoints_ok = true;
  int64_t checkpoints_checked = 0;
  std::string problem;  // what was found at first_bad_seq, or about the checkpoints
  [[nodiscard]] boost::json::object toJson() const;
};

struct EventQuery {
  int64_t after = 0;
  int64_t limit = 100;
  std::string stream;  // exact match when not empty
  std::string type;    // exact match when not empty
  // Streams starting with this, when not empty (last, so that {after, limit, stream, type}
  // initialisers keep their meaning).
  std::string stream_prefix;
};

// Queries of the projections, all against one committed state of the ledger for as long as the
// view lives (see Ledger::withSnapshot), or each against the latest (Ledger::withReader).
class ReadView {
 public:
  virtual ~ReadView() = default;
  // The version of `stream` (its number of events, 0 when it has none).
  virtual Result<int64_t> streamVersion(std::string_view stream) = 0;

  virtual Result<std::optional<TokenRow>> findToken(std::string_view id) = 0;
  virtual Result<std::vector<TokenRow>> listTokens() = 0;
  virtual Result<std::optional<EnrollTokenRow>> findEnrollToken(std::string_view id) = 0;
  virtual Result<std::vector<EnrollTokenRow>> listEnrollTokens() = 0;

  // A certificate the CA issued to a host, by its serial (hex).
  virtual Result<std::optional<HostCertRow>> findHostCert(std::string_view serial_hex) = 0;
  // Revoked hosts: their ids and the serials of every certificate issued to them.
  virtual Result<std::pair<std::set<std::string>, std::set<std::string>>> revokedHosts() = 0;
  virtual Result<std::optional<HostRow>> findHost(std::string_view id) = 0;
  // All hosts, or a page in id order after `after` when limit > 0.
  virtual Result<std::vector<HostRow>> listHosts(std::string_view after = {},
                                                 int64_t limit = 0) = 0;

  virtual Result<std::vector<GpuRow>> listGpus(std::string_view host_id = {}) = 0;
  // GPUs of the hosts whose ids are between first and last (inclusive).
  virtual Result<std::vector<GpuRow>> listGpusBetween(std::string_view first,
                                                      std::string_view last) = 0;
  virtual Result<std::vector<JobRow>> listJobs(std::string_view host_id = {}) = 0;
  // Jobs that have not ended (they hold their GPUs), oldest first.
  virtual Result<std::vector<JobRow>> listActiveJobs() = 0;
  virtual Result<std::optional<JobRow>> findJob(std::string_view id) = 0;
  // How far each host's outbox has been drained: host id → last agent seq in the ledger.
  virtual Result<std::map<std::string, int64_t>> agentCursors() = 0;
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // Blocks until the request is committed (or refused). Every part of a request commits or none
  // does; a part whose stream is not at its expected version refuses the whole request
  // (Code::kConflict), which is how concurrent writers decide races.
  virtual Result<AppendResult> append(AppendRequest req) = 0;
  using Callback = std::function<void(Result<AppendResult>)>;
  // Queues the request; `done` runs after the commit (on a thread of the backend's).
  virtual void appendAsync(AppendRequest req, Callback done) = 0;
  // Shorthand for one stream.
  Result<AppendResult> append(std::string stream, int64_t expected_version, std::string actor,
                              std::vector<NewEvent> events);

  // Events in seq order after a cursor.
  virtual Result<std::vector<Event>> read(const EventQuery& q) = 0;
  // Waits until the head passes `seq` or the timeout elapses; returns the head seq.
  virtual int64_t waitForHead(int64_t seq, std::chrono::milliseconds timeout) = 0;
  [[nodiscard]] virtual int64_t headSeq() const = 0;
  virtual Result<std::vector<Checkpoint>> checkpoints(int64_t after, int64_t limit) = 0;
  // Recomputes the hash chain from genesis and checks the signed checkpoints.
  virtual VerifyReport verify() = 0;
  // The version of `stream` as committed now. Read it before checking the state an append
  // depends on and pass it as the expected version: an append that committed after the read then
  // makes this one fail instead of both succeeding.
  virtual Result<int64_t> streamVersion(std::string_view stream) = 0;
  // The telemetry of hours in [from_ms, to_ms) for reports (a ledger::SpanReader).
  virtual Status telemetrySpans(int64_t from_ms, int64_t to_ms, bool whole_days,
                                const SpanVisitor& fn) = 0;

  // Runs `fn(ReadView&)`; each query sees the latest committed state.
  template <typename F>
  auto withReader(F&& fn) {
    return run(false, std::forward<F>(fn));
  }
  // As withReader, inside one read transaction: every query of `fn` sees the same committed
  // state (a version read with the rows it guards).
  template <typename F>
  auto withSnapshot(F&& fn) {
    return run(true, std::forward<F>(fn));
  }

 protected:
  virtual void view(bool snapshot, const std::function<void(ReadView&)>& fn) = 0;

 private:
  template <typename F>
  auto run(bool snapshot, F&& fn) {
    using R = decltype(fn(std::declval<ReadView&>()));
    std::optional<R> out;
    view(snapshot, [&](ReadView& v) { out.emplace(fn(v)); });
    return std::move(*out);
  }
};

// Every event `q` selects after q.after, in seq order, read a page at a time (q.limit is the
// page size; 0 or less: 1000). Stops at the first error `fn` returns.
Status forEachEvent(Ledger& ledger, EventQuery q, const std::function<Status(Event&)>& fn);
// The same, collected.
Result<std::vector<Event>> readAll(Ledger& ledger, EventQuery q);

}  // namespace hwl::ledger
