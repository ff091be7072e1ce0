// Bearer-token authentication: every kind of bad token is a 401 that leaves an auth.denied event
// with the right reason; the refusal trail is rate-limited; roles are enforced.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

using namespace std::chrono_literals;

std::map<std::string, boost::json::object> deniedByReason(const LedgerServer& srv) {
  std::map<std::string, boost::json::object> out;
  for (auto& e : srv.allEvents("&type=auth.denied")) {
    EXPECT_EQ(std::string(e.at("stream").as_string()), "ledger");
    auto d = e.at("data").as_object();
    std::string reason(d.at("reason").as_string());
    EXPECT_FALSE(out.count(reason)) << "two auth.denied events for " << reason;
    out[reason] = d;
  }
  return out;
}

TEST(Auth, EachBadTokenIs401WithItsReasonInTheLedger) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  auto viewer = srv.createToken("viewer");
  auto revoked = srv.createToken("admin");
  auto expiring = srv.createToken("admin", 1);
  const auto expiring_made = std::chrono::steady_clock::now();
  // Positive controls: each of these tokens works before it is spoiled.
  EXPECT_EQ(srv.request("GET", "/v1/events", expiring.token).status, 200);
  EXPECT_EQ(srv.request("GET", "/v1/events", revoked.token).status, 200);
  srv.revokeToken(revoked.id);
  EXPECT_EQ(srv.request("GET", "/v1/events", viewer.token).status, 200);
  ASSERT_TRUE(deniedByReason(srv).empty());

  const std::string secret = viewer.token.substr(viewer.token.find('.') + 1);
  struct Case {
    std::string reason;
    std::string token;
    std::string token_id;  // expected in the event, "" when none
  };
  std::vector<Case> cases = {
      {"missing_token", "", ""},
      {"malformed_token", "no-dot-here", ""},
      {"wrong_secret", viewer.id + ".not-the-secret", viewer.id},
      {"unknown_token", "tok_nosuchid." + secret, "tok_nosuchid"},
      {"revoked", revoked.token, revoked.id},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    auto h = srv.request("GET", "/v1/events", c.token);
    EXPECT_EQ(h.status, 401) << h.body;
    EXPECT_NE(h.body.find("unauthenticated"), std::string::npos) << h.body;
  }
  std::this_thread::sleep_until(expiring_made + 1500ms);
  auto exp = srv.request("GET", "/v1/events", expiring.token);
  EXPECT_EQ(exp.status, 401) << exp.body;
  cases.push_back({"expired", expiring.token, expiring.id});

  // A valid viewer on an admin command: 403, and nothing created.
  const int64_t before_403 = srv.eventCount();
  auto forbidden = srv.request("POST", "/v1/tokens", viewer.token, R"({"role":"admin"})");
  EXPECT_EQ(forbidden.status, 403) << forbidden.body;
  EXPECT_NE(forbidden.errorMessage().find("admin"), std::string::npos) << forbidden.body;
  cases.push_back({"insufficient_role", viewer.token, viewer.id});
  EXPECT_EQ(srv.eventCount(), before_403 + 1) << "only the auth.denied event is appended";
  EXPECT_EQ(sqlite(srv.db(), "SELECT count(*) FROM tokens"), "4");

  auto denied = deniedByReason(srv);
  EXPECT_EQ(denied.size(), cases.size());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    auto it = denied.find(c.reason);
    ASSERT_NE(it, denied.end()) << "no auth.denied event with reason " << c.reason;
    const auto& d = it->second;
    EXPECT_EQ(std::string(d.at("remote").as_string()), "127.0.0.1");
    EXPECT_EQ(std::string(d.at("path").as_string()),
              c.reason == "insufficient_role" ? "/v1/tokens" : "/v1/events");
    if (c.token_id.empty()) {
      EXPECT_FALSE(d.contains("token_id"));
    } else {
      EXPECT_EQ(std::string(d.at("token_id").as_string()), c.token_id);
    }
    // The refusal trail never holds a secret.
    EXPECT_EQ(boost::json::serialize(d).find(secret), std::string::npos);
  }
}

