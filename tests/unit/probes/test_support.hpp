// Test support: capture paths, temporary directories and a ttar unpacker.
#pragma once

#include <filesystem>
#include <string>

namespace hwl::probes::testing {

// Absolute path of a capture: tests/fixtures/telemetry, else ../shared/data/telemetry.
std::string capture(const std::string& name);
std::string readCapture(const std::string& name);

// A fresh directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // Writes a file (creating parent folders) and returns its path.
  std::filesystem::path write(const std::string& relative, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

// Unpacks a ttar archive (prometheus/procfs text archive: "Directory:", "Path:"+"Lines:",
// "SymlinkTo:", "Mode:" records separated by "# ttar - - -" lines) under `dest`.
void unpackTtar(const std::string& archivePath, const std::filesystem::path& dest);

}  // namespace hwl::probes::testing
