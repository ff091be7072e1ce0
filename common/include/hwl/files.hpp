// File primitives shared by the server and the agent: an owning file descriptor, whole-file reads
// with a size bound, and durable atomic replacement of a file. The one place that knows how a file
// is made durable (what to fsync and in which order) and how a secret file is created.
//
// The namespace is `files`, not `fs`: most sources alias `fs` to std::filesystem.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "hwl/result.hpp"

namespace hwl::files {

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

inline constexpr size_t kDefaultMaxReadBytes = size_t{64} << 20;

// The whole content of `path`, read to end of file: files that report size 0 (procfs) or a page
// (sysfs) read in full. kNotFound when the file or a directory on its path does not exist,
// kInvalidArgument when it holds more than `max_bytes`, kInternal on other errors; each message
// names the path.
Result<std::string> readFile(const std::filesystem::path& path,
                             size_t max_bytes = kDefaultMaxReadBytes);

// Replaces `path` with `content` atomically and durably: a new temporary file in the same
// directory, write, fsync, rename over `path`, fsync of the directory. A crash at any point leaves
// the old or the new content, never a mix; success means both the content and the rename are on
// disk. The file is created with `mode` (narrowed by the umask, so it is never more open than
// `mode`) and then set to exactly `mode` before it gets its name. kInternal on failure, after
// which `path` is unchanged unless only the final directory fsync failed; no temporary file is
// left behind unless the process dies.
Status writeFileAtomic(const std::filesystem::path& path, std::string_view content,
                       mode_t mode = 0600);

// Removes the temporary files that writeFileAtomic(path) leaves behind when its process dies
// between creating one and renaming it ("<path>.tmp.<pid>.<n>"), and nothing else. For the owner
// of `path` at start-up, when no other writer of it runs. Returns how many it removed.
Result<size_t> removeTemporaries(const std::filesystem::path& path);

}  // namespace hwl::files
