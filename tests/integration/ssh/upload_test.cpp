// Copying files to a real sshd over SCP: the bytes arrive exactly (binary, empty, larger than a
// channel window), with the mode asked for; a hostile file name is a name and nothing else; a
// refused upload names the host's reason and leaves the session usable; a bad path is refused
// before anything is sent.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "ssh_test.hpp"

namespace hwl::ssh {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class SshUpload : public SshTestBase {
 protected:
  fs::path target() {
    const fs::path d = sshd_->dir() / "uploads";
    fs::create_directories(d);
    return d;
  }
};

unsigned modeOf(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string randomBytes(size_t n) {
  std::mt19937 rng(7);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

TEST_F(SshUpload, BytesArriveExactlyWithTheModeAskedFor) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  const fs::path small = target() / "agent.json";
  ASSERT_TRUE(s->upload("{\"a\": 1}\n", small.string(), 0640, 20s).has_value());
  EXPECT_EQ(itest::readFile(small), "{\"a\": 1}\n");
  EXPECT_EQ(modeOf(small), 0640u);

  // Every byte value (NUL and scp's own \1 and \2 included), over several channel windows.
  const std::string big = randomBytes(3 * 1024 * 1024 + 17);
  const fs::path local = sshd_->dir() / "big.local";
  itest::writeFile(local, big);
  const fs::path remote = target() / "big.bin";
  auto up = s->uploadFile(local, remote.string(), 0755, 60s);
  ASSERT_TRUE(up.has_value()) << up.error().toString();
  EXPECT_EQ(itest::readFile(remote), big);
  EXPECT_EQ(modeOf(remote), 0755u);

  const fs::path empty = target() / "empty";
  ASSERT_TRUE(s->upload("", empty.string(), 0600, 20s).has_value());
  EXPECT_TRUE(fs::exists(empty));
  EXPECT_EQ(fs::file_size(empty), 0u);

  // The session goes on running commands.
  auto after = s->exec("echo after");
  ASSERT_TRUE(after.has_value()) << after.error().toString();
  EXPECT_EQ(after->out, "after\n");
}

TEST_F(SshUpload, AHostileNameIsOnlyAName) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  // Were any of it shell syntax on the host, the file would get another name (or none).
  const std::string name = "a b'c\"$(echo x);`echo y`;* -r\\z";
  const fs::path remote = target() / name;
  auto up = s->upload("x", remote.string(), 0600, 20s);
  ASSERT_TRUE(up.has_value()) << up.error().toString();
  EXPECT_EQ(itest::readFile(remote), "x");
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(target())) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(SshUpload, ARefusedUploadSaysWhyAndTheSessionGoesOn) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  const fs::path missing = target() / "no-such-dir" / "file";
  auto up = s->upload("data", missing.string(), 0600, 20s);
  ASSERT_FALSE(up.has_value());
  EXPECT_EQ(up.error().code, Code::kFailedPrecondition) << up.error().toString();
  EXPECT_EQ(up.error().reason, reason::kUpload);
  EXPECT_TRUE(contains(up.error().message, "No such file or directory")) << up.error().message;
  EXPECT_FALSE(fs::exists(missing));

  // A directory the user may not write to.
  const fs::path ro_dir = target() / "ro-dir";
  fs::create_directories(ro_dir);
  fs::permissions(ro_dir, fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() != 0) {  // root writes anyway
    auto denied = s->upload("data", (ro_dir / "f").string(), 0600, 20s);
    ASSERT_FALSE(denied.has_value());
    EXPECT_TRUE(contains(denied.error().message, "Permission denied")) << denied.error().message;
  }

  auto after = s->exec("echo still-here");
  ASSERT_TRUE(after.has_value()) << after.error().toString();
  EXPECT_EQ(after->out, "still-here\n");
  // And uploads again.
  ASSERT_TRUE(s->upload("ok", (target() / "ok").string(), 0600, 20s).has_value());
  EXPECT_EQ(itest::readFile(target() / "ok"), "ok");
}

TEST_F(SshUpload, AnUploadPastItsTimeoutFailsAndClosesTheSession) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  const std::string big = randomBytes(64 * 1024 * 1024);
  const auto t0 = std::chrono::steady_clock::now();
  auto up = s->upload(big, (target() / "slow").string(), 0600, 1ms);
  ASSERT_FALSE(up.has_value());
  EXPECT_EQ(up.error().code, Code::kDeadlineExceeded) << up.error().toString();
  EXPECT_EQ(up.error().reason, reason::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_FALSE(s->isAlive());
  auto after = s->exec("echo x");
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().code, Code::kUnavailable);
}

TEST_F(SshUpload, BadPathsAreRefusedBeforeAnythingIsSent) {
  auto s = connectOrFail(pinnedSettings());
  ASSERT_TRUE(s);
  const std::vector<std::string> bad = {"", "relative/file", "/tmp/dir/", "/tmp/a\nb",
                                        std::string("/tmp/a\0b", 8)};
  for (const auto& p : bad) {
    auto up = s->upload("x", p, 0600, 5s);
    ASSERT_FALSE(up.has_value()) << p;
    EXPECT_EQ(up.error().code, Code::kInvalidArgument) << p;
  }
  auto missing =
      s->uploadFile(sshd_->dir() / "does-not-exist", (target() / "f").string(), 0600, 5s);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  EXPECT_FALSE(fs::exists(target() / "f"));
  // Nothing reached the host: no scp was started.
  EXPECT_FALSE(contains(settledLog(), "request exec")) << sshd_->log();
}

}  // namespace
}  // namespace hwl::ssh
