// The ledger's contract: atomic, idempotent appends with version checks; a hash chain and signed
// checkpoints that catch every kind of edit; projections rebuilt byte for byte; migrations.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "hwl/crypto.hpp"
#include "storage/migrations.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/tokens_projection.hpp"

namespace hwl::storage {
namespace {

using namespace hwl::ledger;  // NOLINT(google-build-using-namespace): the types under test

namespace fs = std::filesystem;
namespace bj = boost::json;

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hwl-ledger-" + crypto::newId("", 6));
    fs::create_directories(dir_);
    auto k = crypto::generateEd25519();
    key_ = std::shared_ptr<EVP_PKEY>(k.release(), crypto::PkeyFree{});
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }
  LedgerOptions options(int64_t every = 1000) {
    LedgerOptions o;
    o.db_path = dir_ / "ledger.db";
    o.create = true;
    o.checkpoint_every = every;
    o.checkpoint_log = dir_ / "checkpoints.log";
    o.signing_key = key_;
    o.clock = &clock_;
    o.projections.push_back(std::make_unique<TokensProjection>());
    return o;
  }
  SqliteLedger& open(int64_t every = 1000) {
    auto l = SqliteLedger::open(options(every));
    EXPECT_TRUE(l.has_value()) << (l ? "" : l.error().message);
    ledger_ = std::move(*l);
    return *ledger_;
  }
  std::shared_ptr<EVP_PKEY> publicKey() {
    auto p = crypto::publicKeyFromPem(crypto::publicKeyPem(key_.get()));
    return std::shared_ptr<EVP_PKEY>(p->release(), crypto::PkeyFree{});
  }
  VerifyReport verifyFile() {
    auto db = sqlite::Db::open(dir_ / "ledger.db", sqlite::Db::Mode::kReadOnly);
    EXPECT_TRUE(db.has_value());
    return verifyDatabase(*db, {publicKey(), dir_ / "checkpoints.log"});
  }
  void sql(const std::string& s) {
    auto db = sqlite::Db::open(dir_ / "ledger.db");
    ASSERT_TRUE(db.has_value());
    auto r = db->exec(s);
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }
  static NewEvent ev(std::string id, std::string type, bj::value data) {
    return NewEvent{std::move(id), std::move(type), std::move(data)};
  }

  fs::path dir_;
  std::shared_ptr<EVP_PKEY> key_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<SqliteLedger> ledger_;
};

TEST_F(LedgerTest, AppendAssignsSeqVersionAndChainsHashes) {
  auto& l = open();
  auto a = l.append("s/1", kNoStream, "tester",
                    {ev("e1", "t.a", {{"x", 1}}), ev("e2", "t.b", {{"y", 2}})});
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->seqs, (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(a->duplicate);
  auto b = l.append("s/2", kNoStream, "tester", {ev("e3", "t.a", {{"z", 3}})});
  ASSERT_TRUE(b.has_value());
  auto evs = l.read({0, 10, "", ""}).value();
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[1].version, 2);
  EXPECT_EQ(evs[2].version, 1);
  EXPECT_EQ(evs[0].prev_hash, crypto::Digest{});
  EXPECT_EQ(evs[1].prev_hash, evs[0].hash);
  EXPECT_EQ(evs[2].prev_hash, evs[1].hash);
  EXPECT_EQ(evs[0].time_ms, 1'700'000'000'000);
  // The stored hash is the documented formula over the stored fields.
  crypto::Sha256 h;
  auto e = evs[2];
  EXPECT_EQ(eventHash(h, e.prev_hash, e.seq, e.id, e.stream, e.version, e.type, e.time_ms, e.actor,
                      e.data),
            e.hash);
  EXPECT_EQ(l.read({0, 10, "s/1", ""}).value().size(), 2u);
  EXPECT_EQ(l.read({0, 10, "", "t.a"}).value().size(), 2u);
  EXPECT_EQ(l.read({1, 1, "", ""}).value().front().seq, 2);
}

// readAll and forEachEvent page through everything a query selects, whatever the page size; a
// callback's error stops the walk.
TEST_F(LedgerTest, ReadAllPagesThroughEveryMatchingEvent) {
  auto& l = open();
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(l.append(i % 2 == 0 ? "s/even" : "s/odd", kAnyVersion, "tester",
                         {ev("e" + std::to_string(i), "t.a", {{"i", i}})})
                    .has_value());
  }
  auto all = readAll(l, {0, 10, "s/even", ""});
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 13U);
  for (size_t k = 0; k < all->size(); ++k)
    EXPECT_EQ((*all)[k].seq, static_cast<int64_t>(2 * k + 1));
  EXPECT_EQ(readAll(l, {0, 0, "", "t.a"})->size(), 25U);  // 0: the default page
  int seen = 0;
  auto stopped = forEachEvent(l, {0, 4, "", ""}, [&](Event&) -> Status {
    return ++seen == 6 ? Status(internal("enough")) : Status{};
  });
  ASSERT_FALSE(stopped.has_value());
  EXPECT_EQ(stopped.error().message, "enough");
  EXPECT_EQ(seen, 6);
}

