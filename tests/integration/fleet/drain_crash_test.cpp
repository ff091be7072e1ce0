// The server SIGKILLed while it drains a large outbox backlog, restarted, killed again: in the
// end every outbox seq of the agent is in the ledger exactly once (no duplicates, no gaps).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "fleet_support.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

constexpr int kJobs = 400;  // two entries each (started, exited): more than one outbox page

// Reads the ledger database beside the running (or killed) server, as another process would.
class LedgerReader {
 public:
  explicit LedgerReader(const fs::path& db) {
    sqlite3* h = nullptr;
    int rc = sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
    db_.reset(h);
    if (rc != SQLITE_OK) throw std::runtime_error("cannot open " + db.string());
    sqlite3_busy_timeout(h, 2000);
  }
  // Events whose id is "<host>:<n>".
  int64_t countFrom(const std::string& host) {
    sqlite3_stmt* st = nullptr;
    const std::string sql = "SELECT count(*) FROM events WHERE substr(id, 1, ?1) = ?2";
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("prepare: ") + sqlite3_errmsg(db_.get()));
    const std::string prefix = host + ":";
    sqlite3_bind_int(st, 1, static_cast<int>(prefix.size()));
    sqlite3_bind_text(st, 2, prefix.c_str(), -1, SQLITE_TRANSIENT);
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
  }

 private:
  struct Close {
    void operator()(sqlite3* h) const { sqlite3_close_v2(h); }
  };
  std::unique_ptr<sqlite3, Close> db_;
};

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

TEST(FleetDrainCrash, ServerKilledMidDrainLosesAndRepeatsNothing) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  ASSERT_TRUE(srv.stop().success());

  // A backlog while no server drains: many jobs given straight to the agent (as the server
  // identity, over mutual TLS), each exiting at once. One curl, one connection.
  std::ostringstream cfg;
  auto creds = srv.agentCurlArgs();
  for (int i = 1; i <= kJobs; ++i) {
    if (i > 1) cfg << "next\n";
    char id[32];
    std::snprintf(id, sizeof id, "burst-%04d", i);
    cfg << "url = " << quoted("https://127.0.0.1:" + std::to_string(a.port()) + "/v1/jobs") << "\n"
        << "request = \"POST\"\n"
        << "header = \"Content-Type: application/json\"\n"
        << "data-binary = "
        << quoted(bj::serialize(bj::object{{"id", id}, {"command", bj::array{"/bin/true"}}}))
        << "\n"
        << "output = \"/dev/null\"\n"
        << "write-out = \"%{http_code}\\n\"\n";
    for (size_t c = 0; c + 1 < creds.size(); c += 2)
      cfg << creds[c].substr(2) << " = " << quoted(creds[c + 1]) << "\n";
  }
  writeFile(fleet.root / "burst.curlrc", cfg.str());
  auto burst =
      run({"curl", "-sS", "-K", (fleet.root / "burst.curlrc").string()}, {.timeout = 240s});
  ASSERT_TRUE(burst.status.success()) << burst.err;
  auto codes = lines(burst.out);
  ASSERT_EQ(static_cast<int>(std::count(codes.begin(), codes.end(), "201")), kJobs) << burst.out;

  int64_t total = 0;
  ASSERT_TRUE(eventually(
      [&] {
        auto h = a.call(srv, "GET", "/v1/outbox?after=0&limit=1");
        if (h.status != 200) return false;
        total = i64(h.obj().at("last_seq"));
        return total >= 1 + 2 * kJobs;
      },
      120s))
      << "outbox last_seq " << total;
  ASSERT_EQ(total, 1 + 2 * kJobs);  // the inventory, then started + exited per job

  // Start the server and SIGKILL it as soon as the ledger moves; again until it has it all.
  LedgerReader reader(srv.db());
  int kills = 0, mid_drain = 0;
  int64_t have = reader.countFrom(a.hostId());
  ASSERT_EQ(have, 1);
  while (have < total && kills < 6) {
    srv.launch();
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    int64_t now = have;
    while (now == have && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(200us);
      now = reader.countFrom(a.hostId());
    }
    srv.crash();
    ++kills;
    int64_t after = reader.countFrom(a.hostId());
    ASSERT_GT(after, have) << "no progress within 30 s of a start";
    if (after < total) ++mid_drain;
    have = after;
  }
  EXPECT_GE(mid_drain, 1) << "no SIGKILL landed inside a drain (" << kills << " kills)";
  RecordProperty("kills", kills);
  RecordProperty("kills_mid_drain", mid_drain);

  srv.launch();
  ASSERT_TRUE(eventually([&] { return reader.countFrom(a.hostId()) >= total; }, 60s))
      << reader.countFrom(a.hostId()) << " of " << total;
  std::this_thread::sleep_for(1s);  // a few more drains: they must add nothing

  std::multiset<std::string> ids;
  int64_t conflicts = 0;
  for (const auto& e : srv.allEvents()) {
    std::string id = str(e.at("id"));
    if (id.rfind(a.hostId() + ":", 0) == 0) ids.insert(id);
    if (str(e.at("type")) == "host.outbox_conflict") ++conflicts;
  }
  EXPECT_EQ(conflicts, 0);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), total);
  for (int64_t s = 1; s <= total; ++s)
    EXPECT_EQ(ids.count(a.hostId() + ":" + std::to_string(s)), 1u) << "seq " << s;

  // The projection agrees: every job of the burst exited with 0, none twice.
  int exited = 0;
  const auto jobs = getOk(srv, "/v1/jobs?host=" + a.hostId());
  for (const auto& j : jobs.at("jobs").as_array()) {
    if (str(j.at("id")).rfind("burst-", 0) != 0) continue;
    EXPECT_EQ(str(j.at("state")), "exited") << bj::serialize(j);
    EXPECT_EQ(j.at("exit_code"), bj::value(0)) << bj::serialize(j);
    ++exited;
  }
  EXPECT_EQ(exited, kJobs);
  // And the hash chain holds after the crashes.
  auto verify = cli({"ledger", "verify", "--db", srv.db().string()});
  EXPECT_EQ(verify.code(), 0) << verify.out << verify.err;
}

}  // namespace
}  // namespace hwl::itest::fleet
