// Pooled mutual-TLS connections to agents (see agent_transport.hpp).
#include "agent_transport.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/url.hpp>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "agent_transport_io.hpp"
#include "hwl/http.hpp"
#include "hwl/tls.hpp"

namespace hwl::dispatch {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

namespace {
// The largest answer read from an agent (a telemetry document of many GPUs, an outbox page).
constexpr size_t kMaxReplyBytes = 32 << 20;

bool closedByPeer(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

struct Conn {
  Conn(asio::io_context& ioc, asio::ssl::context& ssl, std::string addr)
      : address(std::move(addr)), stream(ioc, ssl) {}
  std::string address;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};
}  // namespace

struct AgentTransport::Impl {
  AgentIdentity identity;
  size_t idle_cap;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<asio::ssl::context> ssl;
  std::thread thread;
  mutable std::mutex mu;
  std::map<std::string, std::vector<std::unique_ptr<Conn>>> idle;  // by host id
  TransportStats stats;

  Impl(AgentIdentity id, size_t cap) : identity(std::move(id)), idle_cap(cap) {}

  std::unique_ptr<Conn> take(const AgentEndpoint& to) {
    std::lock_guard lk(mu);
    auto it = idle.find(to.host_id);
    if (it == idle.end()) return nullptr;
    auto& v = it->second;
    while (!v.empty()) {
      auto c = std::move(v.back());
      v.pop_back();
      if (c->address == to.address) return c;
    }
    return nullptr;
  }

  void give(const AgentEndpoint& to, std::unique_ptr<Conn> c) {
    std::lock_guard lk(mu);
    auto& v = idle[to.host_id];
    if (v.size() < idle_cap) v.push_back(std::move(c));
  }

  asio::awaitable<Result<std::unique_ptr<Conn>>> open(const AgentEndpoint& to,
                                                      std::chrono::milliseconds timeout) {
    using R = Result<std::unique_ptr<Conn>>;
    auto hp = http::splitHostPort(to.address);
    if (!hp) co_return R(hp.error());
    tcp::resolver resolver(ioc);
    const std::string port = std::to_string(hp->second);
    auto [rec, results] = co_await resolver.async_resolve(hp->first, port, kNoThrow);
    if (rec) co_return R(unavailable("cannot resolve " + to.address + ": " + rec.message()));
    auto c = std::make_unique<Conn>(ioc, *ssl, to.address);
    auto& tcp_stream = beast::get_lowest_layer(c->stream);
    tcp_stream.expires_after(timeout);
    auto [cec, ep] = co_await tcp_stream.async_connect(results, kNoThrow);
    if (cec) co_return R(unavailable("cannot connect to " + to.address + ": " + cec.message()));
    // Requests and answers are written in parts: none waits for a delayed ACK.
    beast::error_code nd;
    tcp_stream.socket().set_option(tcp::no_delay(true), nd);
    tcp_stream.expires_after(timeout);
    auto [hec] = co_await c->stream.async_handshake(asio::ssl::stream_base::client, kNoThrow);
    if (hec)
      co_return R(unavailable("TLS handshake with " + to.address + " failed: " + hec.message()));
    // The agent must be the host we think it is: its certificate's SAN names that host.
    http::PeerCert pc;
    if (X509* peer = SSL_get0_peer_certificate(c->stream.native_handle()))
      http::tls::describe(peer, pc);
    const std::string want = "hwledger://host/" + to.host_id;
    if (std::find(pc.uris.begin(), pc.uris.end(), want) == pc.uris.end())
      co_return R(permissionDenied("the agent at " + to.address + " is not " + to.host_id));
    {
      std::lock_guard lk(mu);
      ++stats.connections_opened;
    }
    co_return R(std::move(c));
  }

  // One request and its answer on `c`; the connection is unusable after an error.
  // `stale`: the error says the peer had closed the connection (not a timeout).
  asio::awaitable<Result<std::pair<AgentReply, bool>>> exchange(Conn& c, const AgentCall& call,
                                                                bool& stale) {
    using R = Result<std::pair<AgentReply, bool>>;
    auto verb = bhttp::string_to_verb(call.method);
    bhttp::request<bhttp::string_body> req{verb, call.target, 11};
    req.set(bhttp::field::host, c.address);
    req.set(bhttp::field::user_agent, "hwledger-server");
    if (!call.body.empty() || verb == bhttp::verb::post) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = call.body;
      req.prepare_payload();
    }
    req.keep_alive(true);
    auto& lowest = beast::get_lowest_layer(c.stream);
    lowest.expires_after(call.timeout);
    auto [wec, wn] = co_await bhttp::async_write(c.stream, req, kNoThrow);
    stale = closedByPeer(wec);
    if (wec)
      co_return R(
          unavailable(call.method + " " + call.target + " on " + c.address + ": " + wec.message()));
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(kMaxReplyBytes);
    auto [rec, rn] = co_await bhttp::async_read(c.stream, c.buffer, parser, kNoThrow);
    stale = closedByPeer(rec) && rn == 0;
    if (rec)
      co_return R(
          unavailable(call.method + " " + call.target + " on " + c.address + ": " + rec.message()));
    auto res = parser.release();
    co_return R(
        std::make_pair(AgentReply{res.result_int(), std::move(res.body())}, res.keep_alive()));
  }

