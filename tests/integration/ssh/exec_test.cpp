// Running commands on a real sshd: output, exit status, stderr, several commands on one
// session, limits on time and output, streaming, and quoting of hostile arguments end to end.
#include <filesystem>
#include <optional>
#include <vector>

#include "ssh/shell_quote.hpp"
#include "ssh_test.hpp"

namespace hwl::ssh {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class SshExec : public SshTestBase {};

TEST_F(SshExec, EchoExitStatusAndStderr) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  auto echo = s->exec("echo hello");
  ASSERT_TRUE(echo.has_value()) << echo.error().toString();
  EXPECT_EQ(echo->out, "hello\n");
  EXPECT_EQ(echo->err, "");
  EXPECT_EQ(echo->exit_status, 0);

  auto three = s->exec("exit 3");
  ASSERT_TRUE(three.has_value()) << three.error().toString();
  EXPECT_EQ(three->exit_status, 3);

  auto err = s->exec("echo to-stdout; echo to-stderr >&2; exit 1");
  ASSERT_TRUE(err.has_value()) << err.error().toString();
  EXPECT_EQ(err->out, "to-stdout\n");
  EXPECT_EQ(err->err, "to-stderr\n");
  EXPECT_EQ(err->exit_status, 1);

  auto killed = s->exec("kill -TERM $$");
  ASSERT_TRUE(killed.has_value()) << killed.error().toString();
  EXPECT_EQ(killed->exit_signal, "TERM");
}

TEST_F(SshExec, OneSessionRunsSeveralCommands) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  for (int i = 0; i < 3; ++i) {
    auto r = s->exec("echo run-" + std::to_string(i));
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().toString();
    EXPECT_EQ(r->out, "run-" + std::to_string(i) + "\n");
  }
  EXPECT_TRUE(s->isAlive());
  // One connection and one authentication for the three commands.
  const std::string log = settledLog();
  size_t accepted = 0;
  for (size_t p = log.find("Accepted publickey"); p != std::string::npos;
       p = log.find("Accepted publickey", p + 1))
    ++accepted;
  EXPECT_EQ(accepted, 1u) << log;
}

TEST_F(SshExec, OutputOverTheLimitIsRefusedAndTheSessionGoesOn) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  auto big = s->exec("head -c 300000 /dev/zero", 20s, 100'000);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code, Code::kResourceExhausted);
  EXPECT_EQ(big.error().reason, reason::kOutputLimit);
  EXPECT_TRUE(contains(big.error().message, "100000 bytes")) << big.error().message;
  // Exactly at the limit is fine.
  auto exact = s->exec("head -c 100000 /dev/zero", 20s, 100'000);
  ASSERT_TRUE(exact.has_value()) << exact.error().toString();
  EXPECT_EQ(exact->out.size(), 100'000u);
  auto after = s->exec("echo still-here");
  ASSERT_TRUE(after.has_value()) << after.error().toString();
  EXPECT_EQ(after->out, "still-here\n");
}

TEST_F(SshExec, CommandTimeoutIsAnErrorAndTheSessionGoesOn) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = s->exec("sleep 30", 1s);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(slow.has_value());
  EXPECT_EQ(slow.error().code, Code::kDeadlineExceeded);
  EXPECT_EQ(slow.error().reason, reason::kTimeout);
  EXPECT_LT(took, 5s);
  EXPECT_TRUE(s->isAlive());
  auto after = s->exec("echo still-here", 10s);
  ASSERT_TRUE(after.has_value()) << after.error().toString();
  EXPECT_EQ(after->out, "still-here\n");
}

TEST_F(SshExec, StreamDeliversOutputAsItComesAndCanBeStopped) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  std::string out, err;
  std::optional<std::chrono::steady_clock::time_point> first_line;
  auto done = s->execStream("for i in 1 2 3; do echo line-$i; sleep 0.3; done; echo bye >&2",
                            [&](Stream st, std::string_view d) {
                              if (!first_line) first_line = std::chrono::steady_clock::now();
                              (st == Stream::kStdout ? out : err).append(d);
                              return true;
                            });
  const auto ended = std::chrono::steady_clock::now();
  ASSERT_TRUE(done.has_value()) << done.error().toString();
  EXPECT_FALSE(done->stopped);
  EXPECT_EQ(done->exit_status, 0);
  EXPECT_EQ(out, "line-1\nline-2\nline-3\n");
  EXPECT_EQ(err, "bye\n");
  // The first line was handed over as it came, not with the rest at the end (~0.9 s later).
  ASSERT_TRUE(first_line.has_value());
  EXPECT_GT(ended - *first_line, 400ms);

  // A follower stops an endless command from its handler...
  int seen = 0;
  auto stopped = s->execStream("while true; do echo tick; sleep 0.1; done",
                               [&](Stream, std::string_view) { return ++seen < 3; });
  ASSERT_TRUE(stopped.has_value()) << stopped.error().toString();
  EXPECT_TRUE(stopped->stopped);
  EXPECT_EQ(seen, 3);
  // ...or from another thread through the stop token.
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(500ms);
    stop.request_stop();
  });
  auto by_token = s->execStream("sleep 30", [](Stream, std::string_view) { return true; },
                                {.stop = stop.get_token()});
  stopper.join();
  ASSERT_TRUE(by_token.has_value()) << by_token.error().toString();
  EXPECT_TRUE(by_token->stopped);
  auto after = s->exec("echo still-here");
  ASSERT_TRUE(after.has_value()) << after.error().toString();
  EXPECT_EQ(after->out, "still-here\n");
}

// What shellQuote promises, checked through the remote user's shell behind the real sshd:
// printf '%s\n' ARG prints ARG back verbatim, and no injected command runs.
TEST_F(SshExec, HostileArgumentsArriveVerbatimThroughSshd) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  const fs::path marker = sshd_->dir() / "injected";
  const std::string m = marker.string();
  const std::vector<std::string> hostile = {"; touch " + m,
                                            "$(touch " + m + ")",
                                            "`touch " + m + "`",
                                            "&& touch " + m,
                                            "| touch " + m,
                                            "a\ntouch " + m,
                                            "; rm -rf ~",
                                            "$(id)",
                                            "`id`",
                                            "it's",
                                            "'",
                                            "\"q\" 'q'",
                                            "$HOME ${IFS}",
                                            "*",
                                            "~",
                                            "a b\tc",
                                            "",
                                            "\\",
                                            "-n",
                                            "line1\nline2"};
  for (const auto& arg : hostile) {
    auto cmd = buildCommand({"printf", "%s\\n", arg});
    ASSERT_TRUE(cmd.has_value());
    auto r = s->exec(*cmd);
    ASSERT_TRUE(r.has_value()) << r.error().toString();
    EXPECT_EQ(r->out, arg + "\n") << "argument: " << arg;
    EXPECT_EQ(r->exit_status, 0) << "argument: " << arg;
  }
  EXPECT_FALSE(fs::exists(marker)) << "a quoted argument ran a command on the host";
  EXPECT_FALSE(s->exec(std::string("echo a\0b", 8)).has_value()) << "a NUL is refused";
}

}  // namespace
}  // namespace hwl::ssh
