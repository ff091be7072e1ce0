// The HTTPS server and client together on loopback: TLS 1.3, limits, streaming, graceful stop.
#include "hwl/http.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "hwl/crypto.hpp"
#include "hwl/files.hpp"
#include "hwl/pki.hpp"

namespace hwl::http {
namespace {

namespace fs = std::filesystem;

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hwl-http-" + crypto::newId("", 6));
    fs::create_directories(dir_);
    auto ca_key = pki::generateP256();
    auto ca = pki::makeCa(ca_key.get(), {.common_name = "test CA", .lifetime_s = 3600});
    auto key = pki::generateP256();
    auto cert = pki::issue(ca->get(), ca_key.get(), key.get(),
                           {.common_name = "localhost",
                            .dns = {"localhost"},
                            .ips = {"127.0.0.1"},
                            .server_auth = true,
                            .lifetime_s = 3600});
    ca_pem_ = pki::certPem(ca->get());
    ASSERT_TRUE(files::writeFileAtomic(dir_ / "srv.crt", pki::certPem(cert->get())));
    ASSERT_TRUE(files::writeFileAtomic(dir_ / "srv.key", crypto::privateKeyPem(key.get())));
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  void start(Handler h, ServerSettings s = {}, BodyLimit limit = {}) {
    s.listen = "127.0.0.1:0";
    s.cert_file = (dir_ / "srv.crt").string();
    s.key_file = (dir_ / "srv.key").string();
    server_ = std::make_unique<Server>(s, std::move(h), std::move(limit));
    auto st = server_->start();
    ASSERT_TRUE(st.has_value()) << st.error().message;
  }
  ClientSettings client() {
    return ClientSettings{.base_url = "https://" + server_->boundAddress(), .ca_pem = ca_pem_};
  }

  fs::path dir_;
  std::string ca_pem_;
  std::unique_ptr<Server> server_;
};

TEST_F(HttpTest, RequestResponseWithQueryAndKeepAlive) {
  std::atomic<int> calls{0};
  start([&](Request& r) {
    ++calls;
    Response res;
    res.body = r.method + " " + r.path + " q=" + r.query["q"] + " body=" + r.body;
    return res;
  });
  Client c(client());
  auto a = c.request("POST", "/v1/x%20y?q=a%26b+c", "hello");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->status, 200u);
  EXPECT_EQ(a->body, "POST /v1/x y q=a&b c body=hello");
  auto b = c.request("GET", "/two");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->body, "GET /two q= body=");
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(HttpTest, ClientRefusesServerFromAnotherCa) {
  start([](Request&) { return Response{}; });
  auto other_key = pki::generateP256();
  auto other = pki::makeCa(other_key.get(), {.common_name = "other", .lifetime_s = 3600});
  auto s = client();
  s.ca_pem = pki::certPem(other->get());
  Client c(s);
  auto r = c.request("GET", "/");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("TLS handshake"), std::string::npos) << r.error().message;
}

