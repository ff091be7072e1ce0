// Fingerprints, pins, known_hosts names, jump host specs, settings checks and secrets: the
// parts of hwl_ssh that need no server.
#include "ssh/host_key.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

#include "ssh/secret.hpp"
#include "ssh/ssh_settings.hpp"

namespace hwl::ssh {
namespace {

std::string decodeBase64(const std::string& b64) {
  std::string out(b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// A key made with `ssh-keygen -t ed25519`, and what `ssh-keygen -lf` printed for it.
TEST(SshHostKeyFingerprint, MatchesSshKeygen) {
  const std::string blob =
      decodeBase64("AAAAC3NzaC1lZDI1NTE5AAAAIEFSNhHcG3SaBH8++LnROT3h25dc3ZIREA0J2WKefWWJ");
  EXPECT_EQ(fingerprintSha256(blob), "SHA256:YXlMVwSGGAvhz5uY74e3mGhov+kFkqJFPeTbrKbx6QU");
}

TEST(SshHostKeyFingerprint, PinsAreCheckedAndNormalized) {
  const std::string fp = "SHA256:YXlMVwSGGAvhz5uY74e3mGhov+kFkqJFPeTbrKbx6QU";
  EXPECT_EQ(parsePinnedFingerprint(fp).value(), fp);
  EXPECT_EQ(parsePinnedFingerprint(fp + "=").value(), fp);  // padding tolerated
  for (const char* bad : {"", "YXlMVwSGGAvhz5uY74e3mGhov+kFkqJFPeTbrKbx6QU", "sha256:x",
                          "SHA256:YXlMVwSGGAvhz5uY74e3mGhov+kFkqJFPeTbrKbx6Q",
                          "SHA256:YXlMVwSGGAvhz5uY74e3mGhov+kFkqJFPeTbrKbx6Q!",
                          "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"}) {
    auto r = parsePinnedFingerprint(bad);
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code, Code::kInvalidArgument);
    }
  }
}

TEST(SshHostKeyFingerprint, KnownHostsNameFollowsOpenSsh) {
  EXPECT_EQ(knownHostsName("gpu1.example", 22), "gpu1.example");
  EXPECT_EQ(knownHostsName("127.0.0.1", 2222), "[127.0.0.1]:2222");
  EXPECT_EQ(knownHostsName("::1", 2200), "[::1]:2200");
}

TEST(SshSettingsParse, JumpHostSpecs) {
  auto j = parseJumpHost("ops@bastion.example");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(j->user, "ops");
  EXPECT_EQ(j->host, "bastion.example");
  EXPECT_EQ(j->port, 22);
  j = parseJumpHost("ops@10.0.0.1:2200");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(j->host, "10.0.0.1");
  EXPECT_EQ(j->port, 2200);
  j = parseJumpHost("ops@[::1]:2200");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(j->host, "::1");
  EXPECT_EQ(j->port, 2200);
  for (const char* bad : {"bastion", "@bastion", "ops@", "ops@host:0", "ops@host:70000",
                          "ops@host:22x", "ops@[::1", "ops@ho st", "ops@[::1]x"})
    EXPECT_FALSE(parseJumpHost(bad).has_value()) << bad;
}

TEST(SshSettingsParse, ValidateRefusesIncompleteSettings) {
  SshSettings s{.host = "h", .user = "u", .known_hosts = "/tmp/kh"};
  EXPECT_TRUE(validate(s).has_value());
  auto no_trust = s;
  no_trust.known_hosts.clear();
  EXPECT_FALSE(validate(no_trust).has_value()) << "neither a pin nor known_hosts";
  auto bad_pin = s;
  bad_pin.pinned_fingerprint = "MD5:aa";
  EXPECT_FALSE(validate(bad_pin).has_value());
  auto bad_host = s;
  bad_host.host = "h; id";
  EXPECT_FALSE(validate(bad_host).has_value());
  auto no_user = s;
  no_user.user.clear();
  EXPECT_FALSE(validate(no_user).has_value());
  auto empty_pem = s;
  empty_pem.key = KeyPem{};
  EXPECT_FALSE(validate(empty_pem).has_value());
}

TEST(SshSecret, MovedFromAndWipedSecretsAreEmpty) {
  Secret a("passphrase");
  Secret b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(b.reveal(), "passphrase");
  Secret c;
  c = b;
  b.wipe();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(c.reveal(), "passphrase");
}

}  // namespace
}  // namespace hwl::ssh
