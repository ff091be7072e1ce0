// A job's log files: job.log (current) and job.log.1 … job.log.<keep> (older), size-rotated.
//
// The job writes straight into job.log through an fd opened O_APPEND by the supervisor and
// inherited as stdout and stderr, so logging does not depend on the agent being alive: after an
// agent SIGKILL the job keeps logging, and a re-adopted job's log is still there. Rotation is
// copytruncate-style (logrotate's `copytruncate`): when job.log exceeds max_bytes the supervisor
// shifts job.log.N, copies job.log to job.log.1 and truncates job.log to zero; O_APPEND makes the
// job's next write land at the new end. Bytes the job writes between the copy and the truncate
// are lost — a window of one file copy, accepted as the price of not relaying every byte.
//
// Log offsets given to readFrom() are positions in the job's whole output stream: `base` (bytes
// rotated out so far, kept in the job record) plus the position in job.log.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "hwl/result.hpp"

namespace hwl::jobs {

struct LogChunk {
  std::string data;
  uint64_t offset = 0;       // stream offset of data[0] (> the asked offset if bytes were gone)
  uint64_t next_offset = 0;  // pass back to continue following
};

class JobLog {
 public:
  JobLog(std::filesystem::path dir, uint64_t max_bytes, uint32_t keep)
      : dir_(std::move(dir)), max_bytes_(max_bytes), keep_(keep) {}

  [[nodiscard]] std::filesystem::path current() const { return dir_ / "job.log"; }
  [[nodiscard]] std::filesystem::path rotated(uint32_t n) const;

  // Rotates when job.log is over max_bytes; returns the new stream base (base + bytes moved).
  Result<uint64_t> rotateIfNeeded(uint64_t base) const;

  // The last `lines` lines, reaching into job.log.1 … when job.log holds fewer.
  [[nodiscard]] Result<std::string> tail(size_t lines) const;

  // Up to max_bytes from stream offset `offset`; if those bytes were rotated away, starts at the
  // oldest byte still kept.
  [[nodiscard]] Result<LogChunk> readFrom(uint64_t base, uint64_t offset, size_t max_bytes) const;

 private:
  std::filesystem::path dir_;
  uint64_t max_bytes_;
  uint32_t keep_;
};

}  // namespace hwl::jobs
