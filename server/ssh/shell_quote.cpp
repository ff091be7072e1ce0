// POSIX single-quote escaping of command arguments (see shell_quote.hpp).
#include "ssh/shell_quote.hpp"

namespace hwl::ssh {

Result<std::string> shellQuote(std::string_view arg) {
  if (arg.find('\0') != std::string_view::npos)
    return invalidArgument("a command argument contains a NUL byte");
  std::string out;
  out.reserve(arg.size() + 2);
  out.push_back('\'');
  for (char c : arg) {
    // A quote cannot appear inside single quotes: close them, add an escaped quote, reopen.
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

Result<std::string> buildCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return invalidArgument("empty command");
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    auto quoted = shellQuote(argv[i]);
    if (!quoted)
      return Error{quoted.error().code,
                   "argument " + std::to_string(i) + ": " + quoted.error().message};
    if (i != 0) out.push_back(' ');
    out += *quoted;
  }
  return out;
}

}  // namespace hwl::ssh
