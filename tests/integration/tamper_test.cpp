// Tamper detection: a ledger of 50 events, stopped gracefully (so its head is covered by a signed
// checkpoint), edited with the sqlite3 shell in the ways an attacker would; `hwledger ledger
// verify` must refuse each copy and name the first bad seq.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;

constexpr int64_t kEvents = 50;

class TamperDetection : public ::testing::Test {
 protected:
  // The pristine ledger is built once per process, by the first test that needs it (in SetUp
  // rather than SetUpTestSuite, so a failure to build it fails the test instead of skipping it).
  void SetUp() override {
    if (pristine_ != nullptr) return;
    delete tmp_;
    tmp_ = new TempDir("hwl-it-tamper");
    LedgerServer srv(tmp_->path(), "pristine");
    srv.init();  // seq 1: the admin token
    srv.start();
    srv.createTokens(static_cast<int>(kEvents - 1));
    auto st = srv.stop();
    ASSERT_TRUE(st.success()) << st.describe() << srv.serverErr();
    pristine_ = new fs::path(srv.dataDir());
  }
  static void TearDownTestSuite() {
    delete pristine_;
    delete tmp_;
    pristine_ = nullptr;
    tmp_ = nullptr;
  }

  // A fresh copy of the pristine data directory.
  fs::path copy() {
    fs::path to = tmp_->path() / ("copy" + std::to_string(++copies_));
    copyDir(*pristine_, to);
    return to;
  }

  struct Verdict {
    int code = -1;
    std::optional<int64_t> first_bad;
    std::string text;
    bj::object report;
  };
  // Runs the offline verifier twice: as text and as JSON.
  static Verdict verify(const fs::path& dir) {
    Verdict v;
    auto text = cli({"ledger", "verify", "--db", (dir / "ledger.db").string()});
    auto json = cli({"--json", "ledger", "verify", "--db", (dir / "ledger.db").string()});
    v.code = text.code();
    v.text = text.out + text.err;
    EXPECT_EQ(json.code(), text.code()) << json.out << json.err;
    v.report = bj::parse(json.out).as_object();
    if (!v.report.at("first_bad_seq").is_null())
      v.first_bad = v.report.at("first_bad_seq").as_int64();
    auto at = text.out.find("first bad seq: ");
    if (v.first_bad) {
      EXPECT_NE(at, std::string::npos) << text.out;
      if (at != std::string::npos) {
        EXPECT_EQ(std::stoll(text.out.substr(at + 15)), *v.first_bad) << text.out;
      }
    }
    return v;
  }

  static std::string row(const fs::path& dir, int64_t seq) {
    return sqlite(dir / "ledger.db",
                  "SELECT quote(id), quote(stream), version, quote(type), time_ms, quote(actor), "
                  "quote(data), quote(prev_hash), quote(hash) FROM events WHERE seq = " +
                      std::to_string(seq));
  }

  static TempDir* tmp_;
  static fs::path* pristine_;
  int copies_ = 0;
};

TempDir* TamperDetection::tmp_ = nullptr;
fs::path* TamperDetection::pristine_ = nullptr;

TEST_F(TamperDetection, UntouchedCopyVerifies) {
  auto dir = copy();
  EXPECT_EQ(sqlite(dir / "ledger.db", "SELECT max(seq) FROM events"), std::to_string(kEvents));
  // The shutdown checkpoint covers the head.
  auto last = lines(readFile(dir / "checkpoints.log")).back();
  EXPECT_EQ(bj::parse(last).as_object().at("seq").as_int64(), kEvents) << last;
  auto v = verify(dir);
  EXPECT_EQ(v.code, 0) << v.text;
  EXPECT_TRUE(v.report.at("ok").as_bool());
  EXPECT_TRUE(v.report.at("checkpoints_ok").as_bool());
  EXPECT_EQ(v.report.at("events").as_int64(), kEvents);
  EXPECT_EQ(v.report.at("head_seq").as_int64(), kEvents);
  EXPECT_GE(v.report.at("checkpoints_checked").as_int64(), 2);
  EXPECT_FALSE(v.first_bad);
  EXPECT_NE(v.text.find("ledger OK"), std::string::npos) << v.text;
}

