// Every host key trust decision against a real sshd: the pin, known_hosts (read by libssh2 and
// by OpenSSH's own ssh-keygen -F), trust on first use, a changed key, a key recorded for another
// port or of another type, a revoked key. A refused key must stop the client before it sends
// the user name: sshd's DEBUG1 log shows no userauth request at all.
#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "ssh_test.hpp"

namespace hwl::ssh {
namespace {

namespace fs = std::filesystem;

class SshHostKey : public SshTestBase {
 protected:
  // The fingerprint of some other key, as ssh-keygen prints it.
  std::string otherFingerprint() {
    auto r = itest::runChecked({"ssh-keygen", "-lf", (sshd_->dir() / "id_other.pub").string()});
    std::istringstream in(r.out);
    std::string bits, fp;
    in >> bits >> fp;
    return fp;
  }
  // "ssh-ed25519 AAAA…" of the server's host key.
  std::string hostKeyLine() {
    std::istringstream in(itest::readFile(sshd_->hostKeyPub()));
    std::string type, b64;
    in >> type >> b64;
    return type + " " + b64;
  }
  std::string knownHostsName() { return "[127.0.0.1]:" + std::to_string(sshd_->port()); }

  void expectNoAuthenticationStarted() {
    const std::string log = settledLog();
    EXPECT_FALSE(contains(log, "userauth-request")) << log;
    EXPECT_FALSE(contains(log, "Accepted publickey")) << log;
  }
};

TEST_F(SshHostKey, PinnedFingerprintMatchesSshKeygen) {
  const std::string expected = sshd_->hostKeyFingerprint();
  ASSERT_EQ(expected.rfind("SHA256:", 0), 0u) << expected;
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hostKeyFingerprint(), expected);
  auto r = s->exec("echo pinned");
  ASSERT_TRUE(r.has_value()) << r.error().toString();
  EXPECT_EQ(r->out, "pinned\n");
  // What the refusal tests look for in the log is there when authentication does happen.
  const std::string log = settledLog();
  EXPECT_TRUE(contains(log, "userauth-request")) << log;
  EXPECT_TRUE(contains(log, "Accepted publickey")) << log;
}

TEST_F(SshHostKey, PinMismatchIsRefusedBeforeAuthentication) {
  auto settings = pinnedSettings();
  settings.pinned_fingerprint = otherFingerprint();
  auto r = SshSession::connect(settings);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kPermissionDenied);
  EXPECT_EQ(r.error().reason, reason::kHostKeyMismatch);
  EXPECT_TRUE(contains(r.error().message, sshd_->hostKeyFingerprint())) << r.error().message;
  expectNoAuthenticationStarted();
}

TEST_F(SshHostKey, UnknownKeyWithoutTofuIsRefusedWithItsFingerprint) {
  auto r = SshSession::connect(knownHostsSettings(/*tofu=*/false));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(r.error().reason, reason::kHostKeyUnknown);
  EXPECT_TRUE(contains(r.error().message, sshd_->hostKeyFingerprint())) << r.error().message;
  EXPECT_FALSE(fs::exists(sshd_->knownHosts())) << "nothing is recorded without TOFU";
  expectNoAuthenticationStarted();
}

