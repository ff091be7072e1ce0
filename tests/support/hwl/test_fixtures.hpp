// Where the tests find recorded captures and model configs: the small set in tests/fixtures
// first, then the larger data sets in ../shared/data beside the checkout (when present).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace hwl::test_fixtures {

inline std::filesystem::path inRepo() { return HWL_FIXTURES_DIR; }
inline std::filesystem::path sharedData() { return HWL_SHARED_DATA_DIR; }

// True when ../shared/data holds both the telemetry captures and the model configs.
inline bool sharedPresent() {
  std::error_code ec;
  return std::filesystem::is_directory(sharedData() / "telemetry", ec) &&
         std::filesystem::is_directory(sharedData() / "models", ec);
}

// `kind` is "telemetry" or "models". The in-repository copy wins; otherwise the path in
// ../shared/data (which may not exist: tests that need it call HWL_NEEDS_SHARED_DATA first).
inline std::filesystem::path find(const std::string& kind, const std::string& name) {
  std::error_code ec;
  auto local = inRepo() / kind / name;
  if (std::filesystem::exists(local, ec)) return local;
  return sharedData() / kind / name;
}

}  // namespace hwl::test_fixtures

// Skips the current test (reported by ctest as skipped) when ../shared/data is absent.
#define HWL_NEEDS_SHARED_DATA()                                                            \
  do {                                                                                     \
    if (!::hwl::test_fixtures::sharedPresent())                                            \
      GTEST_SKIP() << "../shared/data not present: "                                       \
                   << ::hwl::test_fixtures::sharedData().string()                          \
                   << " (this test uses captures or model configs not in tests/fixtures)"; \
  } while (0)
