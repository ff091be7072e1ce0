// File helpers for durable state: an owning fd, atomic file replacement, directory fsync.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "hwl/result.hpp"

namespace hwl::outbox {

// Owns one file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// errno rendered as "what: strerror".
std::string errnoMessage(std::string_view what);

// Writes all of `data`, retrying on EINTR and short writes.
Status writeAll(int fd, std::string_view data);

// fsync of a directory, so a rename or create inside it is durable.
Status fsyncDir(const std::filesystem::path& dir);

// Replaces `path` with `content` atomically and durably: write tmp, fsync, rename, fsync dir.
// A crash at any point leaves either the old or the new content, never a mix.
Status writeFileAtomic(const std::filesystem::path& path, std::string_view content,
                       int mode = 0600);

// Reads a whole (small) file.
Result<std::string> readFile(const std::filesystem::path& path);

}  // namespace hwl::outbox
