// Bad input to POST /v1/tokens: 400 with the offending field named, and the ledger unchanged.
#include <gtest/gtest.h>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

struct BadBody {
  std::string name;
  std::string body;
  std::string message;  // a substring of error.message
};

TEST(BadJson, EachBadBodyIs400NamingTheFieldAndChangesNothing) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  const int64_t events = srv.eventCount();
  const std::string tokens_before = sqlite(srv.db(), ".dump tokens");

  const std::vector<BadBody> cases = {
      {"truncated", R"({"role":)", "invalid JSON"},
      {"empty", "", "invalid JSON"},
      {"not an object", R"(["viewer"])", "must be a JSON object"},
      {"trailing garbage", R"({"role":"viewer"} x)", "invalid JSON"},
      {"role missing", R"({"note":"n"})", R"(field "role" is required)"},
      {"role of the wrong type", R"({"role":5})", R"(field "role" must be a string)"},
      {"unknown role", R"({"role":"root"})",
       R"(field "role" must be one of viewer, operator, admin)"},
      {"unknown field", R"({"role":"viewer","ttl":60})", R"(unknown field "ttl")"},
      {"ttl_s zero", R"({"role":"viewer","ttl_s":0})", R"(field "ttl_s" must be between 1 and)"},
      {"ttl_s negative", R"({"role":"viewer","ttl_s":-5})", R"(field "ttl_s" must be between)"},
      {"ttl_s too large", R"({"role":"viewer","ttl_s":99999999999})",
       R"(field "ttl_s" must be between)"},
      {"ttl_s a string", R"({"role":"viewer","ttl_s":"60"})",
       R"(field "ttl_s" must be an integer)"},
      {"ttl_s fractional", R"({"role":"viewer","ttl_s":1.5})",
       R"(field "ttl_s" must be an integer)"},
      {"note too long", R"({"role":"viewer","note":")" + std::string(257, 'n') + R"("})",
       R"(field "note" is longer than 256 bytes)"},
      {"note of the wrong type", R"({"role":"viewer","note":["a"]})",
       R"(field "note" must be a string)"},
      // The last of two equal keys used to win: this body made an admin token.
      {"duplicate role", R"({"role":"viewer","role":"admin"})", R"(duplicate key "role")"},
      {"duplicate role, escaped", R"({"role":"viewer","r\u006fle":"admin"})",
       R"(duplicate key "role")"},
      {"duplicate note", R"({"role":"viewer","note":"a","note":"b"})", R"(duplicate key "note")"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto h = srv.post("/v1/tokens", c.body);
    EXPECT_EQ(h.status, 400) << h.body << h.err;
    EXPECT_NE(h.errorMessage().find(c.message), std::string::npos)
        << "wanted \"" << c.message << "\" in: " << h.body;
    if (h.status == 400) {
      EXPECT_EQ(std::string(h.obj().at("error").as_object().at("code").as_string()),
                "invalid_argument");
    }
  }
  // Bad query parameters are named too.
  auto q = srv.get("/v1/events?limit=ten");
  EXPECT_EQ(q.status, 400);
  EXPECT_NE(q.errorMessage().find(R"("limit")"), std::string::npos) << q.body;
  auto q2 = srv.get("/v1/events?after=-1");
  EXPECT_EQ(q2.status, 400);
  EXPECT_NE(q2.errorMessage().find(R"("after")"), std::string::npos) << q2.body;

  EXPECT_EQ(srv.eventCount(), events);
  EXPECT_EQ(sqlite(srv.db(), ".dump tokens"), tokens_before);
  EXPECT_EQ(sqlite(srv.db(), "SELECT count(*) FROM tokens WHERE role = 'admin'"), "1")
      << "only init's admin token";

  // Every JSON body goes through the same parser: an enrollment and an enrollment token too.
  auto et = srv.post("/v1/enroll-tokens", R"({"ttl_s":60,"ttl_s":86400})");
  EXPECT_EQ(et.status, 400) << et.body;
  EXPECT_NE(et.errorMessage().find(R"(duplicate key "ttl_s")"), std::string::npos) << et.body;
  auto en = srv.request("POST", "/v1/enroll", "",
                        R"({"token":"a.b","csr":"x","platform":{"os":"a","os":"b"}})");
  EXPECT_EQ(en.status, 400) << en.body;
  EXPECT_NE(en.errorMessage().find(R"(duplicate key "os")"), std::string::npos) << en.body;
  EXPECT_EQ(srv.eventCount(), events);

  // The same route accepts a good body (the 400s were about the bodies, not the route).
  auto good = srv.post("/v1/tokens",
                       R"({"role":"viewer","ttl_s":60,"note":")" + std::string(256, 'n') + R"("})");
  EXPECT_EQ(good.status, 201) << good.body;
  EXPECT_EQ(srv.eventCount(), events + 1);
}

}  // namespace
}  // namespace hwl::itest
