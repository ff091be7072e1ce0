// The hwledger CLI against a real server: tokens create/list/revoke configured by environment
// variables or flags, --json output, and the offline ledger verifier.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <chrono>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

namespace bj = boost::json;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bj::object tokenIn(const bj::object& list, const std::string& id) {
  for (const auto& t : list.at("tokens").as_array())
    if (t.as_object().at("id").as_string() == id) return t.as_object();
  ADD_FAILURE() << "token " << id << " not listed";
  return {};
}

TEST(Cli, TokensCreateListRevokeWithEnvironment) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  const Env admin = srv.cliEnv(srv.adminToken());

  auto created = cli(
      {"--json", "tokens", "create", "--role", "operator", "--ttl", "3600", "--note", "ci runner"},
      admin);
  ASSERT_EQ(created.code(), 0) << created.err;
  auto op = bj::parse(created.out).as_object();
  const std::string op_id(op.at("id").as_string());
  const std::string op_token(op.at("token").as_string());
  EXPECT_EQ(op_token.rfind(op_id + ".", 0), 0U) << op_token;
  EXPECT_EQ(std::string(op.at("role").as_string()), "operator");
  EXPECT_EQ(std::string(op.at("note").as_string()), "ci runner");
  EXPECT_NEAR(static_cast<double>(op.at("expires_ms").as_int64()),
              static_cast<double>(nowMs() + 3'600'000), 60'000.0);

  // The human form shows the secret once, with its id.
  auto text = cli({"tokens", "create", "--role", "viewer"}, admin);
  ASSERT_EQ(text.code(), 0) << text.err;
  auto at = text.out.find("id:");
  ASSERT_NE(at, std::string::npos) << text.out;
  const std::string viewer_id =
      lines(text.out.substr(at + 3))[0].substr(lines(text.out.substr(at + 3))[0].find("tok_"));
  EXPECT_NE(text.out.find("token:   " + viewer_id + "."), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("expires: never"), std::string::npos) << text.out;

  auto list = cli({"--json", "tokens", "list"}, admin);
  ASSERT_EQ(list.code(), 0) << list.err;
  auto l1 = bj::parse(list.out).as_object();
  EXPECT_EQ(l1.at("tokens").as_array().size(), 3U);
  EXPECT_TRUE(tokenIn(l1, op_id).at("revoked_ms").is_null());
  EXPECT_EQ(std::string(tokenIn(l1, viewer_id).at("role").as_string()), "viewer");
  EXPECT_EQ(list.out.find(op_token.substr(op_token.find('.') + 1)), std::string::npos)
      << "a secret was listed";
  auto table = cli({"tokens", "list"}, admin);
  ASSERT_EQ(table.code(), 0);
  EXPECT_NE(table.out.find(op_id), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ci runner"), std::string::npos) << table.out;

  // The new token works for the CLI.
  auto events = cli({"--json", "events", "--limit", "2"}, srv.cliEnv(op_token));
  ASSERT_EQ(events.code(), 0) << events.err;
  auto ev = bj::parse(events.out).as_object();
  EXPECT_EQ(ev.at("events").as_array().size(), 2U);
  EXPECT_EQ(ev.at("next_after").as_int64(), 2);

  auto rev = cli({"tokens", "revoke", op_id}, admin);
  EXPECT_EQ(rev.code(), 0) << rev.err;
  EXPECT_EQ(rev.out, "revoked " + op_id + "\n");
  auto l2 = bj::parse(cli({"--json", "tokens", "list"}, admin).out).as_object();
  EXPECT_FALSE(tokenIn(l2, op_id).at("revoked_ms").is_null());
  EXPECT_TRUE(tokenIn(l2, viewer_id).at("revoked_ms").is_null());

  auto again = cli({"tokens", "revoke", op_id}, admin);
  EXPECT_EQ(again.code(), 1);
  EXPECT_NE(again.err.find("409"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("already revoked"), std::string::npos) << again.err;
  auto refused = cli({"events"}, srv.cliEnv(op_token));
  EXPECT_EQ(refused.code(), 1);
  EXPECT_NE(refused.err.find("401"), std::string::npos) << refused.err;

  // Flags instead of the environment.
  auto flags = cli({"--server", srv.url(), "--token", srv.adminToken(), "--ca",
                    srv.caCert().string(), "--json", "events", "--type", "token.revoked"});
  ASSERT_EQ(flags.code(), 0) << flags.err;
  auto revs = bj::parse(flags.out).as_object().at("events").as_array();
  ASSERT_EQ(revs.size(), 1U);
  EXPECT_EQ(std::string(revs[0].as_object().at("stream").as_string()), "token/" + op_id);

  // Misconfiguration is reported, and nothing reaches the ledger.
  const int64_t head = srv.eventCount();
  auto no_server = cli({"tokens", "list"}, {{"HWLEDGER_SERVER", ""}});
  EXPECT_EQ(no_server.code(), 1);
  EXPECT_NE(no_server.err.find("no server"), std::string::npos) << no_server.err;
  LedgerServer other(tmp.path(), "other");
  other.init();
  Env wrong_ca = admin;
  wrong_ca[2].second = other.caCert().string();
  auto untrusted = cli({"tokens", "create", "--role", "admin"}, wrong_ca);
  EXPECT_EQ(untrusted.code(), 1) << untrusted.out;
  EXPECT_EQ(srv.eventCount(), head);
}

TEST(Cli, OfflineVerifyPrintsAJsonReport) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  srv.createTokens(5);
  auto st = srv.stop();
  ASSERT_TRUE(st.success()) << st.describe() << srv.serverErr();
  auto r = cli({"--json", "ledger", "verify", "--db", srv.db().string()});
  ASSERT_EQ(r.code(), 0) << r.out << r.err;
  auto rep = bj::parse(r.out).as_object();
  EXPECT_TRUE(rep.at("ok").as_bool());
  EXPECT_EQ(rep.at("events").as_int64(), 6);
  EXPECT_EQ(rep.at("head_seq").as_int64(), 6);
  EXPECT_TRUE(rep.at("checkpoints_ok").as_bool());
  EXPECT_TRUE(rep.at("first_bad_seq").is_null());
  auto last_cp = bj::parse(lines(readFile(srv.checkpointLog())).back()).as_object();
  EXPECT_EQ(std::string(rep.at("head_hash").as_string()),
            std::string(last_cp.at("hash").as_string()));
  // An explicit key that did not sign the checkpoints is caught.
  LedgerServer other(tmp.path(), "other");
  other.init();
  auto wrong_key = cli({"ledger", "verify", "--db", srv.db().string(), "--pubkey",
                        (other.dataDir() / "checkpoint.pub").string()});
  EXPECT_EQ(wrong_key.code(), 1) << wrong_key.out;
  EXPECT_NE(wrong_key.out.find("bad signature"), std::string::npos) << wrong_key.out;
}

}  // namespace
}  // namespace hwl::itest