TEST_F(HttpTest, OversizedHeaderAndBodyAreRefused) {
  std::atomic<int> calls{0};
  ServerSettings s;
  s.body_limit = 1000;
  start(
      [&](Request&) {
        ++calls;
        return Response{};
      },
      s);
  Client c(client());
  auto big_header = c.request("GET", "/", {}, {{"X-Big", std::string(9000, 'x')}});
  ASSERT_TRUE(big_header.has_value());
  EXPECT_EQ(big_header->status, 431u);
  Client c2(client());
  auto big_body = c2.request("POST", "/", std::string(1001, 'x'));
  ASSERT_TRUE(big_body.has_value());
  EXPECT_EQ(big_body->status, 413u);
  EXPECT_NE(big_body->body.find("body_too_large"), std::string::npos);
  EXPECT_EQ(calls.load(), 0);
  Client c3(client());
  auto ok = c3.request("POST", "/", std::string(1000, 'x'));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200u);
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(HttpTest, StreamingResponseDeliversChunksAsWritten) {
  start([](Request&) {
    Response r;
    r.content_type = "text/plain";
    r.stream = [](StreamWriter& w) {
      for (int i = 0; i < 3; ++i) {
        if (!w.write("chunk" + std::to_string(i) + "\n")) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    };
    return r;
  });
  Client c(client());
  std::string got;
  int pieces = 0;
  auto st = c.stream("GET", "/s", {}, [&](std::string_view d) {
    got += d;
    ++pieces;
    return true;
  });
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(*st, 200u);
  EXPECT_EQ(got, "chunk0\nchunk1\nchunk2\n");
  EXPECT_GE(pieces, 2);  // arrived as it was written, not in one piece at the end
}

TEST_F(HttpTest, StopLetsInFlightRequestsFinish) {
  std::atomic<bool> entered{false};
  start([&](Request&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    Response r;
    r.body = "done";
    return r;
  });
  Result<ClientResponse> res = internal("not run");
  std::thread t([&] {
    Client c(client());
    res = c.request("GET", "/slow");
  });
  while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server_->stop();
  t.join();
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(res->body, "done");
}

// A request handler that records the decoded paths it was called with.
struct Recorder {
  std::mutex mu;
  std::vector<std::string> paths;
  Handler handler() {
    return [this](Request& r) {
      std::lock_guard lk(mu);
      paths.push_back(r.method + " " + r.path);
      Response res;
      res.body = "ok";
      return res;
    };
  }
  size_t count() {
    std::lock_guard lk(mu);
    return paths.size();
  }
};

const std::vector<std::pair<std::string, std::string>> kNoHeaders;

TEST_F(HttpTest, ClientRefusesTargetsAndHeadersThatWouldSmuggleARequest) {
  Recorder rec;
  start(rec.handler());
  Client c(client());
  // The decoded `tail` of a log request copied into the target of a request to an agent.
  const std::string smuggled =
      "/v1/jobs/j1/logs?tail=1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /v1/jobs HTTP/1.1\r\nHost: a\r\n"
      "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  const std::vector<std::string> bad_targets = {
      smuggled,
      "/v1/jobs/j1/logs?tail=1\r\n\r\nPOST /v1/jobs HTTP/1.1",
      "/a\nb",
      "/a\rb",
      std::string("/a\0b", 4),
      "/a b",
      "/a\tb",
      "/a\x7f",
      "/caf\xc3\xa9",
      "v1/health",
      "http://127.0.0.1/v1/health",
      "",
  };
  for (const auto& t : bad_targets) {
    auto r = c.request("GET", t);
    ASSERT_FALSE(r.has_value()) << "sent: " << t;
    EXPECT_EQ(r.error().code, Code::kInvalidArgument) << r.error().message;
    auto st = c.stream("GET", t, {}, [](std::string_view) { return true; });
    ASSERT_FALSE(st.has_value()) << "streamed: " << t;
    EXPECT_EQ(st.error().code, Code::kInvalidArgument) << st.error().message;
  }
  const std::vector<std::pair<std::string, std::string>> bad_headers = {
      {"X-A", "1\r\n\r\nPOST /v1/jobs HTTP/1.1"},
      {"X-A", "1\nX-B: 2"},
      {"X-A", "1\rX-B: 2"},
      {"X-A", std::string("1\0"
                          "2",
                          3)},
      {"X-A", "\x1b[0m"},
      {"X-A\r\nX-B", "1"},
      {"X A", "1"},
      {"X-A:", "1"},
      {"", "1"},
      {"X-\xc3\xa9", "1"},
  };
  for (const auto& h : bad_headers) {
    auto r = c.request("GET", "/v1/health", {}, {h});
    ASSERT_FALSE(r.has_value()) << "header " << h.first << ": " << h.second;
    EXPECT_EQ(r.error().code, Code::kInvalidArgument) << r.error().message;
    auto st = c.stream("GET", "/v1/health", {h}, [](std::string_view) { return true; });
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code, Code::kInvalidArgument);
  }
  auto verb = c.request("GET /x HTTP/1.1\r\n", "/v1/health");
  ASSERT_FALSE(verb.has_value());
  EXPECT_EQ(verb.error().code, Code::kInvalidArgument);
  EXPECT_EQ(rec.count(), 0U) << "a refused request reached the server";

  // Well-formed targets and headers, escapes included, still go through, once each.
  auto ok = c.request("GET", "/v1/jobs/j1/logs?tail=100&x=%00", {}, {{"X-A", "a\tb c"}});
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->status, 400U) << "an encoded NUL in a query value is refused by the server";
  Client c2(client());
  auto ok2 = c2.request("GET", "/v1/jobs/j1/logs?tail=100", {}, {{"X-A", "a\tb c"}});
  ASSERT_TRUE(ok2.has_value()) << ok2.error().message;
  EXPECT_EQ(ok2->status, 200U);
  EXPECT_EQ(rec.count(), 1U);
}

