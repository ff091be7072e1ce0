// The HTTPS server and client together on loopback: TLS 1.3, limits, streaming, graceful stop.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "hwl/crypto.hpp"
#include "hwl/http.hpp"
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
                           {.common_name = "localhost", .dns = {"localhost"},
                            .ips = {"127.0.0.1"}, .server_auth = true, .lifetime_s = 3600});
    ca_pem_ = pki::certPem(ca->get());
    ASSERT_TRUE(crypto::writeFileAtomic(dir_ / "srv.crt", pki::certPem(cert->get())));
    ASSERT_TRUE(crypto::writeFileAtomic(dir_ / "srv.key", crypto::privateKeyPem(key.get())));
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  void start(Handler h, ServerSettings s = {}) {
    s.listen = "127.0.0.1:0";
    s.cert_file = (dir_ / "srv.crt").string();
    s.key_file = (dir_ / "srv.key").string();
    server_ = std::make_unique<Server>(s, std::move(h));
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

TEST(HttpPlain, SplitHostPort) {
  EXPECT_EQ(splitHostPort("127.0.0.1:8443").value(), std::make_pair(std::string("127.0.0.1"),
                                                                    uint16_t{8443}));
  EXPECT_EQ(splitHostPort("[::1]:0").value().first, "::1");
  EXPECT_FALSE(splitHostPort("localhost").has_value());
  EXPECT_FALSE(splitHostPort("h:70000").has_value());
  EXPECT_FALSE(splitHostPort("h:12a").has_value());
}

}  // namespace
}  // namespace hwl::http
