// Invariant failures, scratch directories.
#include "fuzz_support.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <system_error>

namespace hwl::fuzz {

void fail(const char* condition, const char* file, int line, std::string_view detail) {
  std::fprintf(stderr, "fuzz invariant failed: %s\n  at %s:%d\n  %.*s\n", condition, file, line,
               static_cast<int>(std::min<size_t>(detail.size(), 2000)), detail.data());
  std::fflush(stderr);
  std::abort();
}

ScratchDir::ScratchDir(std::string_view name) {
  static std::atomic<int> counter{0};
  std::error_code ec;
  const char* env = std::getenv("HWL_FUZZ_SCRATCH");
  std::filesystem::path base = env != nullptr && *env != '\0' ? env : "/dev/shm";
  if (!std::filesystem::is_directory(base, ec) || ::access(base.c_str(), W_OK) != 0)
    base = std::filesystem::temp_directory_path();
  path_ = base / ("hwl-fuzz-" + std::string(name) + "-" + std::to_string(::getpid()) + "-" +
                  std::to_string(counter++));
  std::filesystem::remove_all(path_, ec);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::pair<std::string_view, std::string_view> splitOnce(std::string_view s, char sep) {
  auto i = s.find(sep);
  if (i == std::string_view::npos) return {s, {}};
  return {s.substr(0, i), s.substr(i + 1)};
}

}  // namespace hwl::fuzz