TEST_F(LedgerTest, PayloadsAreStoredAsCanonicalJson) {
  auto& l = open();
  auto data = bj::parse(R"({"b": [1, {"d": 2, "c": 3}], "a": "x"})");
  ASSERT_TRUE(l.append("s", kAnyVersion, "t", {ev("", "t", data)}).has_value());
  EXPECT_EQ(l.read({0, 1, "", ""}).value().front().data, R"({"a":"x","b":[1,{"c":3,"d":2}]})");
}

TEST_F(LedgerTest, WrongExpectedVersionIsAConflictAndWritesNothing) {
  auto& l = open();
  ASSERT_TRUE(l.append("s", kNoStream, "t", {ev("a", "t", {})}).has_value());
  auto r = l.append("s", kNoStream, "t", {ev("b", "t", {})});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kConflict);
  EXPECT_EQ(r.error().message, "stream \"s\" is at version 1, not the expected 0");
  EXPECT_TRUE(l.append("s", 1, "t", {ev("b", "t", {})}).has_value());
  EXPECT_EQ(l.headSeq(), 2);
}

TEST_F(LedgerTest, SameIdSameContentReturnsOriginalSeq) {
  auto& l = open();
  auto first = l.append("s", kAnyVersion, "t", {ev("dup", "t", {{"k", 1}})});
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(l.append("s", kAnyVersion, "t", {ev("other", "t", {})}).has_value());
  // A retry: even with a now-stale expected version it is the same append, answered again.
  auto again = l.append("s", kNoStream, "t", {ev("dup", "t", {{"k", 1}})});
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->seqs, first->seqs);
  EXPECT_EQ(l.headSeq(), 2);
}

TEST_F(LedgerTest, SameIdDifferentContentIsAConflict) {
  auto& l = open();
  ASSERT_TRUE(l.append("s", kAnyVersion, "t", {ev("dup", "t", {{"k", 1}})}).has_value());
  for (auto bad : {ev("dup", "t", {{"k", 2}}), ev("dup", "u", {{"k", 1}})}) {
    auto r = l.append("s", kAnyVersion, "t", {bad});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Code::kConflict);
    EXPECT_EQ(r.error().message, "event id \"dup\" already exists with different content");
  }
  auto other_stream = l.append("s2", kAnyVersion, "t", {ev("dup", "t", {{"k", 1}})});
  ASSERT_FALSE(other_stream.has_value());
  EXPECT_EQ(other_stream.error().code, Code::kConflict);
  // Partly new, partly existing: refused as a whole.
  auto mixed = l.append("s", kAnyVersion, "t", {ev("dup", "t", {{"k", 1}}), ev("new", "t", {})});
  ASSERT_FALSE(mixed.has_value());
  EXPECT_EQ(mixed.error().code, Code::kConflict);
  EXPECT_EQ(l.headSeq(), 1);
}

TEST_F(LedgerTest, MultiStreamAppendIsAtomic) {
  auto& l = open();
  ASSERT_TRUE(l.append("b", kNoStream, "t", {ev("b1", "t", {})}).has_value());
  AppendRequest req;
  req.actor = "t";
  req.parts.push_back({"a", kNoStream, {ev("a1", "t", {})}});
  req.parts.push_back({"b", kNoStream, {ev("b2", "t", {})}});  // b is at 1: conflict
  auto r = l.append(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(l.headSeq(), 1);
  EXPECT_TRUE(l.read({0, 10, "a", ""}).value().empty());
  req.parts[1].expected_version = 1;
  auto ok = l.append(req);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->seqs, (std::vector<int64_t>{2, 3}));
}

