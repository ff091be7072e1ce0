// A job's log files: job.log (current) and job.log.1 … job.log.<keep> (older), size-rotated.
//
// The job's stdout and stderr are a pipe read by the job's monitor process (job_monitor.hpp),
// which appends to job.log through a LogWriter and rotates by rename when job.log reaches
// max_bytes: job.log.N-1 → job.log.N, job.log → job.log.1, a new job.log. Nothing is copied and
// nothing is lost, and the bound holds however fast the job writes: the monitor writes at most
// max_bytes into a file before rotating, so the directory never holds more than
// (keep + 1) × max_bytes of log; a job that outruns the disk blocks on its full pipe. The monitor
// outlives an agent restart, so logging does not depend on the agent being alive.
//
// Log offsets given to readFrom() are positions in the job's whole output stream: `base` (bytes
// rotated out so far, which the writer keeps in job.log.base) plus the position in job.log.
//
// Jobs started by an older agent wrote into job.log directly; rotateIfNeeded() still rotates
// those copytruncate-style.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

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
  [[nodiscard]] std::filesystem::path baseFile() const { return dir_ / "job.log.base"; }

  // The stream offset of job.log's first byte as the writer recorded it (0 if none).
  [[nodiscard]] uint64_t base() const;

  // Copytruncate rotation for jobs writing job.log themselves (started by an older agent):
  // rotates when job.log is over max_bytes; returns the new stream base (base + bytes moved).
  Result<uint64_t> rotateIfNeeded(uint64_t base) const;

  // The last `lines` lines, reaching into job.log.1 … when job.log holds fewer, but never more
  // than the last `max_bytes` bytes (read backwards from the end: a huge line costs nothing).
  [[nodiscard]] Result<std::string> tail(size_t lines, size_t max_bytes = 1 << 20) const;

  // Up to max_bytes from stream offset `offset`; if those bytes were rotated away, starts at the
  // oldest byte still kept.
  [[nodiscard]] Result<LogChunk> readFrom(uint64_t base, uint64_t offset, size_t max_bytes) const;
  // The same with the writer's current base, retried if a rotation happened meanwhile.
  [[nodiscard]] Result<LogChunk> readFrom(uint64_t offset, size_t max_bytes) const;

 private:
  std::filesystem::path dir_;
  uint64_t max_bytes_;
  uint32_t keep_;
};

// The writing side, used by the job's monitor process: append, rotate by rename, record the base.
// Write errors (a full disk) drop the bytes rather than stall the job.
class LogWriter {
 public:
  LogWriter(std::filesystem::path dir, uint64_t max_bytes, uint32_t keep);
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;
  ~LogWriter();

  // Opens (or continues) job.log; false if it cannot be opened.
  bool open();
  void write(const char* data, size_t n);
  [[nodiscard]] uint64_t base() const { return base_; }

 private:
  void rotate();
  void saveBase() const;

  JobLog log_;
  std::string cur_;
  std::string base_file_;
  std::string base_tmp_;
  std::vector<std::string> rotated_;  // [0] = job.log.1
  uint64_t max_bytes_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t base_ = 0;
};

}  // namespace hwl::jobs
