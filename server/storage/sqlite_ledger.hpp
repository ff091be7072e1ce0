// The ledger on SQLite: one writer thread with group commit, a SHA-256 hash chain, signed
// checkpoints, projections updated in the same transaction as their events, and a pool of read
// connections for queries. The rest of the server sees it as a ledger::Ledger.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hwl/clock.hpp"
#include "hwl/crypto.hpp"
#include "hwl/result.hpp"
#include "ledger/store.hpp"
#include "projection.hpp"
#include "sqlite.hpp"

namespace hwl::storage {

using ledger::AppendRequest;
using ledger::AppendResult;
using ledger::Checkpoint;
using ledger::Event;
using ledger::EventQuery;
using ledger::VerifyReport;

struct LedgerOptions {
  std::filesystem::path db_path;
  bool create = false;
  // Sign a checkpoint at every multiple of this seq, and at close().
  int64_t checkpoint_every = 1000;
  std::filesystem::path checkpoint_log;   // exported checkpoints (one JSON line each); may be empty
  std::shared_ptr<EVP_PKEY> signing_key;  // Ed25519; without it no checkpoints are signed
  const Clock* clock = &SystemClock::instance();
  size_t max_batch_events = 4096;
  size_t readers = 4;
  std::vector<std::unique_ptr<Projection>> projections;
};

struct VerifyOptions {
  std::shared_ptr<EVP_PKEY> public_key;  // checks checkpoint signatures when set
  std::filesystem::path checkpoint_log;  // exported checkpoints to check too; may be empty
};
// Recomputes every hash from genesis on `db` and checks the checkpoints (table and log).
VerifyReport verifyDatabase(sqlite::Db& db, const VerifyOptions& opts);

// Every event of `type` in the database, in seq order (for reading a copy offline).
Result<std::vector<Event>> readEventsOfType(sqlite::Db& db, std::string_view type);

class SqliteLedger final : public ledger::Ledger {
 public:
  static Result<std::unique_ptr<SqliteLedger>> open(LedgerOptions opts);
  ~SqliteLedger() override;
  SqliteLedger(const SqliteLedger&) = delete;
  SqliteLedger& operator=(const SqliteLedger&) = delete;

  using ledger::Ledger::append;
  Result<AppendResult> append(AppendRequest req) override;
  void appendAsync(AppendRequest req, Callback done) override;
  Result<std::vector<Event>> read(const EventQuery& q) override;
  int64_t waitForHead(int64_t seq, std::chrono::milliseconds timeout) override;
  [[nodiscard]] int64_t headSeq() const override;
  Result<std::vector<Checkpoint>> checkpoints(int64_t after, int64_t limit) override;
  VerifyReport verify() override;
  Result<int64_t> streamVersion(std::string_view stream) override;
  Status telemetrySpans(int64_t from_ms, int64_t to_ms, bool whole_days,
                        const ledger::SpanVisitor& fn) override;

  // Runs `fn(sqlite::Db&)` with a read-only connection from the pool (this backend's own
  // queries: the time series, tests).
  template <typename F>
  auto withDb(F&& fn) {
    auto db = takeReader();
    struct Give {
      SqliteLedger* l;
      std::unique_ptr<sqlite::Db>& d;
      ~Give() { l->giveReader(std::move(d)); }
    } give{this, db};
    return fn(*db);
  }
  // The version of `stream` on a connection of the caller's.
  static Result<int64_t> streamVersionOn(sqlite::Db& db, std::string_view stream);

  // Runs `task` on the writer connection, between appends; `done` runs on the writer thread.
  // The task manages its own transaction. For observations that are not events (time series).
  void runTaskAsync(std::function<Status(sqlite::Db&)> task, std::function<void(Status)> done);
  Status runTask(std::function<Status(sqlite::Db&)> task);

  // Stops taking appends, commits what is queued, signs a final checkpoint. Idempotent.
  void close();

  // Drops the projection tables' rows and replays every event into them, in one transaction.
  Status rebuildProjections();
  // SHA-256 over a table's rows in primary-key order (for byte-identical rebuild checks).
  Result<std::string> tableDigest(const std::string& table);
  [[nodiscard]] std::vector<std::string> projectionTables() const;

 protected:
  void view(bool snapshot, const std::function<void(ledger::ReadView&)>& fn) override;

 private:
  explicit SqliteLedger(LedgerOptions opts);
  struct Pending {
    AppendRequest req;
    Callback done;
    std::function<Status(sqlite::Db&)> task;  // maintenance work run alone on the writer
    std::function<void(Status)> task_done;
  };
  struct Stmts;
  Status init();
  Status replayInto(sqlite::Db& db);
  void writerLoop();
  void commitBatch(std::vector<Pending>& batch);
  Result<AppendResult> applyOne(const AppendRequest& req, std::vector<Checkpoint>& cps);
  std::string nextEventId();
  Result<Checkpoint> signCheckpoint(int64_t seq, const crypto::Digest& hash);
  Status exportCheckpoints(const std::vector<Checkpoint>& cps);
  Status reconcileCheckpointLog();
  std::unique_ptr<sqlite::Db> takeReader();
  void giveReader(std::unique_ptr<sqlite::Db> db);

  LedgerOptions opts_;
  std::unique_ptr<sqlite::Db> writer_;
  std::unique_ptr<Stmts> stmts_;
  int64_t last_checkpoint_seq_ = 0;
  std::string id_random_;
  size_t id_random_pos_ = 0;
  uint32_t id_counter_ = 0;
  crypto::Sha256 hasher_;
  int64_t head_seq_ = 0;  // writer thread only (mirrored into published_seq_)
  crypto::Digest head_hash_{};

  mutable std::mutex mu_;
  std::condition_variable queue_cv_;
  std::condition_variable head_cv_;
  std::deque<Pending> queue_;
  bool closing_ = false;
  bool closed_ = false;
  int64_t published_seq_ = 0;
  std::thread writer_thread_;

  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<std::unique_ptr<sqlite::Db>> readers_;
};

}  // namespace hwl::storage
