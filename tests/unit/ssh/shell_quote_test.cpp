// shellQuote/buildCommand: an argument an attacker controls stays one literal argument when the
// command line goes through a real shell (/bin/sh, and bash when it is installed), as it does on
// the remote side of an SSH exec channel.
#include "ssh/shell_quote.hpp"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace hwl::ssh {
namespace {

namespace fs = std::filesystem;

// Runs `command` with popen, which is `/bin/sh -c command`, and returns its stdout.
std::string runShell(const std::string& command, int* status = nullptr) {
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return "<popen failed>";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (status != nullptr) *status = st;
  return out;
}

// What an attacker might put in a host name, a path or a job argument.
std::vector<std::string> hostileArguments(const fs::path& marker) {
  return {"; touch " + marker.string(),
          "$(touch " + marker.string() + ")",
          "`touch " + marker.string() + "`",
          "&& touch " + marker.string(),
          "| touch " + marker.string(),
          "> " + marker.string(),
          "a\ntouch " + marker.string(),
          "; rm -rf ~",
          "$(id)",
          "`id`",
          "it's",
          "'",
          "''",
          "'\\''",
          "\"double\" quotes",
          "$HOME ${IFS} $((1+1)) $0 $@",
          "*",
          "~",
          "a b  c\t d",
          "",
          "\\",
          "\\n",
          "-n",
          "!!",
          "line1\nline2\n",
          "caf\xc3\xa9 \x01\x7f"};
}

TEST(SshShellQuote, QuotesPosixStyle) {
  EXPECT_EQ(shellQuote("abc").value(), "'abc'");
  EXPECT_EQ(shellQuote("").value(), "''");
  EXPECT_EQ(shellQuote("it's").value(), "'it'\\''s'");
  EXPECT_EQ(buildCommand({"printf", "%s\\n", "a b"}).value(), "'printf' '%s\\n' 'a b'");
}

TEST(SshShellQuote, RefusesNulAndEmptyArgv) {
  auto r = shellQuote(std::string("a\0b", 3));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  auto c = buildCommand({"echo", std::string("x\0; id", 6)});
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("argument 1"), std::string::npos);
  EXPECT_FALSE(buildCommand({}).has_value());
}

// Each hostile argument, wrapped as <%s>, comes back verbatim and alone: a split would print two
// pairs of brackets, an expansion would change the text, an injected command would create the
// marker file.
TEST(SshShellQuote, HostileArgumentStaysOneLiteralArgumentInSh) {
  const fs::path dir = fs::temp_directory_path() / ("hwl-quote-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path marker = dir / "injected";
  for (const auto& arg : hostileArguments(marker)) {
    auto cmd = buildCommand({"printf", "<%s>", arg});
    ASSERT_TRUE(cmd.has_value());
    int status = -1;
    EXPECT_EQ(runShell(*cmd, &status), "<" + arg + ">") << "argument: " << arg;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "argument: " << arg;
  }
  EXPECT_FALSE(fs::exists(marker)) << "a quoted argument ran a command";
  fs::remove_all(dir);
}

// The same through bash, whose parser has more special cases ($'...', history, brace expansion).
TEST(SshShellQuote, HostileArgumentStaysOneLiteralArgumentInBash) {
  if (::access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "/bin/bash is not installed";
  const fs::path dir = fs::temp_directory_path() / ("hwl-quote-b-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path marker = dir / "injected";
  for (const auto& arg : hostileArguments(marker)) {
    auto inner = buildCommand({"printf", "<%s>", arg});
    ASSERT_TRUE(inner.has_value());
    auto outer = buildCommand({"/bin/bash", "-c", *inner});
    ASSERT_TRUE(outer.has_value());
    EXPECT_EQ(runShell(*outer), "<" + arg + ">") << "argument: " << arg;
  }
  EXPECT_FALSE(fs::exists(marker)) << "a quoted argument ran a command";
  fs::remove_all(dir);
}

// The argument count is kept too: three arguments, one of them empty, stay three.
TEST(SshShellQuote, KeepsArgumentCount) {
  auto cmd = buildCommand({"sh", "-c", "echo $#", "sh", "", "two words", "; id"});
  ASSERT_TRUE(cmd.has_value());
  EXPECT_EQ(runShell(*cmd), "3\n");
}

}  // namespace
}  // namespace hwl::ssh
