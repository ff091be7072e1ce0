// The REST handlers in process: authentication and roles, validation that changes nothing,
// token life cycle, and the rate-limited refusal trail.
#include "api/api.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "app/server_app.hpp"
#include "collect/collector.hpp"
#include "hwl/crypto.hpp"
#include "storage/fleet_projection.hpp"
#include "storage/hosts_projection.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/tokens_projection.hpp"

namespace hwl::api {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { open(/*fleet=*/false); }
  // A ledger with the tokens projection only, or (fleet) with the server's projections and the
  // fleet routes on, without a collector.
  void open(bool fleet) {
    dir_ = fs::temp_directory_path() / ("hwl-api-" + crypto::newId("", 6));
    fs::create_directories(dir_);
    storage::LedgerOptions o;
    o.db_path = dir_ / "ledger.db";
    o.create = true;
    o.clock = &clock_;
    if (fleet)
      server::addProjections(o);
    else
      o.projections.push_back(std::make_unique<storage::TokensProjection>());
    ledger_ = std::move(storage::SqliteLedger::open(std::move(o)).value());
    admin_ = createToken(*ledger_, clock_, ledger::Role::kAdmin, std::nullopt, "", "system")
                 .value()
                 .token;
    api_ = std::make_unique<Api>(*ledger_, clock_, ApiSettings{.version = "test"});
    if (fleet) {
      // Placement without hosts to call: no drivers, no live view.
      scheduler_ = std::make_unique<dispatch::Scheduler>(*ledger_, dispatch::LiveView{}, clock_);
      api_->setFleet({.scheduler = scheduler_.get()});
    }
  }
  void TearDown() override {
    api_.reset();
    scheduler_.reset();
    ledger_.reset();
    fs::remove_all(dir_);
  }
  http::Response call(std::string method, std::string path, std::string body = {},
                      std::string token = {}, std::string remote = "127.0.0.1") {
    http::Request r;
    r.method = std::move(method);
    r.target = path;
    auto q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) {
      std::string rest = path.substr(q + 1);
      size_t pos = 0;
      while (pos <= rest.size()) {
        size_t amp = rest.find('&', pos);
        std::string part =
            rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = part.find('=');
        r.query[part.substr(0, eq)] = eq == std::string::npos ? "" : part.substr(eq + 1);
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
    }
    r.body = std::move(body);
    r.remote_addr = std::move(remote);
    if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
    return api_->handle(r);
  }
  int64_t count(const std::string& type = {}) {
    return static_cast<int64_t>(ledger_->read({0, 100000, "", type}).value().size());
  }
  static bj::object body(const http::Response& r) { return bj::parse(r.body).as_object(); }
  static std::string message(const http::Response& r) {
    return std::string(body(r).at("error").at("message").as_string());
  }

  fs::path dir_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<storage::SqliteLedger> ledger_;
  std::unique_ptr<dispatch::Scheduler> scheduler_;
  std::unique_ptr<Api> api_;
  std::string admin_;
};

TEST_F(ApiTest, HealthNeedsNoToken) {
  auto r = call("GET", "/v1/health");
  EXPECT_EQ(r.status, 200u);
  auto b = body(r);
  EXPECT_EQ(b.at("status").as_string(), "ok");
  EXPECT_EQ(b.at("events").as_int64(), 1);
  EXPECT_EQ(b.at("version").as_string(), "test");
}

