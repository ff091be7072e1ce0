// File primitives (see files.hpp): reads bounded by size, durable atomic replacement.
#include "hwl/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace hwl::files {
namespace {

std::filesystem::path directoryOf(const std::filesystem::path& path) {
  return path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
}

// A name no other writer uses: two threads or processes replacing the same file each rename
// their own complete temporary, and O_EXCL never reopens a stale one left by a crash (whose
// permissions could be wider than `mode`).
// "<path>" + kTemporaryInfix + "<pid>.<n>"; removeTemporaries() recognises exactly this form.
constexpr std::string_view kTemporaryInfix = ".tmp.";

std::filesystem::path temporaryName(const std::filesystem::path& path) {
  static std::atomic<unsigned long> counter{0};
  std::filesystem::path tmp = path;
  tmp += std::string(kTemporaryInfix) + std::to_string(::getpid()) + "." +
         std::to_string(counter.fetch_add(1));
  return tmp;
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::string errnoMessage(std::string_view what) {
  return std::string(what) + ": " + std::strerror(errno);
}

Status writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return internal(errnoMessage("write"));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status fsyncDir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return internal(errnoMessage("open " + dir.string()));
  if (::fsync(fd.get()) != 0) return internal(errnoMessage("fsync " + dir.string()));
  return {};
}

Result<std::string> readFile(const std::filesystem::path& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) return notFound(path.string() + " does not exist");
    return internal(errnoMessage("open " + path.string()));
  }
  std::string out;
  // st_size only sizes the first allocation: procfs says 0 and sysfs a page whatever the content,
  // so the loop below reads to end of file regardless.
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    out.reserve(std::min(static_cast<size_t>(st.st_size), max_bytes));
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return internal(errnoMessage("read " + path.string()));
    }
    if (n == 0) break;
    if (static_cast<size_t>(n) > max_bytes - out.size()) {
      return invalidArgument(path.string() + " is larger than " + std::to_string(max_bytes) +
                             " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status writeFileAtomic(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  const std::filesystem::path tmp = temporaryName(path);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return internal(errnoMessage("create " + tmp.string()));
  auto fail = [&](Error e) -> Status {
    fd.reset();
    ::unlink(tmp.c_str());
    return e;
  };
  if (auto st = writeAll(fd.get(), content); !st) {
    return fail(internal(st.error().message + " (" + tmp.string() + ")"));
  }
  // The umask may have narrowed `mode` at creation; a public file (0644) must still end up
  // readable by others, and the file has no name yet that anyone could open meanwhile.
  if (::fchmod(fd.get(), mode) != 0) return fail(internal(errnoMessage("chmod " + tmp.string())));
  if (::fsync(fd.get()) != 0) return fail(internal(errnoMessage("fsync " + tmp.string())));
  // close() can report a deferred write error (NFS); EINTR still closes the descriptor on Linux.
  if (::close(fd.release()) != 0 && errno != EINTR) {
    return fail(internal(errnoMessage("close " + tmp.string())));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(internal(errnoMessage("rename " + tmp.string() + " to " + path.string())));
  }
  return fsyncDir(directoryOf(path));
}

Result<size_t> removeTemporaries(const std::filesystem::path& path) {
  const std::string prefix = path.filename().string() + std::string(kTemporaryInfix);
  auto isTemporary = [&](const std::string& name) {
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
    // "<pid>.<n>": two runs of digits around one dot.
    const std::string rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) return false;
    for (size_t i = 0; i < rest.size(); ++i)
      if (i != dot && (rest[i] < '0' || rest[i] > '9')) return false;
    return true;
  };
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return internal("list " + dir.string() + ": " + ec.message());
  size_t removed = 0;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (!isTemporary(name) || !entry.is_regular_file(ec)) continue;
    if (!std::filesystem::remove(entry.path(), ec) || ec)
      return internal("remove " + entry.path().string() + ": " + ec.message());
    ++removed;
  }
  return removed;
}

}  // namespace hwl::files
