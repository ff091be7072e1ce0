// Tests of hwl::outbox::Outbox: format, ordering, bound policy, torn tails, SIGKILL durability.
#include "hwl/outbox/outbox.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace hwl::outbox {
namespace {

namespace fs = std::filesystem;

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hwl-outbox-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Outbox> open(uint64_t max_entries = 100) {
    auto box = Outbox::open(
        {.dir = dir_, .host_id = "host-a", .max_entries = max_entries, .clock = &clock_});
    EXPECT_TRUE(box.has_value()) << (box ? "" : box.error().toString());
    return box ? std::move(*box) : nullptr;
  }

  fs::path dir_;
  ManualClock clock_{1'700'000'000'123};
};

TEST_F(OutboxTest, AppendReturnsSequencedEntriesWithStableIds) {
  auto box = open();
  auto a = box->append("job.started", {{"job_id", "j1"}});
  auto b = box->append("job.exited", {{"job_id", "j1"}, {"exit_code", 0}});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->seq, 1u);
  EXPECT_EQ(b->seq, 2u);
  EXPECT_EQ(b->id, "host-a:2");
  EXPECT_EQ(boost::json::serialize(a->toJson()),
            R"({"seq":1,"id":"host-a:1","type":"job.started","time_ms":1700000000123,)"
            R"("data":{"job_id":"j1"}})");
  auto all = box->read(0, 10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].type, "job.exited");
  auto after = box->read(1, 10);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].seq, 2u);
  EXPECT_EQ(box->read(0, 1).size(), 1u);
  EXPECT_TRUE(box->read(2, 10).empty());
  EXPECT_FALSE(box->append("", {}).has_value());
}

TEST_F(OutboxTest, ReopenKeepsEntriesAndContinuesSeqs) {
  {
    auto box = open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(box->append("probe.gpu_appeared", {{"i", i}}));
  }
  auto box = open();
  auto all = box->read(0, 100);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[4].data.at("i").as_int64(), 4);
  auto next = box->append("probe.gpu_vanished", {});
  ASSERT_TRUE(next);
  EXPECT_EQ(next->seq, 6u);
  EXPECT_EQ(box->stats().discarded_tail_bytes, 0u);
}

TEST_F(OutboxTest, OpenRemovesTheTemporaryOfACompactionCutShortAndNothingElse) {
  {
    auto box = open();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(box->append("probe.gpu_appeared", {{"i", i}}));
  }
  std::vector<fs::path> journals;
  for (const auto& e : fs::directory_iterator(dir_)) journals.push_back(e.path());
  ASSERT_EQ(journals.size(), 1u);
  const fs::path leftover = journals[0].string() + ".tmp.4242.0";
  const fs::path unrelated = journals[0].string() + ".tmp.notours";
  const fs::path other = dir_ / "other.tmp.4242.0";
  for (const auto& p : {leftover, unrelated, other}) std::ofstream(p) << std::string(1024, 'x');
  auto box = open();
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_TRUE(fs::exists(unrelated));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_EQ(box->read(0, 100).size(), 3u);
}

TEST_F(OutboxTest, TornLastRecordIsDiscardedOnOpen) {
  uint64_t size_after_four = 0;
  {
    auto box = open();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(box->append("job.started", {{"i", i}}));
    size_after_four = box->stats().file_bytes;
    ASSERT_TRUE(box->append("job.started", {{"i", 4}}));
  }
  const fs::path journal = dir_ / kJournalFile;
  const uint64_t full = fs::file_size(journal);
  // Every way the last record can be cut short: inside the header, inside the payload.
  for (uint64_t cut : {full - 1, full - 7, size_after_four + 5, size_after_four + 1}) {
    fs::resize_file(journal, cut);
    auto box = open();
    auto all = box->read(0, 100);
    ASSERT_EQ(all.size(), 4u) << "cut at " << cut;
    EXPECT_EQ(box->stats().discarded_tail_bytes, cut - size_after_four);
    EXPECT_EQ(fs::file_size(journal), size_after_four);
    auto again = box->append("job.started", {{"i", 4}});  // the torn one was never acknowledged
    ASSERT_TRUE(again);
    EXPECT_EQ(again->seq, 5u);
  }
}

TEST_F(OutboxTest, CorruptedOrGarbageTailIsDiscarded) {
  {
    auto box = open();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(box->append("job.started", {{"i", i}}));
  }
  const fs::path journal = dir_ / kJournalFile;
  const uint64_t size = fs::file_size(journal);
  {
    // Flip one payload byte of the last record: the CRC must catch it.
    std::fstream f(journal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 3));
    f.put('#');
  }
  {
    auto box = open();
    EXPECT_EQ(box->read(0, 100).size(), 2u);
    EXPECT_GT(box->stats().discarded_tail_bytes, 0u);
  }
  {
    std::ofstream f(journal, std::ios::app | std::ios::binary);
    f << "HWO1\xff\xff";  // a header cut short
  }
  auto box = open();
  EXPECT_EQ(box->read(0, 100).size(), 2u);
  EXPECT_EQ(box->stats().discarded_tail_bytes, 6u);
}