// A TCP listener that is never served: shows whether a client connected at all.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  [[nodiscard]] uint16_t port() const { return port_; }
  // Accepts what is queued; the number of connections made.
  int connections() {
    int n = 0;
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return n;
      ::close(c);
      ++n;
    }
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(HttpPlain, RefusedRequestsPutNothingOnTheWire) {
  SilentListener l;
  Client c(ClientSettings{.base_url = "http://127.0.0.1:" + std::to_string(l.port()),
                          .timeout = std::chrono::milliseconds(500)});
  auto r = c.request("POST", "/v1/x\r\nX: y", "{}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  auto h = c.request("GET", "/v1/x", {}, {{"Authorization", "Bearer a\r\nX-Admin: 1"}});
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, Code::kInvalidArgument);
  EXPECT_EQ(l.connections(), 0);
  // The listener does see a well-formed request's connection (so the count above means something).
  auto sent = c.request("GET", "/v1/x");
  EXPECT_FALSE(sent.has_value());  // nobody answers
  EXPECT_EQ(l.connections(), 1);
  // A base URL that carries more than HOST:PORT is refused before anything is sent.
  const std::vector<std::string> bad_urls = {
      "http://127.0.0.1:" + std::to_string(l.port()) + "/x?y", "http://a b:80",
      "http://a\r\nX: y:80"};
  for (const auto& bad : bad_urls) {
    Client cb(ClientSettings{.base_url = bad, .timeout = std::chrono::milliseconds(500)});
    auto rb = cb.request("GET", "/v1/x");
    ASSERT_FALSE(rb.has_value()) << bad;
    EXPECT_EQ(rb.error().code, Code::kInvalidArgument) << bad << ": " << rb.error().message;
  }
  EXPECT_EQ(l.connections(), 0);
}

