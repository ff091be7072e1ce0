// The events API: cursor pagination over more than one page, stream and type filters, and the
// server-sent event stream followed live by the CLI and resumed from a cursor.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <set>
#include <thread>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

std::vector<int64_t> seqsOf(const bj::object& page) {
  std::vector<int64_t> out;
  for (const auto& e : page.at("events").as_array())
    out.push_back(e.as_object().at("seq").as_int64());
  return out;
}

std::vector<int64_t> range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t s = from; s <= to; ++s) out.push_back(s);
  return out;
}

TEST(EventsApi, PaginationFiltersAndTheLimitCap) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  constexpr int kTokens = 1100;
  auto ids = srv.createTokens(kTokens, 8);
  constexpr int64_t kHead = kTokens + 1;
  ASSERT_EQ(srv.eventCount(), kHead);

  // A limit above 1000 is capped.
  auto p1 = srv.get("/v1/events?limit=5000");
  ASSERT_EQ(p1.status, 200) << p1.body;
  auto o1 = p1.obj();
  EXPECT_EQ(seqsOf(o1), range(1, 1000));
  EXPECT_EQ(o1.at("next_after").as_int64(), 1000);
  auto o2 = srv.get("/v1/events?limit=1000&after=1000").obj();
  EXPECT_EQ(seqsOf(o2), range(1001, kHead));
  EXPECT_EQ(o2.at("next_after").as_int64(), kHead);
  auto o3 = srv.get("/v1/events?limit=1000&after=" + std::to_string(kHead)).obj();
  EXPECT_TRUE(o3.at("events").as_array().empty());
  EXPECT_EQ(o3.at("next_after").as_int64(), kHead);
  // The default page is 100.
  EXPECT_EQ(seqsOf(srv.get("/v1/events").obj()), range(1, 100));
  auto small = srv.get("/v1/events?after=500&limit=7").obj();
  EXPECT_EQ(seqsOf(small), range(501, 507));
  EXPECT_EQ(small.at("next_after").as_int64(), 507);

  // Every event has its fields, and the ids of the created tokens are all there, once.
  std::set<std::string> seen;
  for (const auto* page : {&o1, &o2}) {
    for (const auto& v : page->at("events").as_array()) {
      const auto& e = v.as_object();
      EXPECT_EQ(std::string(e.at("type").as_string()), "token.created");
      EXPECT_EQ(e.at("hash").as_string().size(), 64U);
      EXPECT_EQ(e.at("version").as_int64(), 1);
      EXPECT_TRUE(e.at("data").is_object());
      EXPECT_EQ(e.at("data").as_object().count("secret_sha256"), 1U);
      EXPECT_EQ(std::string(e.at("stream").as_string()),
                "token/" + std::string(e.at("data").as_object().at("id").as_string()));
      seen.insert(std::string(e.at("data").as_object().at("id").as_string()));
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kHead));
  for (const auto& id : ids) EXPECT_TRUE(seen.count(id)) << id;

  // Filters.
  srv.revokeToken(ids[10]);
  srv.revokeToken(ids[20]);
  auto by_stream = srv.get("/v1/events?stream=token/" + ids[10]).obj();
  const auto& in_stream = by_stream.at("events").as_array();
  ASSERT_EQ(in_stream.size(), 2U) << bj::serialize(by_stream);
  EXPECT_EQ(std::string(in_stream[0].as_object().at("type").as_string()), "token.created");
  EXPECT_EQ(in_stream[0].as_object().at("version").as_int64(), 1);
  EXPECT_LE(in_stream[0].as_object().at("seq").as_int64(), kHead);
  EXPECT_EQ(std::string(in_stream[1].as_object().at("type").as_string()), "token.revoked");
  EXPECT_EQ(in_stream[1].as_object().at("version").as_int64(), 2);
  EXPECT_EQ(in_stream[1].as_object().at("seq").as_int64(), kHead + 1);
  auto revoked = srv.get("/v1/events?type=token.revoked").obj();
  EXPECT_EQ(seqsOf(revoked), (std::vector<int64_t>{kHead + 1, kHead + 2}));
  auto created = srv.get("/v1/events?type=token.created&limit=1000&after=1000").obj();
  EXPECT_EQ(seqsOf(created), range(1001, kHead));
  auto both = srv.get("/v1/events?type=token.revoked&stream=token/" + ids[20]).obj();
  EXPECT_EQ(seqsOf(both), (std::vector<int64_t>{kHead + 2}));
  EXPECT_TRUE(srv.get("/v1/events?stream=token/tok_none").obj().at("events").as_array().empty());
  EXPECT_EQ(srv.get("/v1/events?limit=0").status, 400);
}

