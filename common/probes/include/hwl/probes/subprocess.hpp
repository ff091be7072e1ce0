// Runs a tool (nvidia-smi, rocm-smi) without a shell: fork/exec, stdout captured, a deadline,
// SIGKILL on expiry. Safe to call from a multi-threaded process.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::probes {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

struct CommandSettings {
  std::chrono::milliseconds timeout{5000};
  std::size_t max_output_bytes = 16u * 1024u * 1024u;
};

// The executable a name resolves to: itself if it contains '/', else the first match on PATH.
std::optional<std::string> findExecutable(const std::string& name);

// NotFound if the program does not exist, DeadlineExceeded on timeout (the child is killed
// and reaped), ResourceExhausted if the output exceeds the limit. A non-zero exit is not an
// error here: the caller decides.
Result<CommandResult> runCommand(const std::vector<std::string>& argv,
                                 const CommandSettings& settings = {});

}  // namespace hwl::probes
