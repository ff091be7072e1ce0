// Crash safety: every token the server acknowledged (201) survives a SIGKILL in the middle of
// concurrent load, the database stays intact and the hash chain verifies.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

using namespace std::chrono_literals;

TEST(CrashSafety, AcknowledgedTokensSurviveSigkillUnderLoad) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  // Frequent checkpoints, so the kill also lands between a checkpoint's commit and its export.
  srv.start({"--checkpoint-every", "25"});

  constexpr int kClients = 32;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acked;
  std::map<int, int> other_statuses;  // status → count, for answers other than 201
  std::vector<std::string> unparsable;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      int n = 0;
      while (!stop) {
        std::string body = R"({"role":"viewer","note":"client )" + std::to_string(i) + " #" +
                           std::to_string(n++) + R"("})";
        Http h = srv.post("/v1/tokens", body);
        std::lock_guard lk(mu);
        if (h.status == 201) {
          try {
            acked.emplace_back(h.obj().at("id").as_string());
          } catch (const std::exception&) {
            unparsable.push_back(h.body);
          }
        } else if (h.status != 0 && !stop) {
          ++other_statuses[h.status];
        }
      }
    });
  }
  std::this_thread::sleep_for(2500ms);
  srv.crash();
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_TRUE(unparsable.empty()) << "a 201 with a broken body: " << unparsable.front();
  EXPECT_TRUE(other_statuses.empty()) << "unexpected status " << other_statuses.begin()->first;
  ASSERT_GE(acked.size(), 50U) << "the load never got going";
  const std::set<std::string> acked_set(acked.begin(), acked.end());
  EXPECT_EQ(acked_set.size(), acked.size()) << "the server handed out the same id twice";

  srv.start({"--checkpoint-every", "25"});
  auto verify = srv.get("/v1/ledger/verify");
  ASSERT_EQ(verify.status, 200) << verify.body;
  auto rep = verify.obj();
  EXPECT_TRUE(rep.at("ok").as_bool()) << verify.body;
  EXPECT_TRUE(rep.at("first_bad_seq").is_null()) << verify.body;
  EXPECT_TRUE(rep.at("checkpoints_ok").as_bool()) << verify.body;
  EXPECT_GE(rep.at("checkpoints_checked").as_int64(), 2 * static_cast<int64_t>(acked.size() / 25))
      << verify.body;

  // Every acknowledged id, once, in the events and in the projection.
  auto event_ids = lines(sqlite(
      srv.db(), "SELECT json_extract(data, '$.id') FROM events WHERE type = 'token.created'"));
  auto table_ids = lines(sqlite(srv.db(), "SELECT id FROM tokens"));
  const std::set<std::string> in_events(event_ids.begin(), event_ids.end());
  const std::set<std::string> in_table(table_ids.begin(), table_ids.end());
  EXPECT_EQ(in_events.size(), event_ids.size()) << "duplicate token.created events";
  EXPECT_EQ(in_table.size(), table_ids.size());
  EXPECT_EQ(in_events, in_table) << "the tokens projection disagrees with the events";
  size_t missing = 0;
  for (const auto& id : acked_set) {
    if (!in_events.count(id)) {
      ++missing;
      ADD_FAILURE() << "acknowledged token " << id << " is not in the ledger";
      if (missing > 5) break;
    }
  }
  // Everything in the ledger is the init token, an acknowledged one, or one committed whose
  // answer was lost to the kill; nothing else.
  EXPECT_GE(in_events.size(), acked_set.size() + 1);
  EXPECT_EQ(sqlite(srv.db(), "SELECT count(*) FROM events"),
            sqlite(srv.db(), "SELECT max(seq) FROM events"));

  // The tokens still authenticate after the restart.
  auto list = srv.get("/v1/tokens");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.obj().at("tokens").as_array().size(), in_table.size());

  auto st = srv.stop();
  EXPECT_TRUE(st.success()) << st.describe() << srv.serverErr();
  EXPECT_EQ(sqlite(srv.db(), "PRAGMA integrity_check"), "ok");
  auto offline = cli({"ledger", "verify", "--db", srv.db().string()});
  EXPECT_EQ(offline.code(), 0) << offline.out << offline.err;
  EXPECT_NE(offline.out.find("ledger OK"), std::string::npos) << offline.out;
  // Every checkpoint signed before the kill reached the exported log (on restart at the latest).
  EXPECT_EQ(lines(readFile(srv.checkpointLog())).size(),
            std::stoul(sqlite(srv.db(), "SELECT count(*) FROM checkpoints")));
}

}  // namespace
}  // namespace hwl::itest
