// Reaching a target through a jump host: two real sshd, the bastion with AllowTcpForwarding yes
// (the target's own setting plays no part). The bastion's key goes through the same policy as
// the target's; a refused bastion key stops everything before the target is even contacted.
#include <filesystem>

#include "ssh/shell_quote.hpp"
#include "ssh_test.hpp"

namespace hwl::ssh {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class SshJump : public SshTestBase {
 protected:
  void SetUp() override {
    SshTestBase::SetUp();
    if (IsSkipped()) return;
    bastion_ =
        std::make_unique<itest::SshdFixture>(itest::SshdOptions{.allow_tcp_forwarding = true});
    bastion_->authorize(sshd_->dir() / "id.pub");
    bastion_->start();
  }

  SshSettings jumpSettings() {
    SshSettings s = pinnedSettings();
    auto j = parseJumpHost(sshd_->user() + "@127.0.0.1:" + std::to_string(bastion_->port()));
    EXPECT_TRUE(j.has_value());
    s.jump = *j;
    s.jump->pinned_fingerprint = bastion_->hostKeyFingerprint();
    return s;
  }

  std::unique_ptr<itest::SshdFixture> bastion_;
};

TEST_F(SshJump, CommandsRunOnTheTargetThroughTheBastion) {
  auto s = connectOrFail(jumpSettings());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hostKeyFingerprint(), sshd_->hostKeyFingerprint());
  EXPECT_EQ(s->jumpHostKeyFingerprint(), bastion_->hostKeyFingerprint());
  for (int i = 0; i < 3; ++i) {
    // The target's sshd writes its pid file in its own temp dir: prove where the command ran.
    auto r = s->exec(*buildCommand({"cat", (sshd_->dir() / "sshd.pid").string()}));
    ASSERT_TRUE(r.has_value()) << r.error().toString();
    EXPECT_EQ(r->out, itest::readFile(sshd_->dir() / "sshd.pid"));
  }
  // A megabyte through both flow controls and the pump's buffers.
  auto big = s->exec("head -c 1000000 /dev/zero | tr '\\0' x", 30s, 2'000'000);
  ASSERT_TRUE(big.has_value()) << big.error().toString();
  EXPECT_EQ(big->out, std::string(1'000'000, 'x'));
  EXPECT_TRUE(s->isAlive());

  const std::string blog = bastion_->log();
  EXPECT_TRUE(contains(blog, "Accepted publickey")) << blog;
  EXPECT_TRUE(contains(blog, "direct-tcpip")) << blog;
  const std::string tlog = settledLog();
  EXPECT_TRUE(contains(tlog, "Accepted publickey")) << tlog;
  // What the mismatch test below looks for does appear when the target is contacted.
  EXPECT_TRUE(contains(tlog, "Connection from")) << tlog;
}

TEST_F(SshJump, TimeoutThroughTheBastionLeavesTheSessionUsable) {
  auto s = connectOrFail(jumpSettings());
  ASSERT_TRUE(s);
  auto slow = s->exec("sleep 30", 1s);
  ASSERT_FALSE(slow.has_value());
  EXPECT_EQ(slow.error().code, Code::kDeadlineExceeded);
  auto after = s->exec("echo still-here", 10s);
  ASSERT_TRUE(after.has_value()) << after.error().toString();
  EXPECT_EQ(after->out, "still-here\n");
}

TEST_F(SshJump, BastionKeyMismatchStopsBeforeTheTarget) {
  auto settings = jumpSettings();
  settings.jump->pinned_fingerprint = sshd_->hostKeyFingerprint();  // the wrong host's key
  auto r = SshSession::connect(settings);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().reason, reason::kHostKeyMismatch) << r.error().toString();
  EXPECT_TRUE(contains(r.error().message, "jump host")) << r.error().message;
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(contains(bastion_->log(), "userauth-request")) << bastion_->log();
  EXPECT_FALSE(contains(sshd_->log(), "Connection from")) << sshd_->log();
}

TEST_F(SshJump, TargetKeyIsCheckedThroughTheBastionToo) {
  auto settings = jumpSettings();
  settings.pinned_fingerprint = bastion_->hostKeyFingerprint();  // the wrong host's key
  auto r = SshSession::connect(settings);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().reason, reason::kHostKeyMismatch) << r.error().toString();
  EXPECT_FALSE(contains(r.error().message, "jump host")) << r.error().message;
  EXPECT_FALSE(contains(settledLog(), "userauth-request"));
}

TEST_F(SshJump, BothHostsRecordedOnFirstUse) {
  auto settings = jumpSettings();
  settings.pinned_fingerprint.clear();
  settings.jump->pinned_fingerprint.clear();
  settings.known_hosts = sshd_->knownHosts();
  settings.trust_on_first_use = true;
  ASSERT_TRUE(connectOrFail(settings));
  for (uint16_t port : {sshd_->port(), bastion_->port()}) {
    auto found = itest::run({"ssh-keygen", "-F", "[127.0.0.1]:" + std::to_string(port), "-f",
                             sshd_->knownHosts().string()});
    EXPECT_EQ(found.code(), 0) << port << ": " << itest::readFile(sshd_->knownHosts());
  }
  settings.trust_on_first_use = false;
  EXPECT_TRUE(connectOrFail(settings));
}

class SshJumpNoForwarding : public SshJump {
 protected:
  void SetUp() override {
    SshTestBase::SetUp();
    if (IsSkipped()) return;
    bastion_ =
        std::make_unique<itest::SshdFixture>(itest::SshdOptions{.allow_tcp_forwarding = false});
    bastion_->authorize(sshd_->dir() / "id.pub");
    bastion_->start();
  }
};

TEST_F(SshJumpNoForwarding, BastionThatDoesNotForwardIsAClearError) {
  auto r = SshSession::connect(jumpSettings());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kPermissionDenied) << r.error().toString();
  EXPECT_TRUE(contains(r.error().message, "refused to forward")) << r.error().message;
}

}  // namespace
}  // namespace hwl::ssh
