// File helpers for durable state (see fs.hpp).
#include "hwl/outbox/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hwl::outbox {

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

Status writeFileAtomic(const std::filesystem::path& path, std::string_view content, int mode) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    UniqueFd fd(
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode)));
    if (!fd.valid()) return internal(errnoMessage("open " + tmp.string()));
    if (auto st = writeAll(fd.get(), content); !st) return st;
    if (::fsync(fd.get()) != 0) return internal(errnoMessage("fsync " + tmp.string()));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return internal(errnoMessage("rename " + tmp.string()));
  }
  return fsyncDir(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
}

Result<std::string> readFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return notFound(path.string() + " does not exist");
    return internal(errnoMessage("open " + path.string()));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return internal(errnoMessage("read " + path.string()));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace hwl::outbox
