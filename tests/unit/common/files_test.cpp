// Tests of the file primitives every component writes its state with: atomic replacement (content,
// mode, failures that must leave the old file alone) and bounded whole-file reads.
#include "hwl/files.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace hwl::files {
namespace {

namespace fs = std::filesystem;

// Runs the scope with the effective uid of `nobody` when the tests run as root, for whom
// permission bits do not bind. ok() is false when the uid could not be changed.
class Unprivileged {
 public:
  Unprivileged() {
    if (::geteuid() == 0) dropped_ = ::seteuid(65534) == 0;
  }
  ~Unprivileged() {
    if (dropped_ && ::seteuid(0) != 0) std::abort();  // later tests would run as nobody
  }
  Unprivileged(const Unprivileged&) = delete;
  Unprivileged& operator=(const Unprivileged&) = delete;
  [[nodiscard]] bool ok() const { return ::geteuid() != 0; }

 private:
  bool dropped_ = false;
};

// Sets the umask for the scope.
class Umask {
 public:
  explicit Umask(mode_t m) : old_(::umask(m)) {}
  ~Umask() { ::umask(old_); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;

 private:
  mode_t old_;
};

mode_t modeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hwl-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Traversable by the unprivileged uid some tests switch to.
    fs::permissions(dir_, fs::perms(0755));
  }
  void TearDown() override {
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir_, ec)) {
      if (e.is_directory()) fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add);
    }
    fs::remove_all(dir_);
  }
  // Names in dir_ other than `except`: a temporary left behind shows up here.
  std::vector<std::string> othersIn(const fs::path& dir, const std::string& except) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().filename() != except) out.push_back(e.path().filename().string());
    }
    return out;
  }
  fs::path dir_;
};

TEST_F(FilesTest, WriteThenReadRoundTripsAndReplaces) {
  const fs::path p = dir_ / "state.json";
  const std::string binary("a\0b\nc\xff", 6);
  ASSERT_TRUE(writeFileAtomic(p, binary));
  auto r = readFile(p);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, binary);

  ASSERT_TRUE(writeFileAtomic(p, "second"));
  EXPECT_EQ(readFile(p).value(), "second");
  ASSERT_TRUE(writeFileAtomic(p, ""));
  EXPECT_EQ(readFile(p).value(), "");
  EXPECT_TRUE(othersIn(dir_, "state.json").empty());
}

TEST_F(FilesTest, RelativePathWritesInTheCurrentDirectory) {
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  const auto st = writeFileAtomic("relative.txt", "here");
  fs::current_path(cwd);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(readFile(dir_ / "relative.txt").value(), "here");
}

TEST_F(FilesTest, ModeIsExactlyTheRequestedOneWhateverTheUmask) {
  {
    const Umask strict(077);
    ASSERT_TRUE(writeFileAtomic(dir_ / "public", "x", 0644));
  }
  EXPECT_EQ(modeOf(dir_ / "public"), 0644u);
  {
    const Umask open(0);
    ASSERT_TRUE(writeFileAtomic(dir_ / "secret", "x", 0600));
    ASSERT_TRUE(writeFileAtomic(dir_ / "default", "x"));
  }
  EXPECT_EQ(modeOf(dir_ / "secret"), 0600u);
  EXPECT_EQ(modeOf(dir_ / "default"), 0600u);
  // Replacing a file gives the new mode, not the old file's.
  ASSERT_TRUE(writeFileAtomic(dir_ / "public", "y", 0600));
  EXPECT_EQ(modeOf(dir_ / "public"), 0600u);
}