TEST_F(LedgerTest, ConcurrentAppendersGetUniqueContiguousSeqs) {
  auto& l = open(100);
  constexpr int kThreads = 64, kEach = 40;
  std::vector<std::thread> ts;
  std::mutex mu;
  std::set<int64_t> seqs;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = l.append("s/" + std::to_string(t), kAnyVersion, "t",
                          {ev("e" + std::to_string(t) + "-" + std::to_string(i), "t", {{"i", i}})});
        if (!r) {
          ++failures;
          continue;
        }
        std::lock_guard lk(mu);
        seqs.insert(r->seqs.front());
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), kThreads * kEach);
  auto rep = l.verify();
  EXPECT_TRUE(rep.ok) << rep.problem;
  EXPECT_EQ(rep.events, kThreads * kEach);
  // Per-stream versions are contiguous too.
  auto s7 = l.read({0, 1000, "s/7", ""}).value();
  ASSERT_EQ(s7.size(), static_cast<size_t>(kEach));
  for (int i = 0; i < kEach; ++i) EXPECT_EQ(s7[i].version, i + 1);
}

TEST_F(LedgerTest, CheckpointsEveryNAndAtClose) {
  auto& l = open(10);
  for (int i = 0; i < 25; ++i)
    ASSERT_TRUE(l.append("s", kAnyVersion, "t", {ev("", "t", {{"i", i}})}).has_value());
  auto cps = l.checkpoints(0, 100).value();
  ASSERT_EQ(cps.size(), 2u);
  EXPECT_EQ(cps[0].seq, 10);
  EXPECT_EQ(cps[1].seq, 20);
  auto pub = publicKey();
  for (const auto& c : cps)
    EXPECT_TRUE(
        crypto::verify(pub.get(), checkpointMessage(c.seq, c.hash, c.time_ms), c.signature));
  l.close();
  std::ifstream in(dir_ / "checkpoints.log");
  std::string line, last;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    last = line;
  }
  EXPECT_EQ(lines, 3);
  EXPECT_EQ(bj::parse(last).as_object().at("seq").as_int64(), 25);
  auto rep = verifyFile();
  EXPECT_TRUE(rep.ok) << rep.problem;
  EXPECT_EQ(rep.checkpoints_checked, 6);  // three in the table, three in the log
}

TEST_F(LedgerTest, VerifyNamesTheFirstBadSeqForEachKindOfEdit) {
  {
    auto& l = open(1000);
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(l.append("s", kAnyVersion, "t", {ev("", "t", {{"i", i}})}).has_value());
    l.close();
    ledger_.reset();
  }
  ASSERT_TRUE(verifyFile().ok);
  fs::copy_file(dir_ / "ledger.db", dir_ / "pristine.db");
  auto restore = [&] {
    fs::remove(dir_ / "ledger.db-wal");
    fs::remove(dir_ / "ledger.db-shm");
    fs::copy_file(dir_ / "pristine.db", dir_ / "ledger.db", fs::copy_options::overwrite_existing);
  };
  struct Case {
    std::string sql;
    int64_t first_bad;
  };
  std::vector<Case> cases = {
      {"UPDATE events SET data='{\"i\":99}' WHERE seq=7", 7},
      {"UPDATE events SET id='forged' WHERE seq=5", 5},
      {"UPDATE events SET stream='x' WHERE seq=4", 4},
      {"UPDATE events SET version=version+100 WHERE seq=9", 9},
      {"UPDATE events SET type='other' WHERE seq=3", 3},
      {"UPDATE events SET time_ms=time_ms+1 WHERE seq=12", 12},
      {"UPDATE events SET actor='mallory' WHERE seq=2", 2},
      {"UPDATE events SET prev_hash=zeroblob(32) WHERE seq=6", 6},
      {"UPDATE events SET hash=zeroblob(32) WHERE seq=8", 8},
      {"DELETE FROM events WHERE seq=10", 10},
      // Swap the contents of rows 11 and 12 (seq stays): both no longer chain.
      {"UPDATE events SET seq=-11 WHERE seq=11; UPDATE events SET seq=11 WHERE seq=12; "
       "UPDATE events SET seq=12 WHERE seq=-11",
       11},
      // Truncation of the tail is caught by the checkpoint signed at close (seq 20).
      {"DELETE FROM events WHERE seq>17; DELETE FROM checkpoints", 18},
  };
  for (const auto& c : cases) {
    restore();
    sql(c.sql);
    auto rep = verifyFile();
    EXPECT_FALSE(rep.ok) << c.sql;
    ASSERT_TRUE(rep.first_bad_seq.has_value()) << c.sql;
    EXPECT_EQ(*rep.first_bad_seq, c.first_bad) << c.sql << ": " << rep.problem;
  }
  // A consistent rewrite of the whole chain without the key is caught by the checkpoints.
  restore();
  {
    auto db = sqlite::Db::open(dir_ / "ledger.db");
    ASSERT_TRUE(db->exec("UPDATE events SET data='{\"i\":-1}' WHERE seq=15"));
    crypto::Sha256 h;
    crypto::Digest prev{};
    auto st = db->prepare(
        "SELECT seq,id,stream,version,type,time_ms,actor,data FROM events ORDER BY seq");
    std::vector<std::pair<int64_t, std::pair<crypto::Digest, crypto::Digest>>> rows;
    while (st->step().value()) {
      auto d = eventHash(h, prev, st->i64(0), st->text(1), st->text(2), st->i64(3), st->text(4),
                         st->i64(5), st->text(6), st->text(7));
      rows.push_back({st->i64(0), {prev, d}});
      prev = d;
    }
    for (auto& [seq, hp] : rows) {
      auto up = db->prepare("UPDATE events SET prev_hash=?, hash=? WHERE seq=?");
      up->bindBlob(1, hp.first.data(), 32).bindBlob(2, hp.second.data(), 32).bind(3, seq);
      ASSERT_TRUE(up->run());
    }
  }
  auto rep = verifyFile();
  EXPECT_FALSE(rep.ok);
  EXPECT_FALSE(rep.checkpoints_ok);
  restore();
  EXPECT_TRUE(verifyFile().ok);
}