// Sends raw bytes to a plain-HTTP server and returns everything it answers until it closes.
std::string rawExchange(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

size_t countOf(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

class HttpRaw : public ::testing::Test {
 protected:
  void start(BodyLimit limit = {}) {
    ServerSettings s;
    s.listen = "127.0.0.1:0";
    s.plain_http = true;
    s.body_limit = 1000;
    server_ = std::make_unique<Server>(s, rec_.handler(), std::move(limit));
    auto st = server_->start();
    ASSERT_TRUE(st.has_value()) << st.error().message;
  }
  std::string send(const std::string& bytes) { return rawExchange(server_->port(), bytes); }
  Recorder rec_;
  std::unique_ptr<Server> server_;
};

TEST_F(HttpRaw, AmbiguousFramingNeverBecomesASecondRequest) {
  start();
  // Bare LF line endings.
  auto lf = send("GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\nHost: x\n\n");
  EXPECT_EQ(lf.rfind("HTTP/1.1 400", 0), 0U) << lf;
  // An obs-fold continuation line carrying a request line.
  auto fold =
      send("GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n GET /b HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_LE(countOf(fold, "HTTP/1.1 "), 1U) << fold;
  // Content-Length and Transfer-Encoding together, and two different Content-Lengths.
  auto clte = send(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(clte.rfind("HTTP/1.1 400", 0), 0U) << clte;
  EXPECT_EQ(countOf(clte, "HTTP/1.1 "), 1U) << clte;
  auto tecl = send(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(tecl.rfind("HTTP/1.1 400", 0), 0U) << tecl;
  auto clcl = send(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n"
      "{}GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(clcl.rfind("HTTP/1.1 400", 0), 0U) << clcl;
  // A transfer coding other than chunked last.
  auto te = send(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
      "0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(te.rfind("HTTP/1.1 400", 0), 0U) << te;
  // Raw CR, NUL and spaces inside the target.
  auto cr = send("GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(cr.rfind("HTTP/1.1 400", 0), 0U) << cr;
  const std::string nul_req = std::string("GET /a") + '\0' + "b HTTP/1.1\r\nHost: x\r\n\r\n";
  auto nul = send(nul_req);
  EXPECT_EQ(nul.rfind("HTTP/1.1 400", 0), 0U) << nul;
  {
    std::lock_guard lk(rec_.mu);
    for (const auto& p : rec_.paths) EXPECT_NE(p, "GET /b") << "a smuggled request was served";
  }
  // The same connection framing done right serves two pipelined requests.
  auto two = send(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(countOf(two, "HTTP/1.1 200"), 2U) << two;
}

TEST_F(HttpRaw, EscapesThatChangeThePathAreRefused) {
  start();
  for (std::string t :
       {"/v1/jobs%2Fx", "/v1/jobs%2fx", "/a%00b", "/a%0D%0Ab", "/a%7Fb", "/a%zz", "/a%4", "/a%",
        "/a?k=%01X", "/a?k=%00", "/a?%0d%0a=1", "/a?%00=1", "/a?k=%q1", "*", "http://x/a"}) {
    auto r = send("GET " + t + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0U) << t << " → " << r;
  }
  EXPECT_EQ(rec_.count(), 0U);
  auto ok = send("GET /a%20b%41?k=%2F%20+x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0U) << ok;
  ASSERT_EQ(rec_.count(), 1U);
  EXPECT_EQ(rec_.paths[0], "GET /a bA");
}

TEST_F(HttpRaw, BodyLimitIsLookedUpOnTheDecodedPath) {
  std::mutex mu;
  std::vector<std::string> asked;
  start([&](std::string_view method, std::string_view path) -> size_t {
    std::lock_guard lk(mu);
    asked.push_back(std::string(method) + " " + std::string(path));
    return path == "/v1/tokens" ? 16 : 1000;
  });
  const std::string body(100, 'x');
  for (std::string t : {"/v1/tokens", "/v1/%74okens", "/v1/%74%6F%6B%65%6E%73", "/%76%31/tokens"}) {
    auto r = send("POST " + t + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + body);
    EXPECT_EQ(r.rfind("HTTP/1.1 413", 0), 0U) << t << " → " << r;
  }
  EXPECT_EQ(rec_.count(), 0U);
  {
    std::lock_guard lk(mu);
    for (const auto& a : asked) EXPECT_EQ(a, "POST /v1/tokens");
  }
  auto other = send(
      "POST /v1/%6Aobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" +
      body);
  EXPECT_EQ(other.rfind("HTTP/1.1 200", 0), 0U) << other;
  ASSERT_EQ(rec_.count(), 1U);
  EXPECT_EQ(rec_.paths[0], "POST /v1/jobs");
}

// The handler idles (writes nothing) until stopping(); how long after the client went away
// does it notice?
TEST_F(HttpTest, StreamingHandlerSeesAClosedClientWithinASecond) {
  std::atomic<bool> ended{false};
  std::atomic<int64_t> ended_at_ms{0};
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  start([&](Request&) {
    Response r;
    r.content_type = "text/plain";
    r.stream = [&](StreamWriter& w) {
      // The client may close before this first write returns: that too is seeing it gone.
      const bool wrote = w.write("hello\n");
      auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (wrote && !w.stopping() && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ended_at_ms = now_ms();
      ended = true;
    };
    return r;
  });
  for (int round = 0; round < 2; ++round) {
    ended = false;
    Client c(client());
    std::string got;
    auto st = c.stream("GET", "/s", {}, [&](std::string_view d) {
      got += d;
      return false;  // stop after the first chunk: the client closes its connection
    });
    const int64_t closed_ms = now_ms();
    ASSERT_TRUE(st.has_value()) << st.error().message;
    EXPECT_EQ(got, "hello\n");
    while (!ended && now_ms() - closed_ms < 6000)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(ended);
    EXPECT_LT(ended_at_ms - closed_ms, 1000) << "the handler noticed the close too late";
  }
}

TEST_F(HttpTest, ClientStreamEndsWhenCancelledWhileTheServerIsSilent) {
  std::atomic<bool> handler_done{false};
  start([&](Request&) {
    Response r;
    r.content_type = "text/plain";
    r.stream = [&](StreamWriter& w) {
      if (!w.write("first\n")) return;
      auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!w.stopping() && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      handler_done = true;
    };
    return r;
  });
  Client c(client());
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  std::string got;
  const auto t0 = std::chrono::steady_clock::now();
  auto st = c.stream(
      "GET", "/s", {},
      [&](std::string_view d) {
        got += d;
        return true;
      },
      [&] { return cancel.load(); });
  const auto took = std::chrono::steady_clock::now() - t0;
  canceller.join();
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(*st, 200U);
  EXPECT_EQ(got, "first\n");
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  // And the server side of the relay lets go of its handler too.
  for (int i = 0; i < 200 && !handler_done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(handler_done);
}

TEST(HttpPlain, SplitHostPort) {
  EXPECT_EQ(splitHostPort("127.0.0.1:8443").value(),
            std::make_pair(std::string("127.0.0.1"), uint16_t{8443}));
  EXPECT_EQ(splitHostPort("[::1]:0").value().first, "::1");
  EXPECT_FALSE(splitHostPort("localhost").has_value());
  EXPECT_FALSE(splitHostPort("h:70000").has_value());
  EXPECT_FALSE(splitHostPort("h:12a").has_value());
}

}  // namespace
}  // namespace hwl::http
