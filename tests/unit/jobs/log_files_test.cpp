// Tests of JobLog: copytruncate rotation, tail across files, following by stream offset.
#include "hwl/jobs/log_files.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "hwl/files.hpp"

namespace hwl::jobs {
namespace {

namespace fs = std::filesystem;

class LogFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hwl-logs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(LogFilesTest, RotatesByCopyTruncateKeepingTheWritersFd) {
  JobLog log(dir_, 100, 2);
  // The job's fd, as the supervisor hands it over: O_APPEND.
  files::UniqueFd fd(::open(log.current().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640));
  ASSERT_TRUE(fd.valid());
  std::string all;
  uint64_t base = 0;
  for (int i = 0; i < 40; ++i) {
    const std::string line = "line " + std::to_string(i) + "\n";
    ASSERT_TRUE(files::writeAll(fd.get(), line));
    all += line;
    auto b = log.rotateIfNeeded(base);
    ASSERT_TRUE(b);
    base = *b;
    EXPECT_LE(fs::file_size(log.current()), 100u);
  }
  EXPECT_GT(base, 0u);
  EXPECT_TRUE(fs::exists(log.rotated(1)));
  EXPECT_TRUE(fs::exists(log.rotated(2)));
  EXPECT_FALSE(fs::exists(log.rotated(3)));  // keep = 2
  EXPECT_EQ(base + fs::file_size(log.current()), all.size());

  auto tail = log.tail(3);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, "line 37\nline 38\nline 39\n");
  // More lines than job.log holds: reaches into the rotated files.
  auto longer = log.tail(12);
  ASSERT_TRUE(longer);
  EXPECT_EQ(longer->rfind("line 28\n", 0), 0u) << *longer;

  // Following from 0: starts at the oldest byte kept and ends at the live end, in order.
  std::string followed;
  uint64_t offset = 0;
  bool first = true;
  for (int guard = 0; guard < 100; ++guard) {
    auto chunk = log.readFrom(base, offset, 16);
    ASSERT_TRUE(chunk);
    if (first) {
      EXPECT_GT(chunk->offset, 0u);  // the first bytes were rotated away
      first = false;
    }
    if (chunk->data.empty() && chunk->next_offset == offset) break;
    followed += chunk->data;
    offset = chunk->next_offset;
  }
  EXPECT_EQ(offset, all.size());
  EXPECT_EQ(all.substr(all.size() - followed.size()), followed);
  EXPECT_GT(followed.size(), fs::file_size(log.current()));
}

TEST_F(LogFilesTest, SmallLogIsNotRotated) {
  JobLog log(dir_, 1000, 3);
  ASSERT_TRUE(files::writeFileAtomic(log.current(), "a\nb\n"));
  auto b = log.rotateIfNeeded(0);
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, 0u);
  EXPECT_FALSE(fs::exists(log.rotated(1)));
  EXPECT_EQ(*log.tail(10), "a\nb\n");
  EXPECT_EQ(*log.tail(1), "b\n");
  auto chunk = log.readFrom(0, 2, 100);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->data, "b\n");
  EXPECT_EQ(chunk->next_offset, 4u);
}

}  // namespace
}  // namespace hwl::jobs