TEST(EventsApi, FollowReceivesNewEventsAndResumesFromACursor) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  srv.createToken("viewer");
  const int64_t head = srv.eventCount();
  auto viewer = srv.createToken("viewer");  // the follower authenticates as a viewer
  const int64_t start = viewer.seq;

  SpawnOptions so;
  so.env = srv.cliEnv(viewer.token);
  so.stdout_file = tmp / "follow.out";
  so.stderr_file = tmp / "follow.err";
  Process follow({cliBin(), "--json", "events", "--follow", "--after", std::to_string(start)}, so);
  std::this_thread::sleep_for(300ms);
  auto t1 = srv.createToken("operator", {}, "first");
  ASSERT_TRUE(follow.waitForOutput(t1.id, 10s)) << follow.out() << follow.err();
  auto t2 = srv.createToken("viewer", {}, "second");
  ASSERT_TRUE(follow.waitForOutput(t2.id, 10s)) << follow.out() << follow.err();
  EXPECT_TRUE(follow.running()) << follow.err();
  follow.kill();

  std::vector<int64_t> got;
  for (const auto& l : lines(follow.out())) {
    auto e = bj::parse(l).as_object();
    got.push_back(e.at("seq").as_int64());
    EXPECT_GT(got.back(), start) << "an event at or before the cursor was sent";
  }
  EXPECT_EQ(got, (std::vector<int64_t>{t1.seq, t2.seq}));
  EXPECT_EQ(start, head + 1);

  // An EventSource reconnecting with Last-Event-ID continues after it, in SSE format.
  auto r = run({"curl", "-sS", "-N", "--max-time", "2", "--cacert", srv.caCert().string(), "-H",
                "Authorization: Bearer " + viewer.token, "-H",
                "Last-Event-ID: " + std::to_string(t1.seq), srv.url() + "/v1/events/stream"});
  EXPECT_EQ(r.code(), 28) << r.err;  // still streaming when curl gave up
  std::vector<std::string> ids;
  for (const auto& l : lines(r.out))
    if (l.rfind("id: ", 0) == 0) ids.push_back(l.substr(4));
  EXPECT_EQ(ids, (std::vector<std::string>{std::to_string(t2.seq)})) << r.out;
  EXPECT_NE(r.out.find("event: token.created\ndata: {"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(t2.id), std::string::npos) << r.out;

  // The stream honours filters: only revocations, the first one arriving live.
  SpawnOptions so2 = so;
  so2.stdout_file = tmp / "follow2.out";
  Process revocations(
      {cliBin(), "--json", "events", "--follow", "--type", "token.revoked", "--after", "0"}, so2);
  std::this_thread::sleep_for(300ms);
  srv.createToken("viewer");
  srv.revokeToken(t1.id);
  ASSERT_TRUE(revocations.waitForOutput("token.revoked", 10s)) << revocations.out();
  std::this_thread::sleep_for(300ms);
  revocations.kill();
  auto rl = lines(revocations.out());
  ASSERT_EQ(rl.size(), 1U) << revocations.out();
  EXPECT_EQ(std::string(bj::parse(rl[0]).as_object().at("stream").as_string()), "token/" + t1.id);
}

// A live event stream opened by curl; `status()` is the HTTP status once the headers are in.
class StreamClient {
 public:
  StreamClient(const LedgerServer& srv, const std::filesystem::path& dir, const std::string& token,
               int n) {
    SpawnOptions so;
    so.stdout_file = dir / ("stream" + std::to_string(n) + ".out");
    so.stderr_file = dir / ("stream" + std::to_string(n) + ".err");
    proc_ = std::make_unique<Process>(
        std::vector<std::string>{"curl", "-sS", "-N", "-i", "--cacert", srv.caCert().string(), "-H",
                                 "Authorization: Bearer " + token, srv.url() + "/v1/events/stream"},
        so);
  }
  // 200 once streaming, 429 when refused, 0 when nothing came within the timeout.
  int status(std::chrono::milliseconds timeout = 5s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      auto out = proc_->out();
      if (out.find("HTTP/1.1 200") != std::string::npos &&
          out.find(": hwledger events") != std::string::npos)
        return 200;
      if (auto p = out.find("HTTP/1.1 "); p != std::string::npos && out.size() >= p + 12)
        if (out.find("\r\n\r\n") != std::string::npos) return std::atoi(out.c_str() + p + 9);
      std::this_thread::sleep_for(20ms);
    }
    return 0;
  }
  std::string out() const { return proc_->out(); }
  void kill() { proc_->kill(); }

 private:
  std::unique_ptr<Process> proc_;
};

