// Authentication against a real sshd: public keys only, from a file (plain or encrypted), from
// memory, from a real ssh-agent on a socket of the test's own; refusals for a key the server
// does not know, a wrong passphrase, and a server that offers only passwords — to which no
// password is ever sent (sshd's DEBUG1 log records the method of every userauth request).
#include <filesystem>

#include "ssh_test.hpp"

namespace hwl::ssh {
namespace {

namespace fs = std::filesystem;

class SshAuth : public SshTestBase {
 protected:
  void expectNoSecretMethodTried() {
    const std::string log = settledLog();
    EXPECT_FALSE(contains(log, "method password")) << log;
    EXPECT_FALSE(contains(log, "method keyboard-interactive")) << log;
  }
};

TEST_F(SshAuth, UnauthorizedKeyIsRefused) {
  auto settings = pinnedSettings();
  settings.key = KeyFile{sshd_->unauthorizedClientKey()};
  auto r = SshSession::connect(settings);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kUnauthenticated);
  EXPECT_EQ(r.error().reason, reason::kAuthFailed) << r.error().toString();
  const std::string log = settledLog();
  EXPECT_FALSE(contains(log, "Accepted publickey")) << log;
  expectNoSecretMethodTried();
}

TEST_F(SshAuth, EncryptedKeyWithItsPassphrase) {
  auto settings = pinnedSettings();
  settings.key = KeyFile{sshd_->encryptedClientKey()};
  settings.passphrase = itest::SshdFixture::kPassphrase;
  auto s = connectOrFail(settings);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->exec("echo unlocked")->out, "unlocked\n");
}

TEST_F(SshAuth, EncryptedKeyWithAWrongPassphraseIsRefused) {
  auto settings = pinnedSettings();
  settings.key = KeyFile{sshd_->encryptedClientKey()};
  settings.passphrase = "not the passphrase";
  auto r = SshSession::connect(settings);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kUnauthenticated);
  EXPECT_EQ(r.error().reason, reason::kKeyUnusable) << r.error().toString();
  EXPECT_FALSE(contains(r.error().message, "not the passphrase"));
  EXPECT_FALSE(contains(settledLog(), "Accepted publickey"));

  auto none = pinnedSettings();
  none.key = KeyFile{sshd_->encryptedClientKey()};
  auto r2 = SshSession::connect(none);
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error().code, Code::kUnauthenticated) << r2.error().toString();
}

TEST_F(SshAuth, KeyFromPemInMemory) {
  // OpenSSH's own private key format, as ssh-keygen writes ed25519 keys.
  auto settings = pinnedSettings();
  settings.key = KeyPem{itest::readFile(sshd_->clientKey())};
  auto s = connectOrFail(settings);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->exec("echo from-memory")->out, "from-memory\n");

  // A PEM ("BEGIN EC PRIVATE KEY") ecdsa key, and an encrypted key with its passphrase.
  const fs::path ec = sshd_->addAuthorizedKey("id_ecdsa_pem", "ecdsa", /*pem_format=*/true);
  ASSERT_TRUE(contains(itest::readFile(ec), "BEGIN EC PRIVATE KEY"));
  auto ec_settings = pinnedSettings();
  ec_settings.key = KeyPem{itest::readFile(ec)};
  EXPECT_TRUE(connectOrFail(ec_settings));

  auto enc = pinnedSettings();
  enc.key = KeyPem{itest::readFile(sshd_->encryptedClientKey())};
  enc.passphrase = itest::SshdFixture::kPassphrase;
  EXPECT_TRUE(connectOrFail(enc));
}

TEST_F(SshAuth, KeysOfARealSshAgent) {
  itest::SshAgentProcess agent(sshd_->dir());
  auto settings = pinnedSettings();
  settings.key = KeyAgent{agent.socket()};

  // An empty agent, then one holding only a key the server does not know: refused.
  auto empty = SshSession::connect(settings);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().reason, reason::kKeyUnusable) << empty.error().toString();
  agent.add(sshd_->unauthorizedClientKey());
  auto wrong = SshSession::connect(settings);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().reason, reason::kAuthFailed) << wrong.error().toString();

  // With the authorized key added (second in the agent) it works, and asks for no forwarding.
  agent.add(sshd_->clientKey());
  auto s = connectOrFail(settings);
  ASSERT_TRUE(s);
  auto r = s->exec("echo via-agent; echo \"${SSH_AUTH_SOCK:-no-forwarded-agent}\"");
  ASSERT_TRUE(r.has_value()) << r.error().toString();
  EXPECT_EQ(r->out, "via-agent\nno-forwarded-agent\n");
  const std::string log = settledLog();
  EXPECT_TRUE(contains(log, "Accepted publickey")) << log;
  EXPECT_FALSE(contains(log, "auth-agent-req")) << log;
}

TEST_F(SshAuth, AgentSocketThatDoesNotExistIsAClearError) {
  auto settings = pinnedSettings();
  settings.key = KeyAgent{sshd_->dir() / "no-agent.sock"};
  auto r = SshSession::connect(settings);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().reason, reason::kKeyUnusable) << r.error().toString();
  EXPECT_TRUE(contains(r.error().message, "no-agent.sock")) << r.error().message;
}

class SshAuthPasswordOnly : public SshAuth {
 protected:
  itest::SshdOptions sshdOptions() override {
    return {.pubkey_authentication = false,
            .password_authentication = true,
            .kbd_interactive_authentication = true};
  }
};

TEST_F(SshAuthPasswordOnly, ServerOfferingOnlyPasswordsIsRefusedWithoutSendingOne) {
  auto settings = pinnedSettings();
  settings.passphrase = "would-be-password";
  auto r = SshSession::connect(settings);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kUnauthenticated);
  EXPECT_EQ(r.error().reason, reason::kNoPublicKeyAuth) << r.error().toString();
  EXPECT_TRUE(contains(r.error().message, "password")) << r.error().message;
  const std::string log = settledLog();
  EXPECT_TRUE(contains(log, "method none")) << "the method list was asked for: " << log;
  expectNoSecretMethodTried();
  EXPECT_FALSE(contains(log, "would-be-password"));
}

}  // namespace
}  // namespace hwl::ssh
