// The agent's outbox: a durable, sequenced on-disk journal of job and probe events that the
// server drains with GET /v1/outbox?after=SEQ and appends to the ledger idempotently.
//
// On disk: one file, `<dir>/outbox.journal`, a sequence of records
//   "HWO1" | u32 payload length (LE) | u32 CRC-32C of payload (LE) | payload (JSON)
// A payload is an entry, {"seq":N,"id":"<host-id>:N","type":"job.started","time_ms":T,"data":{…}},
// or, as the first record after a compaction, a marker {"compacted_through":N}.
//
// Durability: append() writes one record and fdatasync()s it before returning, so an entry that
// append() returned is on disk. A SIGKILL or power cut can only tear the last record; open()
// detects it (short header, bad magic, short payload, CRC or JSON mismatch, non-increasing seq),
// truncates the file there and reports the discarded byte count in stats(). Seqs are never reused:
// the next seq is one past the highest seq ever written, including compacted ones.
//
// Bound: at most `max_entries` undrained entries. acknowledge(seq) — called when the server asks
// for entries after `seq`, which proves it has stored everything up to `seq` — marks entries as
// drained; drained entries are compacted away (the file is rewritten atomically) once they make
// up a quarter of the capacity, or at once when the journal is full. When the journal holds
// `max_entries` undrained entries, append() refuses with kResourceExhausted and writes nothing:
// the outbox never drops an undrained entry to make room. stats().near_full turns on at
// `near_full_ratio` of capacity so callers (the job supervisor refuses new jobs, /metrics exports
// it) can act before that happens.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/clock.hpp"
#include "hwl/files.hpp"
#include "hwl/result.hpp"

namespace hwl::outbox {

struct Entry {
  uint64_t seq = 0;
  std::string id;  // "<host-id>:<seq>", stable across restarts: the ledger's idempotency key
  std::string type;
  int64_t time_ms = 0;
  boost::json::object data;

  [[nodiscard]] boost::json::object toJson() const;
};

struct Settings {
  std::filesystem::path dir;  // created if missing (0700)
  std::string host_id;        // must be non-empty; goes into every entry id
  uint64_t max_entries = 100000;
  double near_full_ratio = 0.8;
  const Clock* clock = nullptr;  // time_ms of entries; nullptr: SystemClock
};

struct Stats {
  uint64_t entries = 0;   // undrained entries (seq > acknowledged_seq)
  uint64_t capacity = 0;  // max_entries
  bool near_full = false;
  uint64_t stored = 0;  // entries in the journal file, drained ones not yet compacted included
  uint64_t last_seq = 0;
  uint64_t acknowledged_seq = 0;
  uint64_t file_bytes = 0;
  uint64_t discarded_tail_bytes = 0;  // torn tail removed by the last open()
};

inline constexpr size_t kMaxEntryBytes = 256 * 1024;
inline constexpr std::string_view kJournalFile = "outbox.journal";

class Outbox {
 public:
  static Result<std::unique_ptr<Outbox>> open(Settings settings);

  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  ~Outbox() = default;

  // Appends one entry, durably. kResourceExhausted when full of undrained entries (nothing
  // written), kInvalidArgument for an empty type or an entry over kMaxEntryBytes, kInternal on a
  // disk error (the journal is then reopened on the next call; the entry is not acknowledged).
  Result<Entry> append(std::string_view type, boost::json::object data);

  // Entries with seq > after_seq, in seq order, at most `limit`. Drained entries that were not yet
  // compacted are still returned.
  [[nodiscard]] std::vector<Entry> read(uint64_t after_seq, size_t limit) const;

  // Marks every entry with seq <= through_seq as drained (clamped to the last seq) and compacts
  // when worthwhile. Idempotent; a lower seq than already acknowledged changes nothing.
  Status acknowledge(uint64_t through_seq);

  [[nodiscard]] Stats stats() const;
  [[nodiscard]] uint64_t lastSeq() const;
  [[nodiscard]] const std::filesystem::path& journalPath() const { return path_; }

 private:
  explicit Outbox(Settings settings);
  Status load();
  Status compactLocked();
  [[nodiscard]] uint64_t pendingLocked() const;

  Settings settings_;
  const Clock* clock_;
  std::filesystem::path path_;
  mutable std::mutex mu_;
  files::UniqueFd fd_;
  std::deque<Entry> entries_;  // every entry still in the journal file, in seq order
  uint64_t next_seq_ = 1;
  uint64_t acked_ = 0;
  uint64_t file_bytes_ = 0;
  uint64_t discarded_ = 0;
  bool broken_ = false;  // a write failed: reopen (and re-validate the tail) before the next append
};

// Encodes one journal record (header + payload); exposed for tests that forge journals.
std::string encodeRecord(std::string_view payload);

}  // namespace hwl::outbox
