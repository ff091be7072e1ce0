// Quoting for commands sent over an SSH exec channel. The remote sshd hands the command string to
// the user's shell (`$SHELL -c STRING`), so every argument that comes from data (a path, a job
// name, a model id) must be quoted, or it is parsed as shell syntax on the host.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::ssh {

// POSIX single-quote escaping: 'it'\''s'. Inside single quotes no character is special to a
// POSIX shell (or to bash, zsh, dash), so the argument reaches the program byte for byte.
// A NUL cannot be passed in an argv string, so it is refused rather than silently truncated.
[[nodiscard]] Result<std::string> shellQuote(std::string_view arg);

// argv[0] and every argument quoted and joined with spaces: one command line that the remote
// shell splits back into exactly argv. An empty argv is refused.
[[nodiscard]] Result<std::string> buildCommand(const std::vector<std::string>& argv);

}  // namespace hwl::ssh