TEST(EventsApi, StreamsAreLimitedPerPrincipalWithAReserveForAdmins) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  writeFile(tmp / "config.json",
            R"({"max_streams": 6, "max_streams_per_principal": 2, "admin_stream_reserve": 2})");
  srv.start({"--config", (tmp / "config.json").string()});
  auto a = srv.createToken("viewer");
  auto b = srv.createToken("viewer");
  auto c = srv.createToken("operator");
  const int64_t events = srv.eventCount();
  std::vector<std::unique_ptr<StreamClient>> open;
  int n = 0;
  auto openAs = [&](const std::string& token) {
    open.push_back(std::make_unique<StreamClient>(srv, tmp.path(), token, n++));
    return open.back()->status();
  };
  ASSERT_EQ(openAs(a.token), 200) << open.back()->out();
  ASSERT_EQ(openAs(a.token), 200) << open.back()->out();
  // A third stream of the same viewer is refused with 429 and says why.
  ASSERT_EQ(openAs(a.token), 429) << open.back()->out();
  EXPECT_NE(open.back()->out().find("max_streams_per_principal"), std::string::npos)
      << open.back()->out();
  ASSERT_EQ(openAs(b.token), 200) << open.back()->out();
  ASSERT_EQ(openAs(b.token), 200) << open.back()->out();
  // Four non-admin streams of six: the last two are kept for admins, whoever asks.
  ASSERT_EQ(openAs(c.token), 429) << open.back()->out();
  EXPECT_NE(open.back()->out().find("kept for admins"), std::string::npos) << open.back()->out();
  ASSERT_EQ(openAs(srv.adminToken()), 200) << open.back()->out();
  ASSERT_EQ(openAs(srv.adminToken()), 200) << open.back()->out();
  // The paged API is not a stream and is never held back.
  auto page = srv.request("GET", "/v1/events?limit=1", a.token);
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(srv.eventCount(), events);
}

TEST(EventsApi, AClientKilledMidStreamFreesItsSlotWithinTwoSeconds) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  writeFile(tmp / "config.json", R"({"max_streams_per_principal": 3})");
  srv.start({"--config", (tmp / "config.json").string()});
  auto v = srv.createToken("viewer");
  std::vector<std::unique_ptr<StreamClient>> first;
  for (int i = 0; i < 3; ++i) {
    first.push_back(std::make_unique<StreamClient>(srv, tmp.path(), v.token, i));
    ASSERT_EQ(first.back()->status(), 200) << first.back()->out();
  }
  StreamClient over(srv, tmp.path(), v.token, 10);
  ASSERT_EQ(over.status(), 429) << over.out();
  // SIGKILL: no goodbye from the clients, only the kernel closing their sockets. The server is
  // idle (no events, the heartbeat is 15 s away), so only watching the sockets can notice.
  for (auto& s : first) s->kill();
  const auto killed = std::chrono::steady_clock::now();
  int reopened = 0;
  int attempt = 20;
  std::vector<std::unique_ptr<StreamClient>> second;
  while (reopened < 3 && std::chrono::steady_clock::now() - killed < 2500ms) {
    auto again = std::make_unique<StreamClient>(srv, tmp.path(), v.token, attempt++);
    if (again->status() == 200) {
      ++reopened;
      second.push_back(std::move(again));  // kept open: three live streams again
    } else {
      std::this_thread::sleep_for(100ms);
    }
  }
  const auto took = std::chrono::steady_clock::now() - killed;
  EXPECT_GE(reopened, 3) << "slots were still held "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms after the clients died";
  EXPECT_LT(took, 2500ms);
}

}  // namespace
}  // namespace hwl::itest