TEST_F(LedgerTest, ProjectionRebuildIsByteIdentical) {
  auto& l = open();
  for (int i = 0; i < 30; ++i) {
    bj::object d{{"id", "tok_" + std::to_string(i)},
                 {"role", i % 2 ? "viewer" : "admin"},
                 {"note", "n"},
                 {"secret_sha256", crypto::hex(crypto::sha256(std::to_string(i)))}};
    d["expires_ms"] = i % 3 ? bj::value(1'800'000'000'000 + i) : bj::value(nullptr);
    clock_.advanceMs(1000);
    ASSERT_TRUE(
        l.append("token/tok_" + std::to_string(i), kNoStream, "admin", {ev("", "token.created", d)})
            .has_value());
  }
  for (int i = 0; i < 30; i += 4) {
    clock_.advanceMs(500);
    ASSERT_TRUE(l.append("token/tok_" + std::to_string(i), 1, "admin",
                         {ev("", "token.revoked", {{"id", "tok_" + std::to_string(i)}})})
                    .has_value());
  }
  auto before = l.tableDigest("tokens").value();
  EXPECT_NE(before.find("(30 rows)"), std::string::npos);
  // Damage the projection; the rebuild restores it from the events alone.
  sql("UPDATE tokens SET role='admin'; DELETE FROM tokens WHERE id='tok_3'");
  EXPECT_NE(l.tableDigest("tokens").value(), before);
  ASSERT_TRUE(l.rebuildProjections().has_value());
  EXPECT_EQ(l.tableDigest("tokens").value(), before);
  auto t8 = l.withDb([](sqlite::Db& db) { return findToken(db, "tok_8"); }).value();
  ASSERT_TRUE(t8.has_value());
  EXPECT_TRUE(t8->revoked_ms.has_value());
}

TEST_F(LedgerTest, MigrationsAreRecordedAndNotReapplied) {
  open().close();
  ledger_.reset();
  auto o = options();
  o.create = false;
  auto l = SqliteLedger::open(std::move(o));
  ASSERT_TRUE(l.has_value()) << l.error().message;
  auto n = (*l)->withDb(
      [](sqlite::Db& db) { return db.queryInt("SELECT count(*) FROM schema_migrations").value(); });
  EXPECT_EQ(n.value_or(0), static_cast<int64_t>(migrations().size()));
  (*l)->close();
  l->reset();
  sql("INSERT INTO schema_migrations VALUES(999, 'from the future', 0)");
  auto newer = SqliteLedger::open(options());
  ASSERT_FALSE(newer.has_value());
  EXPECT_EQ(newer.error().code, Code::kFailedPrecondition);
}

TEST_F(LedgerTest, ClosedLedgerRefusesAppends) {
  auto& l = open();
  l.close();
  auto r = l.append("s", kAnyVersion, "t", {ev("", "t", {})});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kUnavailable);
}

TEST_F(LedgerTest, InvalidAppendsAreRefused) {
  auto& l = open();
  EXPECT_EQ(l.append("", kAnyVersion, "t", {ev("", "t", {})}).error().code, Code::kInvalidArgument);
  EXPECT_EQ(l.append("s", kAnyVersion, "", {ev("", "t", {})}).error().code, Code::kInvalidArgument);
  EXPECT_EQ(l.append("s", kAnyVersion, "t", {ev("", "", {})}).error().code, Code::kInvalidArgument);
  EXPECT_EQ(l.append("s", kAnyVersion, "t", {}).error().code, Code::kInvalidArgument);
  EXPECT_EQ(l.headSeq(), 0);
}

}  // namespace
}  // namespace hwl::storage