// The dashboard's files: served with no token, each with the security headers; an unknown file
// is a 404 (the name is looked up in the built-in table, never on disk); a cached copy is
// revalidated by ETag. Nothing is appended to the ledger by any of it.
TEST_F(ApiTest, DashboardFilesCarryTheSecurityHeaders) {
  const int64_t before = count();
  auto header = [](const http::Response& r, const std::string& name) -> std::string {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  };
  for (const char* path : {"/", "/ui/app.js", "/ui/style.css", "/ui/uPlot.iife.min.js"}) {
    SCOPED_TRACE(path);
    auto r = call("GET", path);
    ASSERT_EQ(r.status, 200u);
    EXPECT_FALSE(r.body.empty());
    const std::string csp = header(r, "Content-Security-Policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
    EXPECT_FALSE(header(r, "ETag").empty());
  }
  EXPECT_EQ(call("GET", "/").content_type, "text/html; charset=utf-8");
  EXPECT_EQ(call("GET", "/ui/app.js").content_type, "text/javascript; charset=utf-8");
  // The page has no inline script or style for the policy to refuse.
  const std::string page = call("GET", "/").body;
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_EQ(page.find("<style"), std::string::npos);
  EXPECT_EQ(page.find(" style="), std::string::npos);
  EXPECT_EQ(page.find(" on"), std::string::npos);  // no onclick= and the like
  for (const char* path : {"/ui/nope.js", "/ui/..", "/ui/index.html.bak", "/ui/%2e%2e"}) {
    EXPECT_EQ(call("GET", path).status, 404u) << path;
  }
  EXPECT_EQ(call("POST", "/ui/app.js", "{}").status, 405u);
  http::Request again;
  again.method = "GET";
  again.target = again.path = "/ui/app.js";
  again.remote_addr = "127.0.0.1";
  const std::string etag = [&] {
    for (const auto& [k, v] : call("GET", "/ui/app.js").headers)
      if (k == "ETag") return v;
    return std::string();
  }();
  again.headers.emplace_back("if-none-match", etag);
  auto cached = api_->handle(again);
  EXPECT_EQ(cached.status, 304u);
  EXPECT_TRUE(cached.body.empty());
  EXPECT_EQ(count(), before);
}

// GET /v1/whoami: no credentials is "not signed in" with nothing recorded; a token is its actor
// and role; a bad token is a 401 recorded as auth.denied, like everywhere else.
TEST_F(ApiTest, WhoamiSaysWhoTheCallerIs) {
  const int64_t before = count();
  auto anon = call("GET", "/v1/whoami");
  ASSERT_EQ(anon.status, 200u);
  EXPECT_FALSE(body(anon).at("signed_in").as_bool());
  EXPECT_FALSE(body(anon).contains("role"));
  EXPECT_EQ(count(), before);
  auto admin = call("GET", "/v1/whoami", "", admin_);
  ASSERT_EQ(admin.status, 200u);
  EXPECT_TRUE(body(admin).at("signed_in").as_bool());
  EXPECT_EQ(body(admin).at("role").as_string(), "admin");
  auto c = call("POST", "/v1/tokens", R"({"role":"viewer"})", admin_);
  ASSERT_EQ(c.status, 201u);
  auto viewer = call("GET", "/v1/whoami", "", std::string(body(c).at("token").as_string()));
  EXPECT_EQ(body(viewer).at("role").as_string(), "viewer");
  EXPECT_EQ(body(viewer).at("actor").as_string(), body(c).at("id").as_string());
  const int64_t denied = count("auth.denied");
  EXPECT_EQ(call("GET", "/v1/whoami", "", "hwl_bogus.token").status, 401u);
  EXPECT_EQ(count("auth.denied"), denied + 1);
  EXPECT_EQ(call("GET", "/v1/whoami?x=1", "", admin_).status, 400u);
}

// Model configs by name from the server's model_dir: listed and planned; a path, "..", a
// symlink out of the directory, an oversized or unlisted file are refused, nothing appended.
TEST_F(ApiTest, ModelConfigsByNameComeOnlyFromTheModelDir) {
  const fs::path models = dir_ / "models";
  fs::create_directories(models);
  fs::copy_file(fs::path(HWL_FIXTURES_DIR) / "models" / "Llama-3.1-8B.config.json",
                models / "Llama-3.1-8B.json");
  fs::create_symlink("/etc/passwd", models / "passwd.json");
  fs::create_symlink(fs::path(HWL_FIXTURES_DIR) / "models" / "Llama-3.1-8B.config.json",
                     models / "link.json");
  std::ofstream(models / "huge.json") << std::string((1 << 20) + 1, ' ');
  std::ofstream(models / ".hidden.json") << "{}";
  std::ofstream(models / "notes.txt") << "{}";
  fs::create_directories(dir_ / "outside");
  fs::copy_file(models / "Llama-3.1-8B.json", dir_ / "outside" / "secret.json");
  api_ =
      std::make_unique<Api>(*ledger_, clock_, ApiSettings{.version = "test", .model_dir = models});
  const int64_t before = count();
  auto listed = call("GET", "/v1/models", "", admin_);
  ASSERT_EQ(listed.status, 200u) << listed.body;
  const auto listed_doc = body(listed);
  const auto& list = listed_doc.at("models").as_array();
  ASSERT_EQ(list.size(), 1u) << listed.body;
  EXPECT_EQ(list[0].at("name").as_string(), "Llama-3.1-8B.json");
  auto plan =
      call("POST", "/v1/plan", R"({"model_name":"Llama-3.1-8B.json","context":8192})", admin_);
  ASSERT_EQ(plan.status, 200u) << plan.body;
  EXPECT_EQ(body(plan).at("params_total").as_int64(), 8'030'261'248);
  for (const char* name :
       {"../outside/secret.json", "passwd.json", "link.json", "huge.json", ".hidden.json",
        "missing.json", "notes.txt", "/etc/passwd", "a/b.json"}) {
    SCOPED_TRACE(name);
    auto r = call("POST", "/v1/plan",
                  bj::serialize(bj::object{{"model_name", name}, {"context", 8192}}), admin_);
    EXPECT_TRUE(r.status == 400u || r.status == 404u) << r.status << " " << r.body;
    EXPECT_EQ(r.body.find("root:"), std::string::npos);
  }
  EXPECT_EQ(call("POST", "/v1/plan", R"({"model_name":"Llama-3.1-8B.json","model":{},"context":1})",
                 admin_)
                .status,
            400u);
  EXPECT_EQ(call("GET", "/v1/models").status, 401u);
  EXPECT_EQ(count(), before + 1);  // the 401's auth.denied, nothing else
}

TEST_F(ApiTest, TokenLifeCycle) {
  clock_.advanceMs(1000);
  auto c = call("POST", "/v1/tokens", R"({"role":"viewer","ttl_s":60,"note":"ci"})", admin_);
  ASSERT_EQ(c.status, 201u) << c.body;
  auto t = body(c);
  std::string viewer(t.at("token").as_string());
  EXPECT_EQ(t.at("expires_ms").as_int64(), 1'700'000'001'000 + 60'000);
  EXPECT_EQ(call("GET", "/v1/events", {}, viewer).status, 200u);
  // Listing never shows secrets or their hashes.
  auto list = call("GET", "/v1/tokens", {}, admin_);
  ASSERT_EQ(list.status, 200u);
  EXPECT_EQ(list.body.find(viewer.substr(viewer.find('.') + 1)), std::string::npos);
  EXPECT_EQ(list.body.find("secret"), std::string::npos);
  // A viewer may not create tokens.
  auto forbidden = call("POST", "/v1/tokens", R"({"role":"admin"})", viewer);
  EXPECT_EQ(forbidden.status, 403u);
  // Revoke; the token stops working at once; a second revoke is a conflict.
  std::string id(t.at("id").as_string());
  EXPECT_EQ(call("DELETE", "/v1/tokens/" + id, {}, admin_).status, 200u);
  EXPECT_EQ(call("GET", "/v1/events", {}, viewer).status, 401u);
  EXPECT_EQ(call("DELETE", "/v1/tokens/" + id, {}, admin_).status, 409u);
  EXPECT_EQ(call("DELETE", "/v1/tokens/tok_nope", {}, admin_).status, 404u);
  EXPECT_EQ(count("token.revoked"), 1);
}

TEST_F(ApiTest, ExpiredTokenIsRefused) {
  auto c = call("POST", "/v1/tokens", R"({"role":"viewer","ttl_s":5})", admin_);
  std::string viewer(body(c).at("token").as_string());
  EXPECT_EQ(call("GET", "/v1/events", {}, viewer).status, 200u);
  clock_.advanceMs(5000);
  EXPECT_EQ(call("GET", "/v1/events", {}, viewer).status, 401u);
  auto denied = ledger_->read({0, 100, "", "auth.denied"}).value();
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(bj::parse(denied[0].data).at("reason").as_string(), "expired");
}

TEST_F(ApiTest, BadBodiesAre400NamingTheFieldAndAppendNothing) {
  int64_t before = count();
  struct Case {
    std::string body;
    std::string message;
  };
  std::vector<Case> cases = {
      {R"({"role":)", "invalid JSON: incomplete JSON"},
      {R"([1,2])", "invalid JSON: the body must be a JSON object"},
      {R"({"role":7})", "field \"role\" must be a string, not an integer"},
      {R"({"role":"root"})", "field \"role\" must be one of viewer, operator, admin"},
      {R"({"note":"x"})", "field \"role\" is required"},
      {R"({"role":"viewer","ttl":5})", "unknown field \"ttl\""},
      {R"({"role":"viewer","ttl_s":0})", "field \"ttl_s\" must be between 1 and 315360000"},
      {R"({"role":"viewer","ttl_s":"5"})", "field \"ttl_s\" must be an integer, not a string"},
      {R"({"role":"viewer","note":")" + std::string(300, 'n') + "\"}",
       "field \"note\" is longer than 256 bytes"},
  };
  for (const auto& c : cases) {
    auto r = call("POST", "/v1/tokens", c.body, admin_);
    EXPECT_EQ(r.status, 400u) << c.body;
    EXPECT_EQ(message(r), c.message) << c.body;
    EXPECT_EQ(body(r).at("error").at("code").as_string(), "invalid_argument");
  }
  EXPECT_EQ(count(), before);
  auto q = call("GET", "/v1/events?limit=abc", {}, admin_);
  EXPECT_EQ(q.status, 400u);
  EXPECT_EQ(message(q), "query parameter \"limit\" must be an integer");
}

TEST_F(ApiTest, EachKindOfBadTokenIs401AndLeavesATrail) {
  auto c = call("POST", "/v1/tokens", R"({"role":"viewer"})", admin_);
  std::string viewer(body(c).at("token").as_string());
  std::string id = viewer.substr(0, viewer.find('.'));
  struct Case {
    std::string token;
    std::string reason;
  };
  std::vector<Case> cases = {{"", "missing_token"},
                             {"no-dot", "malformed_token"},
                             {"tok_0000.secret", "unknown_token"},
                             {id + ".wrong", "wrong_secret"}};
  int i = 0;
  for (const auto& k : cases) {
    // A different remote each, so the rate limit does not hide any of them.
    auto r = call("GET", "/v1/events", {}, k.token, "10.0.0." + std::to_string(++i));
    EXPECT_EQ(r.status, 401u) << k.reason;
    EXPECT_EQ(body(r).at("error").at("code").as_string(), "unauthenticated");
    bool has_challenge = false;
    for (auto& [h, v] : r.headers) has_challenge |= h == "WWW-Authenticate";
    EXPECT_TRUE(has_challenge);
  }
  auto denied = ledger_->read({0, 100, "", "auth.denied"}).value();
  ASSERT_EQ(denied.size(), cases.size());
  for (size_t j = 0; j < cases.size(); ++j)
    EXPECT_EQ(bj::parse(denied[j].data).at("reason").as_string(), cases[j].reason);
}

TEST_F(ApiTest, AFloodOfBadTokensCannotFillTheLedger) {
  // One source: its first 30 failures are answered 401, then its bucket is empty and every
  // request gets 429; the trail holds one event per reason.
  int unauthorized = 0, throttled = 0;
  for (int i = 0; i < 500; ++i) {
    auto st = call("GET", "/v1/events", {}, "x.y").status;
    unauthorized += st == 401u;
    throttled += st == 429u;
  }
  EXPECT_EQ(unauthorized, 30);
  EXPECT_EQ(throttled, 470);
  EXPECT_EQ(count("auth.denied"), 2);
  clock_.advanceMs(10'000);  // ten failures refilled
  EXPECT_EQ(call("GET", "/v1/events", {}, "x.y").status, 401u);
  auto denied = ledger_->read({0, 100, "", "auth.denied"}).value();
  ASSERT_EQ(denied.size(), 3u);
  EXPECT_EQ(bj::parse(denied[1].data).at("reason").as_string(), "rate_limited");
  EXPECT_EQ(bj::parse(denied[2].data).at("suppressed_before").as_int64(), 469);
  // Many remotes: still bounded per minute.
  for (int i = 0; i < 1000; ++i) call("GET", "/v1/events", {}, "x.y", "10.1." + std::to_string(i));
  EXPECT_LE(count("auth.denied"), 63);
}

TEST_F(ApiTest, EventsPaginateWithCursorAndCap) {
  for (int b = 0; b < 12; ++b) {
    std::vector<ledger::NewEvent> evs;
    for (int i = 0; i < 100; ++i) evs.push_back({"", "x", bj::object{{"i", b * 100 + i}}});
    ASSERT_TRUE(ledger_->append("s", ledger::kAnyVersion, "t", std::move(evs)));
  }
  auto r = call("GET", "/v1/events?limit=5000", {}, admin_);
  auto b = body(r);
  EXPECT_EQ(b.at("events").as_array().size(), 1000u);
  EXPECT_EQ(b.at("next_after").as_int64(), 1000);
  auto r2 = call("GET", "/v1/events?after=1000&limit=5000", {}, admin_);
  EXPECT_EQ(body(r2).at("events").as_array().size(), 201u);
  auto f = call("GET", "/v1/events?type=token.created", {}, admin_);
  EXPECT_EQ(body(f).at("events").as_array().size(), 1u);
}

TEST_F(ApiTest, UnknownRouteAndWrongMethod) {
  EXPECT_EQ(call("GET", "/v1/nope").status, 404u);
  auto r = call("PUT", "/v1/tokens", "{}", admin_);
  EXPECT_EQ(r.status, 405u);
}

TEST_F(ApiTest, PlanEndpointComputesFromAnUploadedConfig) {
  std::string cfg = R"({"model":{"architectures":["LlamaForCausalLM"],"model_type":"llama",
    "hidden_size":4096,"intermediate_size":14336,"num_attention_heads":32,
    "num_hidden_layers":32,"num_key_value_heads":8,"vocab_size":128256,
    "torch_dtype":"bfloat16","tie_word_embeddings":false},"context":8192,"batch":2})";
  auto r = call("POST", "/v1/plan", cfg, admin_);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(body(r).at("kv_bytes_per_token").as_int64(), 131072);
  auto bad = call("POST", "/v1/plan", R"({"context":8192})", admin_);
  EXPECT_EQ(bad.status, 400u);
}

