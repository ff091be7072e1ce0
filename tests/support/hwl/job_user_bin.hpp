// Test helper programs that jobs run as the unprivileged job user. The build tree may sit under a
// directory only its owner can enter (a clone in a 0700 home or `mktemp -d`), where the job user
// cannot exec anything in it; jobs run a copy kept in a directory every user can traverse, so the
// drop to the job user is still what is tested.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace hwl::test_fixtures {

// Path of a copy of `binary` (mode 0755, in a 0755 directory under /tmp) that any user can exec.
// Copies are made once per process and removed when the process that made them exits.
inline std::string jobUserCopy(const std::string& binary) {
  static std::mutex mu;
  static std::map<std::string, std::string> copies;
  static std::string dir;
  static pid_t owner = 0;
  std::lock_guard lock(mu);
  if (auto it = copies.find(binary); it != copies.end()) return it->second;
  if (dir.empty()) {
    std::string tmpl = "/tmp/hwl-job-bin-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
    if (::chmod(tmpl.c_str(), 0755) != 0) throw std::runtime_error("chmod failed: " + tmpl);
    dir = tmpl;
    owner = ::getpid();
    std::atexit([] {
      if (::getpid() != owner) return;  // a forked child leaves the parent's copies alone
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
  }
  const auto name = std::filesystem::path(binary).filename().string();
  const auto copy = std::filesystem::path(dir) / name;
  std::filesystem::copy_file(binary, copy, std::filesystem::copy_options::overwrite_existing);
  if (::chmod(copy.c_str(), 0755) != 0) throw std::runtime_error("chmod failed: " + copy.string());
  return copies[binary] = copy.string();
}

}  // namespace hwl::test_fixtures