// The answers of `n` requests from one curl process bound to `source`, e.g. {"401": 30, ...}.
std::map<std::string, int> flood(const LedgerServer& srv, const std::string& source,
                                 const std::string& path, int n,
                                 const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{"curl",        "-sS",           "--cacert", srv.caCert().string(),
                                "--interface", source,          "-o",       "/dev/null",
                                "-w",          "%{http_code}\n"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(srv.url() + path + "?n=[1-" + std::to_string(n) + "]");
  auto r = run(argv);
  std::map<std::string, int> out;
  for (const auto& l : lines(r.out)) ++out[l];
  return out;
}

TEST(Auth, FailedAuthenticationsAreLimitedPerSourceWith429) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  const int64_t before = srv.eventCount();
  const std::string admin_id = srv.adminToken().substr(0, srv.adminToken().find('.'));

  // 100 refused requests from 127.0.0.1 without a token: the first 30 (the default burst, plus
  // the one a second that refills meanwhile) are 401, the rest 429 without looking further.
  auto t0 = std::chrono::steady_clock::now();
  auto first = flood(srv, "127.0.0.1", "/v1/events", 100);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(first["401"] + first["429"], 100);
  EXPECT_GE(first["401"], 30);
  EXPECT_LE(first["401"], 30 + static_cast<int>(secs) + 1) << secs << " s";
  // Guessing secrets from there is stopped too, and so is the real token from that address.
  auto guesses = flood(srv, "127.0.0.1", "/v1/events", 100,
                       {"-H", "Authorization: Bearer " + admin_id + ".guessed-secret"});
  EXPECT_GE(guesses["429"], 95);
  std::filesystem::path headers = tmp.path() / "headers";
  auto locked = srv.request("GET", "/v1/tokens", srv.adminToken(), {},
                            {"--interface", "127.0.0.1", "-D", headers.string()});
  EXPECT_EQ(locked.status, 429) << locked.body;
  EXPECT_NE(locked.errorMessage().find("too many failed authentications"), std::string::npos);
  std::string hdr = readFile(headers);
  auto at = hdr.find("retry-after: ");
  if (at == std::string::npos) at = hdr.find("Retry-After: ");
  ASSERT_NE(at, std::string::npos) << hdr;
  int retry_after = std::stoi(hdr.substr(at + 13));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 2);

  // Another source is not affected: its good token works and its bad ones get the usual 401.
  EXPECT_EQ(
      srv.request("GET", "/v1/tokens", srv.adminToken(), {}, {"--interface", "127.0.0.2"}).status,
      200);
  EXPECT_EQ(srv.request("GET", "/v1/events", "", {}, {"--interface", "127.0.0.3"}).status, 401);
  // Enrollment attempts with made-up tokens count the same way (per source).
  auto enroll = flood(srv, "127.0.0.4", "/v1/enroll", 60,
                      {"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                       R"({"token":"enr_0000.guess","csr":"x"})"});
  EXPECT_GE(enroll["401"], 30);
  EXPECT_GE(enroll["429"], 25);
  EXPECT_EQ(enroll["401"] + enroll["429"], 60);

  // After Retry-After the limited source may try again, and its good token works.
  std::this_thread::sleep_for(std::chrono::milliseconds(retry_after * 1000 + 200));
  EXPECT_EQ(
      srv.request("GET", "/v1/tokens", srv.adminToken(), {}, {"--interface", "127.0.0.1"}).status,
      200);

  // The trail stays rate-limited: a handful of auth.denied events for 261 refusals, and nothing
  // else was appended.
  auto denied = srv.allEvents("&type=auth.denied");
  EXPECT_GE(denied.size(), 4U);
  EXPECT_LE(denied.size(), 10U) << "the refusal trail is not rate-limited";
  EXPECT_EQ(srv.eventCount(), before + static_cast<int64_t>(denied.size()));
  std::map<std::string, int> reasons;
  for (const auto& e : denied) ++reasons[std::string(e.at("data").at("reason").as_string())];
  EXPECT_EQ(reasons["rate_limited"], 2) << "one per limited source within the window";
  EXPECT_EQ(reasons["missing_token"], 2);         // 127.0.0.1 and 127.0.0.3
  EXPECT_EQ(reasons["enroll_unknown_token"], 1);  // 127.0.0.4
}

TEST(Auth, ConcurrentRevocationsOfOneTokenRecordOneEvent) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  // Many rounds: a revocation that commits between another request's check and its read of the
  // stream version must still make that other request fail.
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    auto victim = srv.createToken("operator");
    std::vector<int> statuses(8);
    std::vector<std::thread> ts;
    for (size_t i = 0; i < statuses.size(); ++i)
      ts.emplace_back([&, i] {
        statuses[i] = srv.request("DELETE", "/v1/tokens/" + victim.id, srv.adminToken()).status;
      });
    for (auto& t : ts) t.join();
    ASSERT_EQ(std::count(statuses.begin(), statuses.end(), 200), 1) << "round " << round;
    ASSERT_EQ(std::count(statuses.begin(), statuses.end(), 409), 7) << "round " << round;
    ASSERT_EQ(srv.allEvents("&stream=token/" + victim.id + "&type=token.revoked").size(), 1U)
        << "round " << round;
    EXPECT_EQ(srv.request("GET", "/v1/events", victim.token).status, 401);
  }
  EXPECT_EQ(srv.allEvents("&type=token.revoked").size(), size_t{kRounds});
  EXPECT_EQ(srv.request("DELETE", "/v1/tokens/tok_nosuch", srv.adminToken()).status, 404);
}

TEST(Auth, ConfiguredFailedAuthenticationLimitTakesEffect) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  writeFile(tmp / "config.json", R"({"auth_fail_burst": 5, "auth_fail_refill_per_minute": 1})");
  srv.start({"--config", (tmp / "config.json").string()});

  // Five failures (not the default 30) empty the bucket; one a minute refills it.
  auto first = flood(srv, "127.0.0.1", "/v1/events", 20);
  EXPECT_EQ(first["401"], 5);
  EXPECT_EQ(first["429"], 15);
  std::filesystem::path headers = tmp.path() / "headers";
  auto locked = srv.request("GET", "/v1/tokens", srv.adminToken(), {},
                            {"--interface", "127.0.0.1", "-D", headers.string()});
  EXPECT_EQ(locked.status, 429) << locked.body;
  std::string hdr = readFile(headers);
  auto at = hdr.find("retry-after: ");
  if (at == std::string::npos) at = hdr.find("Retry-After: ");
  ASSERT_NE(at, std::string::npos) << hdr;
  int retry_after = std::stoi(hdr.substr(at + 13));
  EXPECT_GE(retry_after, 30) << "refill is one a minute, not one a second";
  EXPECT_LE(retry_after, 60);
}

}  // namespace
}  // namespace hwl::itest