TEST_F(SshHostKey, TofuRecordsTheKeyWhereOpenSshFindsIt) {
  auto first = connectOrFail(knownHostsSettings(/*tofu=*/true));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->hostKeyFingerprint(), sshd_->hostKeyFingerprint());
  first.reset();

  struct stat st {};
  ASSERT_EQ(::stat(sshd_->knownHosts().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // OpenSSH's own lookup finds the entry under [127.0.0.1]:PORT, with the server's key.
  auto found =
      itest::run({"ssh-keygen", "-F", knownHostsName(), "-f", sshd_->knownHosts().string()});
  EXPECT_EQ(found.code(), 0) << found.out << found.err;
  EXPECT_TRUE(contains(found.out, hostKeyLine())) << found.out;
  EXPECT_FALSE(fs::exists(sshd_->knownHosts().string() + ".tmp"));

  // Known from now on: accepted without TOFU, and the file is left as it was.
  const std::string before = itest::readFile(sshd_->knownHosts());
  auto again = connectOrFail(knownHostsSettings(/*tofu=*/false));
  ASSERT_TRUE(again);
  EXPECT_EQ(itest::readFile(sshd_->knownHosts()), before);
}

TEST_F(SshHostKey, TofuKeepsExistingLines) {
  const std::string existing =
      "# kept\nother.example ssh-ed25519 "
      "AAAAC3NzaC1lZDI1NTE5AAAAIEFSNhHcG3SaBH8++LnROT3h25dc3ZIREA0J2WKefWWJ\n";
  itest::writeFile(sshd_->knownHosts(), existing);
  auto s = connectOrFail(knownHostsSettings(/*tofu=*/true));
  ASSERT_TRUE(s);
  const std::string after = itest::readFile(sshd_->knownHosts());
  EXPECT_EQ(after.rfind(existing, 0), 0u) << after;
  EXPECT_TRUE(contains(after, knownHostsName() + " " + hostKeyLine())) << after;
}

TEST_F(SshHostKey, ChangedKeyIsRefusedAsAMismatchAndKnownHostsIsUnchanged) {
  ASSERT_TRUE(connectOrFail(knownHostsSettings(/*tofu=*/true)));
  const std::string recorded = itest::readFile(sshd_->knownHosts());
  const std::string old_fp = sshd_->hostKeyFingerprint();

  sshd_->restartWithNewHostKey();
  ASSERT_NE(sshd_->hostKeyFingerprint(), old_fp);
  const size_t log_before = sshd_->log().size();
  // Even with trust on first use: a changed key is never trusted.
  auto r = SshSession::connect(knownHostsSettings(/*tofu=*/true));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kPermissionDenied);
  EXPECT_EQ(r.error().reason, reason::kHostKeyMismatch);
  EXPECT_TRUE(contains(r.error().message, sshd_->hostKeyFingerprint())) << r.error().message;
  EXPECT_EQ(itest::readFile(sshd_->knownHosts()), recorded);
  const std::string log = settledLog().substr(log_before);
  EXPECT_FALSE(contains(log, "userauth-request")) << log;
}

// libssh2_knownhost_checkp would let a "127.0.0.1" (port 22) entry vouch for this port; OpenSSH
// does not, and neither does the client.
TEST_F(SshHostKey, EntryForPort22DoesNotVouchForAnotherPort) {
  itest::writeFile(sshd_->knownHosts(), "127.0.0.1 " + hostKeyLine() + "\n");
  auto r = SshSession::connect(knownHostsSettings(/*tofu=*/false));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().reason, reason::kHostKeyUnknown) << r.error().toString();
}

// Only an ecdsa key is recorded for the host and it now shows an ed25519 one: OpenSSH warns; we
// refuse, TOFU or not, since a man in the middle could pick the algorithm.
TEST_F(SshHostKey, KeyOfAnotherTypeRecordedIsAMismatch) {
  itest::runChecked(
      {"ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", (sshd_->dir() / "ecdsa_other").string()});
  std::istringstream in(itest::readFile(sshd_->dir() / "ecdsa_other.pub"));
  std::string type, b64;
  in >> type >> b64;
  itest::writeFile(sshd_->knownHosts(), knownHostsName() + " " + type + " " + b64 + "\n");
  const std::string before = itest::readFile(sshd_->knownHosts());
  auto r = SshSession::connect(knownHostsSettings(/*tofu=*/true));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kPermissionDenied) << r.error().toString();
  EXPECT_EQ(r.error().reason, reason::kHostKeyMismatch);
  EXPECT_EQ(itest::readFile(sshd_->knownHosts()), before);
}

TEST_F(SshHostKey, RevokedKeyIsRefused) {
  itest::writeFile(sshd_->knownHosts(), knownHostsName() + " " + hostKeyLine() + "\n" +
                                            "@revoked * " + hostKeyLine() + "\n");
  auto r = SshSession::connect(knownHostsSettings(/*tofu=*/false));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().reason, reason::kHostKeyMismatch) << r.error().toString();
  EXPECT_TRUE(contains(r.error().message, "revoked")) << r.error().message;
}

TEST_F(SshHostKey, HashedKnownHostsEntryIsHonoured) {
  itest::writeFile(sshd_->knownHosts(), knownHostsName() + " " + hostKeyLine() + "\n");
  // ssh-keygen -H hashes the names in place, as HashKnownHosts does.
  itest::runChecked({"ssh-keygen", "-H", "-f", sshd_->knownHosts().string()});
  ASSERT_EQ(itest::readFile(sshd_->knownHosts()).rfind("|1|", 0), 0u);
  EXPECT_TRUE(connectOrFail(knownHostsSettings(/*tofu=*/false)));
}

TEST_F(SshHostKey, UnparsableKnownHostsLineFailsClosed) {
  itest::writeFile(sshd_->knownHosts(), "# fine\n" + knownHostsName() + " " + hostKeyLine() +
                                            "\ngarbage-without-a-key\n");
  auto r = SshSession::connect(knownHostsSettings(/*tofu=*/true));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kFailedPrecondition) << r.error().toString();
  EXPECT_TRUE(contains(r.error().message, ":3")) << r.error().message;
}

}  // namespace
}  // namespace hwl::ssh
