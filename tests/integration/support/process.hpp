// Running real programs from the integration tests: one-shot runs with captured output, and
// long-lived children (the server, a following CLI, openssl s_client) that can be signalled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hwl::itest {

using Env = std::vector<std::pair<std::string, std::string>>;

// How a child ended.
struct ExitStatus {
  bool exited = false;  // normal exit, `code` is set
  int code = -1;
  int signal = 0;  // set when killed by a signal
  [[nodiscard]] bool success() const { return exited && code == 0; }
  [[nodiscard]] std::string describe() const;
};

struct RunResult {
  ExitStatus status;
  bool timed_out = false;
  std::string out;
  std::string err;
  [[nodiscard]] int code() const { return status.exited ? status.code : -1; }
};

struct RunOptions {
  Env env;            // added to (or replacing entries of) the test's environment
  std::string input;  // written to the child's stdin, which is then closed
  std::chrono::milliseconds timeout{60'000};
};

// Runs argv[0] (searched in PATH when it has no slash) to completion, capturing stdout and stderr.
// A child still running at the timeout is killed with SIGKILL.
RunResult run(const std::vector<std::string>& argv, const RunOptions& opts = {});

struct SpawnOptions {
  Env env;
  std::filesystem::path stdout_file;  // empty: /dev/null
  std::filesystem::path stderr_file;  // empty: /dev/null
  bool stdin_pipe = false;            // else stdin is /dev/null
};

// A child running in the background. The destructor kills it (SIGKILL) and reaps it.
class Process {
 public:
  Process(const std::vector<std::string>& argv, SpawnOptions opts);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running();
  void signal(int sig);
  // Waits for the child to end; nullopt if it is still running at the timeout.
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap; returns how it ended (a child that already exited keeps its status).
  ExitStatus kill();

  void writeStdin(std::string_view data);
  void closeStdin();

  [[nodiscard]] std::string out() const;
  [[nodiscard]] std::string err() const;
  // Polls stdout until it contains `needle`; false at the timeout or when the child has ended
  // without printing it.
  bool waitForOutput(std::string_view needle, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::optional<ExitStatus> status_;
  SpawnOptions opts_;
};

// A directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "hwl-it");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::string readFile(const std::filesystem::path& p);
void writeFile(const std::filesystem::path& p, std::string_view content);

}  // namespace hwl::itest
