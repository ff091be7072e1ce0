// Shared pieces of the fuzz targets: invariant checks that abort (a crash for libFuzzer, a failed
// test for the corpus replay), scratch directories on tmpfs, and small conversions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace hwl::fuzz {

// Prints the broken invariant and aborts.
[[noreturn]] void fail(const char* condition, const char* file, int line, std::string_view detail);

#define HWL_FUZZ_CHECK(cond, detail)                                     \
  do {                                                                   \
    if (!(cond)) ::hwl::fuzz::fail(#cond, __FILE__, __LINE__, (detail)); \
  } while (false)

inline std::string_view text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A fresh directory under $HWL_FUZZ_SCRATCH, else /dev/shm (tmpfs: fsync is cheap there), else
// the temp directory; removed when the object is destroyed.
class ScratchDir {
 public:
  explicit ScratchDir(std::string_view name);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Splits a fuzz input at the first `sep`: {before, after}; {input, ""} when absent.
std::pair<std::string_view, std::string_view> splitOnce(std::string_view s, char sep);

}  // namespace hwl::fuzz
