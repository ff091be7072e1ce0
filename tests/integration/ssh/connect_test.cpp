// Connection failures a user meets before any SSH is spoken: nothing listening, and a peer that
// accepts the TCP connection but never answers (the connect timeout must hold).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "ssh/ssh_session.hpp"

namespace hwl::ssh {
namespace {

using namespace std::chrono_literals;

// A loopback socket bound to port 0; listening or not.
struct LoopbackSocket {
  int fd = -1;
  uint16_t port = 0;
  explicit LoopbackSocket(bool listening) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      ADD_FAILURE() << "bind";
    port = ntohs(a.sin_port);
    if (listening) ::listen(fd, 4);
  }
  ~LoopbackSocket() { ::close(fd); }
};

SshSettings settingsFor(uint16_t port) {
  SshSettings s;
  s.host = "127.0.0.1";
  s.port = port;
  s.user = "nobody";
  s.key = KeyFile{"/nonexistent/id"};
  s.pinned_fingerprint = "SHA256:YXlMVwSGGAvhz5uY74e3mGhov+kFkqJFPeTbrKbx6QU";
  return s;
}

TEST(SshConnect, NothingListeningIsUnavailable) {
  LoopbackSocket closed(/*listening=*/false);  // bound, not listening: connections refused
  auto r = SshSession::connect(settingsFor(closed.port));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kUnavailable);
  EXPECT_EQ(r.error().reason, reason::kConnect) << r.error().toString();
}

TEST(SshConnect, SilentPeerHitsTheConnectTimeout) {
  LoopbackSocket silent(/*listening=*/true);  // the kernel accepts; nobody ever speaks
  auto settings = settingsFor(silent.port);
  settings.connect_timeout = 1s;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = SshSession::connect(settings);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kDeadlineExceeded) << r.error().toString();
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 4s);
}

TEST(SshConnect, SettingsWithoutAnyHostKeyTrustAreRefused) {
  auto s = settingsFor(22);
  s.pinned_fingerprint.clear();  // and no known_hosts
  auto r = SshSession::connect(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
}

}  // namespace
}  // namespace hwl::ssh