  asio::awaitable<Result<AgentReply>> call(AgentEndpoint to, AgentCall call) {
    using R = Result<AgentReply>;
    if (!ssl) co_return R(unavailable("the agent transport is not started"));
    // A pooled connection may have been closed by the agent while idle: then once more on a new
    // one (every agent call is idempotent: job ids make dispatch so). The other idle connections
    // to that host date from the same agent process, so they are dropped and not tried in turn.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool stale = false;
      auto conn = attempt == 0 ? take(to) : nullptr;
      const bool reused = conn != nullptr;
      if (!conn) {
        auto opened = co_await open(to, call.timeout);
        if (!opened) co_return R(opened.error());
        conn = std::move(*opened);
      }
      auto r = co_await exchange(*conn, call, stale);
      if (!r) {
        // Once more only when the agent had closed the idle connection, not after a timeout.
        if (reused && stale && attempt == 0) {
          std::lock_guard lk(mu);
          idle.erase(to.host_id);
          continue;
        }
        co_return R(r.error());
      }
      {
        std::lock_guard lk(mu);
        ++stats.calls;
      }
      if (r->second) give(to, std::move(conn));
      co_return R(std::move(r->first));
    }
    co_return R(unavailable("no connection to " + to.address));
  }
};

AgentTransport::AgentTransport(AgentIdentity identity, size_t idle_per_host)
    : impl_(std::make_unique<Impl>(std::move(identity), idle_per_host)) {}

AgentTransport::~AgentTransport() { stop(); }

Status AgentTransport::start() {
  http::ClientSettings cs{.ca_file = impl_->identity.ca_file,
                          .cert_file = impl_->identity.cert_file,
                          .key_file = impl_->identity.key_file,
                          .verify_hostname = false};
  auto ctx = http::tls::makeClientContext(cs);
  if (!ctx) return ctx.error();
  impl_->ssl.emplace(std::move(*ctx));
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
  return {};
}

void AgentTransport::stop() {
  if (!impl_->thread.joinable()) return;
  // Idle connections close on the I/O thread; calls in flight finish within their timeouts.
  asio::post(impl_->ioc, [this] {
    std::lock_guard lk(impl_->mu);
    impl_->idle.clear();
  });
  impl_->work.reset();
  impl_->thread.join();
}

Result<AgentReply> AgentTransport::call(const AgentEndpoint& to, AgentCall c) {
  auto done = std::make_shared<std::promise<Result<AgentReply>>>();
  auto fut = done->get_future();
  asio::co_spawn(
      impl_->ioc,
      [](Impl& impl, AgentEndpoint to, AgentCall c,
         std::shared_ptr<std::promise<Result<AgentReply>>> p) -> asio::awaitable<void> {
        auto r = co_await impl.call(std::move(to), std::move(c));
        p->set_value(std::move(r));
      }(*impl_, to, std::move(c), done),
      asio::detached);
  return fut.get();
}

Result<unsigned> AgentTransport::stream(const AgentEndpoint& to, const std::string& target,
                                        const std::function<bool(std::string_view)>& on_data,
                                        const std::function<bool()>& cancelled) {
  // A followed log holds its connection for as long as the reader stays: a connection of its
  // own with the same identity and the same check of the agent's certificate.
  http::Client client(http::ClientSettings{.base_url = "https://" + to.address,
                                           .ca_file = impl_->identity.ca_file,
                                           .cert_file = impl_->identity.cert_file,
                                           .key_file = impl_->identity.key_file,
                                           .verify_hostname = false,
                                           .expected_uri = "hwledger://host/" + to.host_id,
                                           .timeout = std::chrono::milliseconds(10'000)});
  return client.stream("GET", target, {}, on_data, cancelled);
}

void AgentTransport::closeHost(const std::string& host_id) {
  asio::post(impl_->ioc, [this, host_id] {
    std::lock_guard lk(impl_->mu);
    impl_->idle.erase(host_id);
  });
}

size_t AgentTransport::idleConnections(const std::string& host_id) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->idle.find(host_id);
  return it == impl_->idle.end() ? 0 : it->second.size();
}

TransportStats AgentTransport::stats() const {
  std::lock_guard lk(impl_->mu);
  return impl_->stats;
}

asio::io_context& ioContext(AgentTransport& t) { return t.impl().ioc; }

asio::awaitable<Result<AgentReply>> asyncCall(AgentTransport& t, AgentEndpoint to, AgentCall c) {
  co_return co_await t.impl().call(std::move(to), std::move(c));
}

std::string agentTarget(
    std::initializer_list<std::string_view> segments,
    std::initializer_list<std::pair<std::string_view, std::string_view>> params) {
  boost::urls::url u;
  u.set_path_absolute(true);
  for (auto seg : segments) u.segments().push_back(seg);
  for (const auto& [k, v] : params) u.params().append({k, v});
  return std::string(u.encoded_target());
}

}  // namespace hwl::dispatch