TEST_F(TamperDetection, EditOfAnyColumnIsDetectedAtThatRow) {
  constexpr int64_t kSeq = 25;
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"id", "id = id || 'x'"},
      {"stream", "stream = 'token/tok_forged'"},
      {"version", "version = version + 1"},
      {"type", "type = 'token.revoked'"},
      {"time_ms", "time_ms = time_ms + 1"},
      {"actor", "actor = 'system'"},
      {"data", "data = replace(data, '\"role\":\"viewer\"', '\"role\":\"admin\"')"},
      {"prev_hash", "prev_hash = zeroblob(32)"},
      {"hash", "hash = randomblob(32)"},
  };
  for (const auto& [column, set] : edits) {
    SCOPED_TRACE("column " + column);
    auto dir = copy();
    auto before = row(dir, kSeq);
    sqlite(dir / "ledger.db", "UPDATE events SET " + set + " WHERE seq = " + std::to_string(kSeq));
    ASSERT_NE(row(dir, kSeq), before) << "the edit changed nothing";
    auto v = verify(dir);
    EXPECT_EQ(v.code, 1) << v.text;
    EXPECT_FALSE(v.report.at("ok").as_bool());
    ASSERT_TRUE(v.first_bad) << v.text;
    EXPECT_EQ(*v.first_bad, kSeq) << v.text;
  }
}

TEST_F(TamperDetection, DeletedMiddleRowIsDetected) {
  auto dir = copy();
  sqlite(dir / "ledger.db", "DELETE FROM events WHERE seq = 25");
  ASSERT_EQ(sqlite(dir / "ledger.db", "SELECT count(*) FROM events"), std::to_string(kEvents - 1));
  auto v = verify(dir);
  EXPECT_EQ(v.code, 1) << v.text;
  ASSERT_TRUE(v.first_bad) << v.text;
  EXPECT_EQ(*v.first_bad, 25) << v.text;
}

TEST_F(TamperDetection, SwappedRowsAreDetected) {
  auto dir = copy();
  auto r20 = row(dir, 20), r30 = row(dir, 30);
  sqlite(dir / "ledger.db",
         "BEGIN; UPDATE events SET seq = -1 WHERE seq = 20; "
         "UPDATE events SET seq = 20 WHERE seq = 30; UPDATE events SET seq = 30 WHERE seq = -1; "
         "COMMIT;");
  ASSERT_EQ(row(dir, 20), r30);
  ASSERT_EQ(row(dir, 30), r20);
  auto v = verify(dir);
  EXPECT_EQ(v.code, 1) << v.text;
  ASSERT_TRUE(v.first_bad) << v.text;
  EXPECT_EQ(*v.first_bad, 20) << v.text;
}

TEST_F(TamperDetection, TruncatedTailIsDetectedByTheExportedCheckpoint) {
  constexpr int64_t kDropped = 5;
  constexpr int64_t kKept = kEvents - kDropped;
  auto dir = copy();
  // The attacker also removes the checkpoints kept inside the database; only the exported log
  // still knows where the ledger ended.
  sqlite(dir / "ledger.db", "DELETE FROM events WHERE seq > " + std::to_string(kKept) +
                                "; DELETE FROM checkpoints WHERE seq > " + std::to_string(kKept));
  ASSERT_EQ(sqlite(dir / "ledger.db", "SELECT max(seq) FROM events"), std::to_string(kKept));
  auto v = verify(dir);
  EXPECT_EQ(v.code, 1) << v.text;
  EXPECT_FALSE(v.report.at("checkpoints_ok").as_bool()) << v.text;
  ASSERT_TRUE(v.first_bad) << v.text;
  EXPECT_EQ(*v.first_bad, kKept + 1) << v.text;

  // Without the log, the truncated chain is self-consistent: the log is what catches it.
  auto blind = cli({"ledger", "verify", "--db", (dir / "ledger.db").string(), "--checkpoints",
                    (dir / "no-such.log").string()});
  EXPECT_EQ(blind.code(), 0) << blind.out << blind.err;
}

TEST_F(TamperDetection, ForgedCheckpointSignatureIsDetected) {
  auto dir = copy();
  auto log = readFile(dir / "checkpoints.log");
  auto last = lines(log).back();
  auto o = bj::parse(last).as_object();
  std::string sig(o.at("signature").as_string());
  sig[0] = sig[0] == '0' ? '1' : '0';
  o["signature"] = sig;
  writeFile(dir / "checkpoints.log",
            log.substr(0, log.size() - last.size() - 1) + bj::serialize(o) + "\n");
  auto v = verify(dir);
  EXPECT_EQ(v.code, 1) << v.text;
  EXPECT_FALSE(v.report.at("checkpoints_ok").as_bool()) << v.text;
}

}  // namespace
}  // namespace hwl::itest