TEST_F(OutboxTest, FullOfUndrainedEntriesRefusesAndWritesNothing) {
  auto box = open(4);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(box->append("job.started", {{"i", i}}));
  auto s = box->stats();
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.capacity, 4u);
  EXPECT_FALSE(s.near_full);  // 3 < 0.8 * 4
  ASSERT_TRUE(box->append("job.started", {{"i", 3}}));
  EXPECT_TRUE(box->stats().near_full);
  const uint64_t bytes = fs::file_size(dir_ / kJournalFile);
  auto refused = box->append("job.started", {{"i", 4}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::kResourceExhausted);
  EXPECT_EQ(fs::file_size(dir_ / kJournalFile), bytes);
  EXPECT_EQ(box->read(0, 100).size(), 4u);

  // The server drains through seq 2: room for two more, seqs continue, drained ones compacted.
  ASSERT_TRUE(box->acknowledge(2));
  auto e5 = box->append("job.started", {{"i", 4}});
  auto e6 = box->append("job.started", {{"i", 5}});
  ASSERT_TRUE(e5 && e6);
  EXPECT_EQ(e5->seq, 5u);
  EXPECT_EQ(e6->seq, 6u);
  EXPECT_FALSE(box->append("job.started", {}));
  auto rest = box->read(0, 100);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest.front().seq, 3u);
  EXPECT_EQ(box->stats().acknowledged_seq, 2u);
}

TEST_F(OutboxTest, CompactionNeverReusesSeqsAcrossReopen) {
  {
    auto box = open(8);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(box->append("job.started", {{"i", i}}));
    ASSERT_TRUE(box->acknowledge(6));  // everything drained: compacts to an empty journal
    EXPECT_EQ(box->stats().stored, 0u);
    ASSERT_TRUE(box->acknowledge(100));  // beyond the last seq: clamped, harmless
  }
  auto box = open(8);
  EXPECT_TRUE(box->read(0, 100).empty());
  EXPECT_EQ(box->stats().acknowledged_seq, 6u);
  auto e = box->append("job.started", {});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->seq, 7u);
  EXPECT_EQ(e->id, "host-a:7");
}

TEST_F(OutboxTest, OversizedEntryIsRejected) {
  auto box = open();
  auto e = box->append("job.exited", {{"log_tail", std::string(kMaxEntryBytes + 1, 'x')}});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Code::kInvalidArgument);
  EXPECT_EQ(box->lastSeq(), 0u);
}

// A writer process appends as fast as it can and prints each seq after append() returned; the
// test SIGKILLs it mid-stream, several times over the same journal. Every printed seq must be
// there after reopen (unless drained and compacted), once, in order; no seq may be reused.
void runKillRounds(const fs::path& dir, uint64_t max_entries, uint64_t ack_every) {
  std::set<uint64_t> acknowledged;
  uint64_t highest = 0;
  for (int round = 0; round < 6; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      const std::string max = std::to_string(max_entries);
      const std::string ack = std::to_string(ack_every);
      ::execl(HWL_OUTBOX_WRITER, HWL_OUTBOX_WRITER, dir.c_str(), max.c_str(), ack.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(80 + 37 * round));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited on its own: " << status;
    std::string out;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    std::istringstream lines(out);
    std::string line;
    uint64_t printed = 0;
    // Each seq is printed with one write() of a few bytes, so lines are never torn.
    while (std::getline(lines, line)) {
      const uint64_t seq = std::stoull(line);
      EXPECT_GT(seq, highest) << "seq reused in round " << round;
      highest = std::max(highest, seq);
      acknowledged.insert(seq);
      ++printed;
    }
    ASSERT_GT(printed, 0u) << "writer printed nothing in round " << round;
    ::testing::Test::RecordProperty("round" + std::to_string(round) + "_acknowledged",
                                    std::to_string(printed));

    auto box = Outbox::open({.dir = dir, .host_id = "host-a", .max_entries = max_entries});
    ASSERT_TRUE(box) << box.error().toString();
    const auto stats = (*box)->stats();
    const auto entries = (*box)->read(0, SIZE_MAX);
    std::set<uint64_t> present;
    uint64_t prev = 0;
    for (const auto& e : entries) {
      EXPECT_GT(e.seq, prev);
      prev = e.seq;
      EXPECT_TRUE(present.insert(e.seq).second) << "duplicate seq " << e.seq;
      EXPECT_EQ(e.id, "host-a:" + std::to_string(e.seq));
    }
    for (uint64_t seq : acknowledged) {
      if (seq <= stats.acknowledged_seq) continue;  // drained and compacted
      EXPECT_TRUE(present.contains(seq)) << "acknowledged seq " << seq << " lost";
    }
    EXPECT_GE(stats.last_seq, highest);
    highest = std::max(highest, stats.last_seq);  // the next writer continues after these
  }
}

TEST_F(OutboxTest, EveryAcknowledgedEntrySurvivesSigkill) { runKillRounds(dir_, 1'000'000, 0); }

TEST_F(OutboxTest, SigkillDuringCompactionLosesNothingUndrained) { runKillRounds(dir_, 400, 40); }

}  // namespace
}  // namespace hwl::outbox