// The fleet routes without a collector: what they refuse before any host is involved.
class ApiFleetTest : public ApiTest {
 protected:
  void SetUp() override { open(/*fleet=*/true); }
  // A request whose query values are given decoded, as the HTTP layer hands them over.
  http::Response get(const std::string& path, std::map<std::string, std::string> query) {
    http::Request r;
    r.method = "GET";
    r.target = path;
    r.path = path;
    r.query = std::move(query);
    r.remote_addr = "127.0.0.1";
    r.headers.emplace_back("authorization", "Bearer " + admin_);
    return api_->handle(r);
  }
};

TEST_F(ApiFleetTest, SubmissionsTheAgentWouldRefuseAre400AndAppendNothing) {
  const int64_t before = count();
  struct Case {
    std::string body;
    std::string starts;
  };
  std::vector<Case> cases = {
      {R"({"command":["x"],"env":{"A=B":"c"}})", "env.A=B: bad variable name"},
      {R"({"command":["x"],"env":{"A":"b\u0000"}})", "env.A: must not contain NUL"},
      {R"({"command":["x",""],"env":{"":"c"}})", "env.: bad variable name"},
      {R"({"command":[]})", "command: must not be empty"},
      {R"({"command":"ls"})", "command: required array"},
      {R"({"env":{}})", "command: required array"},
      {R"({"command":["x"],"port":80,"ready_path":"/a b"})", "ready_path: bad path"},
      {R"({"command":["x","a\u0000"]})", "command[1]: must not contain NUL"},
      {R"({"command":["x",")" + std::string(17 * 1024, 'a') + R"("]})",
       "command[1]: longer than 16384 bytes"},
      {R"({"command":["x"],"env":{"A":")" + std::string(17 * 1024, 'a') + R"("}})",
       "env.A: longer than 16384 bytes"},
      {R"({"command":["x"],"env":{")" + std::string(200, 'A') + R"(":"v"}})",
       "env: a variable name: longer than 128 bytes"},
      {R"({"name":")" + std::string(257, 'n') + R"(","command":["x"]})", "field \"name\" must be"},
      {R"({"name":"","command":["x"]})", "field \"name\" must be"},
      {R"({"name":"a\u001b[2J","command":["x"]})", "field \"name\" must be"},
      {R"({"host":")" + std::string(300, 'h') + R"(","command":["x"]})", "field \"host\" must be"},
      {R"({"command":["x"],"gpus":65})", "field \"gpus\" must be between 0 and 64"},
  };
  for (const auto& c : cases) {
    auto r = call("POST", "/v1/jobs", c.body, admin_);
    EXPECT_EQ(r.status, 400u) << c.body.substr(0, 200) << " -> " << r.body.substr(0, 300);
    EXPECT_EQ(message(r).rfind(c.starts, 0), 0u) << message(r);
  }
  EXPECT_EQ(count(), before);
  // A valid spec gets as far as placement (no host here), still appending nothing.
  auto ok = call("POST", "/v1/jobs", R"({"command":["x"],"env":{"A_B":"c"}})", admin_);
  EXPECT_EQ(ok.status, 409u) << ok.body;
  EXPECT_EQ(count(), before);
}

TEST_F(ApiFleetTest, QueryParametersAreTypedBeforeUse) {
  const int64_t before = count();
  struct Case {
    std::string path;
    std::map<std::string, std::string> query;
    std::string starts;
  };
  const std::string smuggle = "1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /v1/jobs HTTP/1.1\r\n";
  std::vector<Case> cases = {
      {"/v1/jobs/job-1/logs", {{"tail", smuggle}}, "query parameter \"tail\" must be an integer"},
      {"/v1/jobs/job-1/logs", {{"tail", "-1"}}, "query parameter \"tail\" must be between"},
      {"/v1/jobs/job-1/logs", {{"follow", "1\r\nX: y"}}, "query parameter \"follow\""},
      {"/v1/jobs/job-1/logs", {{"tail", "1"}, {"x", "\r\n"}}, "unknown query parameter \"x\""},
      {"/v1/jobs/job-1\r\nX: y/logs", {}, "\"job-1"},
      {"/v1/jobs/.hidden", {}, "\".hidden\" is not a valid job id"},
      {"/v1/jobs/job-1", {{"tail", "1"}}, "unknown query parameter \"tail\""},
      {"/v1/jobs", {{"host", "a\nb"}}, "query parameter \"host\" is not a valid id"},
      {"/v1/hosts", {{"after", "a b"}}, "query parameter \"after\" is not a valid id"},
      {"/v1/hosts", {{"limit", "1;"}}, "query parameter \"limit\" must be an integer"},
      {"/v1/gpus", {{"host", "'"}}, "query parameter \"host\" is not a valid id"},
      {"/v1/usage", {{"from", "x"}}, "query parameter \"from\" must be an integer"},
      {"/v1/usage", {{"group", "host"}}, "unknown query parameter \"group\""},
      {"/v1/placements", {{"evil", "1"}}, "unknown query parameter \"evil\""},
      {"/v1/placements", {{"per_layer", "maybe"}}, "query parameter \"per_layer\""},
  };
  for (const auto& c : cases) {
    auto r = get(c.path, c.query);
    EXPECT_EQ(r.status, 400u) << c.path << " -> " << r.body;
    EXPECT_EQ(message(r).rfind(c.starts, 0), 0u) << c.path << ": " << message(r);
  }
  EXPECT_EQ(count(), before);
}

// Outbox entries are checked before they become events (pure: no ledger involved).
TEST(OutboxEntry, AcceptedEntriesKeepTheirTypeWithFreeTextCut) {
  boost::json::object entry{{"seq", 7},
                            {"type", "job.exited"},
                            {"time_ms", 123},
                            {"data", bj::object{{"job_id", "job-abc"},
                                                {"state", "exited"},
                                                {"exit_code", 1},
                                                {"host_id", "host-someone-else"},
                                                {"reason", std::string(10'000, 'r')},
                                                {"log_tail", std::string(100'000, 'a') + "END"}}}};
  auto req = collect::outboxEntryToEvent("host-1", entry);
  ASSERT_EQ(req.parts.size(), 1u);
  EXPECT_EQ(req.actor, "host:host-1");
  EXPECT_EQ(req.parts[0].stream, "job/job-abc");
  const auto& ev = req.parts[0].events[0];
  EXPECT_EQ(ev.id, "host-1:7");
  EXPECT_EQ(ev.type, "job.exited");
  const auto& d = ev.data.as_object();
  EXPECT_EQ(d.at("host_id").as_string(), "host-1");
  EXPECT_EQ(d.at("agent_seq").as_int64(), 7);
  EXPECT_EQ(d.at("reason").as_string().size(), 4096u);
  const auto tail = std::string(d.at("log_tail").as_string());
  EXPECT_EQ(tail.size(), 16u * 1024);
  EXPECT_EQ(tail.substr(tail.size() - 3), "END");
}

TEST(OutboxEntry, MalformedEntriesBecomeRejectedEntriesOnTheHostStream) {
  auto data = [](bj::object extra) {
    bj::object d{{"job_id", "job-abc"}, {"state", "exited"}};
    for (auto& kv : extra) d[kv.key()] = kv.value();
    return d;
  };
  struct Case {
    std::string what;
    bj::object entry;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"a type not from agents",
       {{"seq", 3}, {"type", "token.created"}, {"data", bj::object{}}},
       "not accepted from agents"},
      {"the server's own job event",
       {{"seq", 3}, {"type", "job.placed"}, {"data", data({})}},
       "not accepted from agents"},
      // An agent cannot write the evidence about its own host.
      {"usage evidence",
       {{"seq", 3}, {"type", "job.usage"}, {"data", data({})}},
       "not accepted from agents"},
      {"a reconciliation",
       {{"seq", 3}, {"type", "job.reconciled"}, {"data", data({})}},
       "not accepted from agents"},
      {"idle evidence",
       {{"seq", 3}, {"type", "job.idle"}, {"data", data({})}},
       "not accepted from agents"},
      {"unaccounted use",
       {{"seq", 3}, {"type", "gpu.unaccounted_use"}, {"data", bj::object{}}},
       "not accepted from agents"},
      {"an hour of telemetry",
       {{"seq", 3}, {"type", "telemetry.hourly"}, {"data", bj::object{}}},
       "not accepted from agents"},
      {"no data", {{"seq", 3}, {"type", "job.exited"}}, "data: must be an object"},
      {"a state that is not the type's",
       {{"seq", 3}, {"type", "job.ready"}, {"data", data({})}},
       "state: must be \"ready\""},
      {"a job id that is a path",
       {{"seq", 3}, {"type", "job.exited"}, {"data", data({{"job_id", "../x"}})}},
       "job_id"},
      {"an exit code that is text",
       {{"seq", 3}, {"type", "job.exited"}, {"data", data({{"exit_code", "0"}})}},
       "exit_code"},
      {"a spec the agent's parser refuses",
       {{"seq", 3},
        {"type", "job.started"},
        {"data", bj::object{{"job_id", "j"},
                            {"state", "running"},
                            {"spec", bj::object{{"id", "j"},
                                                {"command", bj::array{"x"}},
                                                {"env", bj::object{{"A=B", "c"}}}}}}}},
       "spec: env.A=B"},
      {"a time that is text",
       {{"seq", 3}, {"type", "job.exited"}, {"time_ms", "now"}, {"data", data({})}},
       "time_ms"},
      {"an oversized field",
       {{"seq", 3}, {"type", "job.exited"}, {"data", data({{"x", std::string(5000, 'x')}})}},
       "x: larger than 4096 bytes"},
      {"an entry over 256 KiB",
       {{"seq", 3},
        {"type", "job.exited"},
        {"data", data({{"log_tail", std::string(300'000, 'a')}})}},
       "larger than 262144 bytes"},
      {"a GPU without uuid",
       {{"seq", 3},
        {"type", "host.inventory_changed"},
        {"data", bj::object{{"gpus", bj::array{bj::object{}}}}}},
       "gpus: a GPU has no valid uuid"},
  };
  for (const auto& c : cases) {
    auto req = collect::outboxEntryToEvent("host-1", c.entry);
    ASSERT_EQ(req.parts.size(), 1u);
    EXPECT_EQ(req.parts[0].stream, "host/host-1") << c.what;
    const auto& ev = req.parts[0].events[0];
    EXPECT_EQ(ev.type, "agent.rejected_entry") << c.what;
    EXPECT_EQ(ev.id, "host-1:3") << c.what;
    const auto& d = ev.data.as_object();
    EXPECT_EQ(d.at("agent_seq").as_int64(), 3) << c.what;
    EXPECT_NE(std::string(d.at("reason").as_string()).find(c.reason), std::string::npos)
        << c.what << ": " << d.at("reason").as_string();
    // The refusal does not carry what was refused.
    EXPECT_LT(bj::serialize(ev.data).size(), 1024u) << c.what;
  }
}

}  // namespace
}  // namespace hwl::api

namespace hwl::api {
namespace {

// The role each route declares in the table is the one its handler enforces: nobody without
// credentials gets past a non-public route, and a viewer gets past none above viewer.
TEST_F(ApiFleetTest, EveryRouteRefusesCallersBelowItsDeclaredRole) {
  const std::string viewer =
      createToken(*ledger_, clock_, ledger::Role::kViewer, std::nullopt, "", "system")
          .value()
          .token;
  const int64_t before = count();
  int checked = 0, remote = 1;
  for (const auto& r : api_->routes().routes()) {
    std::string path = r.pattern;
    if (auto b = path.find("{id}"); b != std::string::npos) path.replace(b, 4, "x1");
    const std::string body = r.method == "POST" ? "{}" : "";
    const std::string addr = "127.0.1." + std::to_string(remote++);
    SCOPED_TRACE(r.method + " " + r.pattern + " (" + r.role + ")");
    if (r.role == "public") continue;
    EXPECT_EQ(call(r.method, path, body, {}, addr).status, 401u);
    if (r.role == "operator" || r.role == "admin") {
      EXPECT_EQ(call(r.method, path, body, viewer, addr).status, 403u);
    }
    ++checked;
  }
  EXPECT_GE(checked, 20);
  // Refusals are recorded as auth.denied only.
  auto events = ledger_->read({.after = before, .limit = 1000});
  ASSERT_TRUE(events.has_value());
  for (const auto& e : *events) EXPECT_EQ(e.type, "auth.denied");
}

}  // namespace
}  // namespace hwl::api
