// The event store: one writer thread with group commit, a SHA-256 hash chain, signed checkpoints,
// projections updated in the same transaction, and read connections for queries.
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

#include "event.hpp"
#include "hwl/clock.hpp"
#include "hwl/crypto.hpp"
#include "hwl/result.hpp"
#include "projection.hpp"
#include "sqlite.hpp"

namespace hwl::ledger {

struct LedgerOptions {
  std::filesystem::path db_path;
  bool create = false;
  // Sign a checkpoint at every multiple of this seq, and at close().
  int64_t checkpoint_every = 1000;
  std::filesystem::path checkpoint_log;  // exported checkpoints (one JSON line each); may be empty
  std::shared_ptr<EVP_PKEY> signing_key;  // Ed25519; without it no checkpoints are signed
  const Clock* clock = &SystemClock::instance();
  size_t max_batch_events = 4096;
  size_t readers = 4;
  std::vector<std::unique_ptr<Projection>> projections;
};

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
  boost::json::object toJson() const;
};

struct VerifyOptions {
  std::shared_ptr<EVP_PKEY> public_key;   // checks checkpoint signatures when set
  std::filesystem::path checkpoint_log;  // exported checkpoints to check too; may be empty
};
// Recomputes every hash from genesis on `db` and checks the checkpoints (table and log).
VerifyReport verifyDatabase(sqlite::Db& db, const VerifyOptions& opts);

struct EventQuery {
  int64_t after = 0;
  int64_t limit = 100;
  std::string stream;  // exact match when not empty
  std::string type;    // exact match when not empty
};

class Ledger {
 public:
  static Result<std::unique_ptr<Ledger>> open(LedgerOptions opts);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Queues the request and blocks until it is committed (or refused).
  Result<AppendResult> append(AppendRequest req);
  using Callback = std::function<void(Result<AppendResult>)>;
  // Queues the request; `done` runs on the writer thread after COMMIT.
  void appendAsync(AppendRequest req, Callback done);
  // Shorthand for one stream.
  Result<AppendResult> append(std::string stream, int64_t expected_version, std::string actor,
                              std::vector<NewEvent> events);

  Result<std::vector<Event>> read(const EventQuery& q);
  // Waits until the head passes `seq` or the timeout elapses; returns the head seq.
  int64_t waitForHead(int64_t seq, std::chrono::milliseconds timeout);
  [[nodiscard]] int64_t headSeq() const;
  Result<std::vector<Checkpoint>> checkpoints(int64_t after, int64_t limit);
  VerifyReport verify();

  // The version of `stream` (its number of events, 0 when it has none), as committed now. Read it
  // before checking the state an append depends on and pass it as the expected version: an append
  // that committed after the read then makes this one fail instead of both succeeding.
  Result<int64_t> streamVersion(std::string_view stream);

  // Runs `fn` with a read-only connection from the pool.
  template <typename F>
  auto withReader(F&& fn) {
    auto db = takeReader();
    struct Give {
      Ledger* l;
      std::unique_ptr<sqlite::Db>& d;
      ~Give() { l->giveReader(std::move(d)); }
    } give{this, db};
    return fn(*db);
  }

  // As withReader, inside one read transaction: every query of `fn` sees the same committed
  // state (a version read with the rows it guards).
  template <typename F>
  auto withSnapshot(F&& fn) {
    return withReader([&](sqlite::Db& db) {
      (void)db.exec("BEGIN");
      struct End {
        sqlite::Db& d;
        ~End() { (void)d.exec("COMMIT"); }
      } end{db};
      return fn(db);
    });
  }
  // The version of `stream` on a connection of the caller's (inside withSnapshot).
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

 private:
  explicit Ledger(LedgerOptions opts);
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

}  // namespace hwl::ledger
