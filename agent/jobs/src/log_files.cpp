// Job log rotation, tail and follow (design in log_files.hpp).
#include "hwl/jobs/log_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "hwl/outbox/fs.hpp"

namespace hwl::jobs {
namespace {

using outbox::UniqueFd;

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
    return internal(outbox::errnoMessage("open " + p.string()));
  }
  std::string out(max, '\0');
  size_t got = 0;
  while (got < max) {
    const ssize_t n = ::pread(fd.get(), out.data() + got, max - got, static_cast<off_t>(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return internal(outbox::errnoMessage("read " + p.string()));
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
    if (::truncate(cur.c_str(), 0) != 0) return internal(outbox::errnoMessage("truncate log"));
    return base + size;
  }
  ::unlink(rotated(keep_).c_str());
  for (uint32_t n = keep_; n > 1; --n) {
    if (fileExists(rotated(n - 1)) && ::rename(rotated(n - 1).c_str(), rotated(n).c_str()) != 0) {
      return internal(outbox::errnoMessage("rotate log"));
    }
  }
  // Copy then truncate: the job's O_APPEND fd keeps pointing at job.log.
  UniqueFd in(::open(cur.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return internal(outbox::errnoMessage("open " + cur.string()));
  UniqueFd out(::open(rotated(1).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!out.valid()) return internal(outbox::errnoMessage("open " + rotated(1).string()));
  uint64_t copied = 0;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return internal(outbox::errnoMessage("read " + cur.string()));
    if (n == 0) break;
    if (auto st = outbox::writeAll(out.get(), std::string_view(buf, static_cast<size_t>(n))); !st) {
      return st.error();
    }
    copied += static_cast<uint64_t>(n);
  }
  if (::ftruncate(in.get(), 0) != 0 && ::truncate(cur.c_str(), 0) != 0) {
    return internal(outbox::errnoMessage("truncate " + cur.string()));
  }
  return base + copied;
}

Result<std::string> JobLog::tail(size_t lines) const {
  if (lines == 0) return std::string();
  // Newest first: job.log, job.log.1, …
  std::vector<std::filesystem::path> files{current()};
  for (uint32_t n = 1; n <= keep_; ++n) files.push_back(rotated(n));
  std::string acc;
  for (const auto& f : files) {
    if (!fileExists(f)) break;
    auto content = outbox::readFile(f);
    if (!content) return content.error();
    acc = *content + acc;
    size_t count = 0;
    size_t end = acc.size();
    if (end > 0 && acc[end - 1] == '\n') --end;
    for (size_t i = end; i > 0; --i) {
      if (acc[i - 1] == '\n' && ++count == lines) return acc.substr(i);
    }
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