TEST_F(FilesTest, ConcurrentWritersOfOneFileEachLeaveAWholeVersion) {
  const fs::path p = dir_ / "shared";
  const std::string a(100'000, 'a');
  const std::string b(70'000, 'b');
  auto writer = [&p](const std::string& content) {
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(writeFileAtomic(p, content));
  };
  std::thread ta(writer, a);
  std::thread tb(writer, b);
  ta.join();
  tb.join();
  const auto r = readFile(p);
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r == a || *r == b) << "a mix of " << r->size() << " bytes";
  EXPECT_TRUE(othersIn(dir_, "shared").empty());
}

TEST_F(FilesTest, UnwritableDirectoryFailsAndKeepsTheOldFile) {
  const fs::path locked = dir_ / "locked";
  fs::create_directory(locked);
  ASSERT_TRUE(writeFileAtomic(locked / "f", "old"));
  fs::permissions(locked, fs::perms(0555));
  {
    const Unprivileged nobody;
    if (!nobody.ok()) GTEST_SKIP() << "running as root without the right to change uid";
    const auto st = writeFileAtomic(locked / "f", "new");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Code::kInternal);
    EXPECT_NE(st.error().message.find(locked.string()), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("Permission denied"), std::string::npos)
        << st.error().message;
  }
  EXPECT_EQ(readFile(locked / "f").value(), "old");
  EXPECT_TRUE(othersIn(locked, "f").empty());
}

TEST_F(FilesTest, MissingDirectoryFails) {
  const auto st = writeFileAtomic(dir_ / "absent" / "f", "x");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::kInternal);
  EXPECT_NE(st.error().message.find("absent"), std::string::npos) << st.error().message;
}

TEST_F(FilesTest, FailedRenameRemovesItsTemporary) {
  // A directory where the file should go: everything but the rename succeeds.
  fs::create_directories(dir_ / "target" / "child");
  const auto st = writeFileAtomic(dir_ / "target", "x");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("rename"), std::string::npos) << st.error().message;
  EXPECT_TRUE(fs::is_directory(dir_ / "target" / "child"));
  EXPECT_TRUE(othersIn(dir_, "target").empty());
}

TEST_F(FilesTest, ReadOfAMissingFileIsNotFound) {
  const auto r = readFile(dir_ / "nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kNotFound);
  EXPECT_NE(r.error().message.find((dir_ / "nope").string()), std::string::npos);
  ASSERT_TRUE(writeFileAtomic(dir_ / "file", "x"));
  EXPECT_EQ(readFile(dir_ / "file" / "below").error().code, Code::kNotFound);  // ENOTDIR
}

TEST_F(FilesTest, ReadIsBoundedByMaxBytes) {
  // Larger than one read() chunk, so the bound is checked across chunks.
  const std::string content(200'000, 'x');
  ASSERT_TRUE(writeFileAtomic(dir_ / "big", content));
  auto exact = readFile(dir_ / "big", content.size());
  ASSERT_TRUE(exact) << exact.error().message;
  EXPECT_EQ(exact->size(), content.size());

  const auto over = readFile(dir_ / "big", content.size() - 1);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Code::kInvalidArgument);
  EXPECT_NE(over.error().message.find((dir_ / "big").string()), std::string::npos);
  EXPECT_NE(over.error().message.find("199999"), std::string::npos) << over.error().message;
  EXPECT_FALSE(readFile(dir_ / "big", 0));
  ASSERT_TRUE(writeFileAtomic(dir_ / "empty", ""));
  EXPECT_EQ(readFile(dir_ / "empty", 0).value(), "");
}

TEST_F(FilesTest, ReadsProcfsFilesThatReportSizeZero) {
  struct stat st {};
  ASSERT_EQ(::stat("/proc/self/status", &st), 0);
  ASSERT_EQ(st.st_size, 0);  // else this test proves nothing
  const auto r = readFile("/proc/self/status");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(r->find("Pid:"), std::string::npos);
  EXPECT_EQ(r->back(), '\n');
}

TEST_F(FilesTest, ReadOfADirectoryOrAnUnreadableFileFails) {
  const auto d = readFile(dir_);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Code::kInternal);

  ASSERT_TRUE(writeFileAtomic(dir_ / "secret", "s", 0600));
  const Unprivileged nobody;
  if (!nobody.ok()) GTEST_SKIP() << "running as root without the right to change uid";
  const auto r = readFile(dir_ / "secret");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kInternal);
  EXPECT_NE(r.error().message.find("Permission denied"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace hwl::files
