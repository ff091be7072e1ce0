// Job log rotation, tail and follow (design in log_files.hpp).
#include "hwl/jobs/log_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "hwl/files.hpp"

namespace hwl::jobs {
namespace {

using files::UniqueFd;

uint64_t fileSize(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

bool fileExists(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

Result<std::string> readRange(const std::filesystem::path& p, uint64_t off, size_t max) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::string();
    return internal(files::errnoMessage("open " + p.string()));
  }
  std::string out(max, '\0');
  size_t got = 0;
  while (got < max) {
    const ssize_t n = ::pread(fd.get(), out.data() + got, max - got, static_cast<off_t>(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return internal(files::errnoMessage("read " + p.string()));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

}  // namespace

std::filesystem::path JobLog::rotated(uint32_t n) const {
  return dir_ / ("job.log." + std::to_string(n));
}

Result<uint64_t> JobLog::rotateIfNeeded(uint64_t base) const {
  const auto cur = current();
  if (fileSize(cur) <= max_bytes_) return base;
  if (keep_ == 0) {
    const uint64_t size = fileSize(cur);
    if (::truncate(cur.c_str(), 0) != 0) return internal(files::errnoMessage("truncate log"));
    return base + size;
  }
  ::unlink(rotated(keep_).c_str());
  for (uint32_t n = keep_; n > 1; --n) {
    if (fileExists(rotated(n - 1)) && ::rename(rotated(n - 1).c_str(), rotated(n).c_str()) != 0) {
      return internal(files::errnoMessage("rotate log"));
    }
  }
  // Copy then truncate: the job's O_APPEND fd keeps pointing at job.log.
  UniqueFd in(::open(cur.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return internal(files::errnoMessage("open " + cur.string()));
  UniqueFd out(::open(rotated(1).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!out.valid()) return internal(files::errnoMessage("open " + rotated(1).string()));
  uint64_t copied = 0;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return internal(files::errnoMessage("read " + cur.string()));
    if (n == 0) break;
    if (auto st = files::writeAll(out.get(), std::string_view(buf, static_cast<size_t>(n))); !st) {
      return st.error();
    }
    copied += static_cast<uint64_t>(n);
  }
  if (::ftruncate(in.get(), 0) != 0 && ::truncate(cur.c_str(), 0) != 0) {
    return internal(files::errnoMessage("truncate " + cur.string()));
  }
  return base + copied;
}

Result<std::string> JobLog::tail(size_t lines, size_t max_bytes) const {
  if (lines == 0 || max_bytes == 0) return std::string();
  // Newest first: job.log, job.log.1, …; each read backwards in blocks from its end.
  std::vector<std::filesystem::path> files{current()};
  for (uint32_t n = 1; n <= keep_; ++n) files.push_back(rotated(n));
  std::string acc;
  // Where the wanted lines start in acc, once `lines` line breaks precede the last line.
  auto start = [&]() -> std::optional<size_t> {
    size_t count = 0;
    size_t end = acc.size();
    if (end > 0 && acc[end - 1] == '\n') --end;
    for (size_t i = end; i > 0; --i) {
      if (acc[i - 1] == '\n' && ++count == lines) return i;
    }
    return std::nullopt;
  };
  for (const auto& f : files) {
    UniqueFd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) break;
      return internal(files::errnoMessage("open " + f.string()));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return internal(files::errnoMessage("stat " + f.string()));
    auto pos = static_cast<uint64_t>(st.st_size);
    while (pos > 0 && acc.size() < max_bytes) {
      const size_t want = static_cast<size_t>(
          std::min<uint64_t>({pos, 65536, static_cast<uint64_t>(max_bytes - acc.size())}));
      std::string block(want, '\0');
      size_t got = 0;
      while (got < want) {
        const ssize_t n =
            ::pread(fd.get(), block.data() + got, want - got, static_cast<off_t>(pos - want + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return internal(files::errnoMessage("read " + f.string()));
        if (n == 0) break;  // truncated meanwhile
        got += static_cast<size_t>(n);
      }
      block.resize(got);
      if (got == 0) break;
      pos -= want;
      acc.insert(0, block);
      if (auto s = start()) return acc.substr(*s);
    }
    if (acc.size() >= max_bytes) break;
  }
  return acc;
}

Result<LogChunk> JobLog::readFrom(uint64_t base, uint64_t offset, size_t max_bytes) const {
  LogChunk chunk;
  if (offset >= base) {
    auto data = readRange(current(), offset - base, max_bytes);
    if (!data) return data.error();
    chunk.offset = offset;
    chunk.data = std::move(*data);
    chunk.next_offset = offset + chunk.data.size();
    return chunk;
  }
  // The offset lies in a rotated file: job.log.n starts at base - size(.1) - … - size(.n).
  uint64_t start = base;
  for (uint32_t n = 1; n <= keep_ && fileExists(rotated(n)); ++n) {
    const uint64_t size = fileSize(rotated(n));
    start = start >= size ? start - size : 0;
    if (offset >= start || n == keep_ || !fileExists(rotated(n + 1))) {
      const uint64_t from = std::max(offset, start);
      auto data = readRange(rotated(n), from - start, max_bytes);
      if (!data) return data.error();
      chunk.offset = from;
      chunk.data = std::move(*data);
      chunk.next_offset = from + chunk.data.size();
      if (chunk.data.empty()) chunk.next_offset = start + size;
      return chunk;
    }
  }
  return readFrom(base, base, max_bytes);
}

}  // namespace hwl::jobs

namespace hwl::jobs {

uint64_t JobLog::base() const {
  auto text = files::readFile(baseFile());
  if (!text) return 0;
  return std::strtoull(text->c_str(), nullptr, 10);
}

Result<LogChunk> JobLog::readFrom(uint64_t offset, size_t max_bytes) const {
  for (int attempt = 0;; ++attempt) {
    const uint64_t before = base();
    auto chunk = readFrom(before, offset, max_bytes);
    if (!chunk || attempt == 3 || base() == before) return chunk;
  }
}

LogWriter::LogWriter(std::filesystem::path dir, uint64_t max_bytes, uint32_t keep)
    : log_(std::move(dir), max_bytes, keep), max_bytes_(max_bytes) {
  cur_ = log_.current().string();
  base_file_ = log_.baseFile().string();
  base_tmp_ = base_file_ + ".tmp";
  for (uint32_t n = 1; n <= keep; ++n) rotated_.push_back(log_.rotated(n).string());
}

LogWriter::~LogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

bool LogWriter::open() {
  fd_ = ::open(cur_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) return false;
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  base_ = log_.base();
  return true;
}

void LogWriter::write(const char* data, size_t n) {
  while (n > 0) {
    if (max_bytes_ > 0 && size_ >= max_bytes_) rotate();
    size_t chunk = n;
    if (max_bytes_ > 0) chunk = static_cast<size_t>(std::min<uint64_t>(n, max_bytes_ - size_));
    const ssize_t w = fd_ < 0 ? -1 : ::write(fd_, data, chunk);
    if (w < 0 && errno == EINTR) continue;
    // A failed write (full disk) drops the bytes but still counts them as a rotation would, so
    // the files never grow past the bound once space returns.
    const size_t done = w > 0 ? static_cast<size_t>(w) : chunk;
    size_ += done;
    data += done;
    n -= done;
  }
}

void LogWriter::rotate() {
  if (rotated_.empty()) {
    if (fd_ >= 0) (void)::ftruncate(fd_, 0);
  } else {
    ::unlink(rotated_.back().c_str());
    for (size_t i = rotated_.size() - 1; i > 0; --i) {
      ::rename(rotated_[i - 1].c_str(), rotated_[i].c_str());
    }
    ::rename(cur_.c_str(), rotated_.front().c_str());
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(cur_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  }
  base_ += size_;
  size_ = 0;
  saveBase();
}

void LogWriter::saveBase() const {
  char text[32];
  const int len =
      std::snprintf(text, sizeof text, "%llu\n", static_cast<unsigned long long>(base_));
  const int fd = ::open(base_tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return;
  const bool ok = len > 0 && ::write(fd, text, static_cast<size_t>(len)) == len;
  ::close(fd);
  if (ok) ::rename(base_tmp_.c_str(), base_file_.c_str());
}

}  // namespace hwl::jobs
