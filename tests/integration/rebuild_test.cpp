// Projection rebuild: replaying the events gives byte-identical projection tables.
#include <gtest/gtest.h>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

class ProjectionRebuild : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_.init();
    srv_.start();
    for (int i = 0; i < 12; ++i) {
      std::string role = i % 3 == 0 ? "admin" : i % 3 == 1 ? "operator" : "viewer";
      auto t = srv_.createToken(role, i % 2 == 0 ? std::optional<int64_t>(3600 + i) : std::nullopt,
                                "token " + std::to_string(i));
      ids_.push_back(t.id);
    }
    for (int i : {1, 4, 7, 10}) srv_.revokeToken(ids_[static_cast<size_t>(i)]);
    auto st = srv_.stop();
    ASSERT_TRUE(st.success()) << st.describe();
  }

  RunResult rebuild() {
    return run({serverBin(), "rebuild", "--data-dir", srv_.dataDir().string()});
  }
  std::string dump() { return sqlite(srv_.db(), ".dump tokens"); }

  TempDir tmp_;
  LedgerServer srv_{tmp_.path(), "data"};
  std::vector<std::string> ids_;
};

TEST_F(ProjectionRebuild, RebuiltTokensTableIsByteIdentical) {
  EXPECT_EQ(sqlite(srv_.db(), "SELECT count(*) FROM tokens"), "13");
  EXPECT_EQ(sqlite(srv_.db(), "SELECT count(*) FROM tokens WHERE revoked_ms IS NOT NULL"), "4");
  EXPECT_EQ(sqlite(srv_.db(), "SELECT count(*) FROM tokens WHERE expires_ms IS NOT NULL"), "6");
  auto before = dump();
  ASSERT_NE(before.find("INSERT INTO tokens"), std::string::npos) << before;

  auto r = rebuild();
  ASSERT_EQ(r.code(), 0) << r.out << r.err;
  EXPECT_NE(r.out.find("projections rebuilt: identical"), std::string::npos) << r.out;
  // The digests it prints before and after agree.
  std::string b, a;
  for (const auto& line : lines(r.out)) {
    if (line.rfind("tokens: before ", 0) == 0) b = line.substr(15);
    if (line.rfind("tokens: after  ", 0) == 0) a = line.substr(15);
  }
  EXPECT_FALSE(b.empty()) << r.out;
  EXPECT_EQ(a, b) << r.out;
  EXPECT_NE(b.find("(13 rows)"), std::string::npos) << r.out;

  EXPECT_EQ(dump(), before);
  auto v = cli({"ledger", "verify", "--db", srv_.db().string()});
  EXPECT_EQ(v.code(), 0) << v.out;
}

TEST_F(ProjectionRebuild, RebuildRepairsADamagedProjection) {
  auto good = dump();
  sqlite(srv_.db(), "DELETE FROM tokens WHERE id = '" + ids_[2] +
                        "'; "
                        "UPDATE tokens SET role = 'admin', revoked_ms = NULL WHERE id = '" +
                        ids_[4] + "'");
  ASSERT_NE(dump(), good);

  auto r = rebuild();
  ASSERT_EQ(r.code(), 0) << r.out << r.err;
  EXPECT_NE(r.out.find("projections rebuilt: repaired"), std::string::npos) << r.out;
  EXPECT_EQ(dump(), good);

  // The server honours the rebuilt table: the revoked token is refused again.
  srv_.start();
  auto list = srv_.get("/v1/tokens");
  ASSERT_EQ(list.status, 200);
  int revoked = 0;
  const auto tokens = list.obj();
  for (const auto& t : tokens.at("tokens").as_array())
    if (!t.as_object().at("revoked_ms").is_null()) ++revoked;
  EXPECT_EQ(revoked, 4);
}

}  // namespace
}  // namespace hwl::itest
