// The HTTPS server: Beast coroutines on an io_context, one coroutine per connection, handlers on
// a worker pool. Limits: header size, body size (per route), handshake/header/body/idle timeouts.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <condition_variable>
#include <future>
#include <limits>
#include <list>
#include <mutex>
#include <thread>

#include "hwl/crypto.hpp"
#include "hwl/http.hpp"
#include "hwl/http_parse.hpp"
#include "hwl/json.hpp"
#include "hwl/tls.hpp"

namespace hwl::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::optional<std::string_view> Request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return std::string_view(v);
  return std::nullopt;
}

unsigned statusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
    case Code::kConflict:
      return 409;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kResourceExhausted:
      return 429;
    case Code::kFailedPrecondition:
      return 412;
    case Code::kUnavailable:
      return 503;
    case Code::kDeadlineExceeded:
      return 504;
    case Code::kDataLoss:
    case Code::kInternal:
      return 500;
    case Code::kBadGateway:
      return 502;
  }
  return 500;
}

Response jsonResponse(unsigned status, const boost::json::value& v) {
  Response r;
  r.status = status;
  r.body = boost::json::serialize(v);
  return r;
}

Response jsonError(unsigned status, std::string_view code, std::string_view message) {
  boost::json::object err{{"code", code}, {"message", json::validUtf8(message)}};
  Response r;
  r.status = status;
  r.body = boost::json::serialize(boost::json::object{{"error", std::move(err)}});
  return r;
}

Response errorResponse(const Error& e) {
  Response r =
      jsonError(statusFor(e.code), e.reason.empty() ? codeName(e.code) : e.reason, e.message);
  if (!e.details.empty()) {
    // Extra fields of the error object, from a JSON object the caller serialized.
    boost::system::error_code ec;
    auto extra = boost::json::parse(e.details, ec);
    if (!ec && extra.is_object()) {
      auto body = boost::json::parse(r.body).as_object();
      for (const auto& [k, v] : extra.as_object()) body["error"].as_object()[k] = v;
      r.body = boost::json::serialize(body);
    }
  }
  if (e.code == Code::kUnauthenticated)
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"hwledger\"");
  return r;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto h = crypto::unhex(s.substr(i + 1, 2));
      if (h && h->size() == 1) {
        out += *h;
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<std::optional<int64_t>> queryInt(const Request& req, const std::string& name, int64_t min,
                                        int64_t max) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::optional<int64_t>{};
  int64_t v = 0;
  const auto& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    return invalidArgument("query parameter \"" + name + "\" must be an integer");
  if (v < min || v > max)
    return invalidArgument("query parameter \"" + name + "\" must be between " +
                           std::to_string(min) + " and " + std::to_string(max));
  return std::optional<int64_t>(v);
}

Result<std::pair<std::string, uint16_t>> splitHostPort(std::string_view hp) {
  std::string host;
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':')
      return invalidArgument("address \"" + std::string(hp) + "\" is not [HOST]:PORT");
    host = std::string(hp.substr(1, close - 1));
    port = hp.substr(close + 2);
  } else {
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos)
      return invalidArgument("address \"" + std::string(hp) + "\" is not HOST:PORT");
    host = std::string(hp.substr(0, colon));
    port = hp.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5)
    return invalidArgument("address \"" + std::string(hp) + "\" is not HOST:PORT");
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return invalidArgument("port in \"" + std::string(hp) + "\" is not a number");
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p > 65535) return invalidArgument("port in \"" + std::string(hp) + "\" is out of range");
  return std::make_pair(host, static_cast<uint16_t>(p));
}

namespace {

// Strict percent-decoding: every '%' starts a two-digit hex escape.
Result<std::string> decodeStrict(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      auto h = i + 2 < s.size() ? crypto::unhex(s.substr(i + 1, 2))
                                : Result<std::string>(invalidArgument("truncated escape"));
      if (!h || h->size() != 1)
        return invalidArgument("a '%' in the request target is not followed by two hex digits");
      out += *h;
      i += 2;
      continue;
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

// A control byte (0x00-0x1F, 0x7F); tab, LF and CR are let through when `allow_line_breaks`.
bool hasControl(std::string_view s, bool allow_line_breaks = false) {
  return std::any_of(s.begin(), s.end(), [allow_line_breaks](char c) {
    auto u = static_cast<unsigned char>(c);
    if (allow_line_breaks && (c == '\t' || c == '\n' || c == '\r')) return false;
    return u < 0x20 || u == 0x7F;
  });
}

// Fills path and query from target. Only origin-form targets ("/path?query") are served. The
// decoded path is what routing and the body limit both see, so an escape may not change its
// shape: a decoded '/' (%2F), NUL or other control character is refused, as is a control
// character in a decoded query key or value.
Status parseTarget(Request& req) {
  std::string_view t = req.target;
  if (t.empty() || t.front() != '/')
    return invalidArgument("the request target must be a path starting with '/'");
  auto q = t.find('?');
  std::string_view raw_path = t.substr(0, q);
  auto path = decodeStrict(raw_path, false);
  if (!path) return path.error();
  if (hasControl(*path)) return invalidArgument("the request path holds a control character");
  if (std::count(path->begin(), path->end(), '/') !=
      std::count(raw_path.begin(), raw_path.end(), '/'))
    return invalidArgument("the request path holds an encoded '/' (%2F)");
  req.path = std::move(*path);
  if (q == std::string_view::npos) return {};
  std::string_view rest = t.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    auto eq = part.find('=');
    auto key = decodeStrict(part.substr(0, eq), true);
    if (!key) return key.error();
    auto val = eq == std::string_view::npos ? Result<std::string>(std::string())
                                            : decodeStrict(part.substr(eq + 1), true);
    if (!val) return val.error();
    // A value may carry text with line breaks (GET /v1/placements?config=<JSON>); every route
    // parses values into their types before use, and the client refuses CR/LF in any target.
    if (hasControl(*key) || hasControl(*val, /*allow_line_breaks=*/true))
      return invalidArgument("a query parameter holds a control character");
    if (!key->empty()) req.query[*key] = std::move(*val);
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return {};
}

// The handler's view of a parsed message (the body is moved out of `msg`).
// Headers (names in lower case) and body of a parsed message, into a Request whose target was
// already decoded.
void takeHeadersAndBody(bhttp::request<bhttp::string_body>& msg, Request& req) {
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  req.body = std::move(msg.body());
}

// A byte stream that is either TLS or plain TCP.
class AnyStream {
 public:
  AnyStream(tcp::socket sock, std::shared_ptr<asio::ssl::context> ctx) : ctx_(std::move(ctx)) {
    if (ctx_)
      tls_.emplace(std::move(sock), *ctx_);
    else
      plain_.emplace(std::move(sock));
  }
  PeerCert peer;  // set once the handshake verified it

  // f(stream) on whichever stream this is, so an operation is written once for TLS and plain
  // TCP. Both calls must return the same type; an asynchronous operation started with kNoThrow
  // does (the awaitable depends only on the completion signature), so
  //   co_await s.visit([&](auto& st) { return bhttp::async_write(st, res, kNoThrow); })
  // serves both.
  template <typename F>
  decltype(auto) visit(F&& f) {
    if (tls_) return f(*tls_);
    return f(*plain_);
  }

  // The TCP socket under either stream: timeouts cancel it, close() ends it.
  tcp::socket& socket() {
    return visit([](auto& st) -> tcp::socket& { return beast::get_lowest_layer(st); });
  }
  bool isTls() const { return tls_.has_value(); }
  // For what only TLS has: the handshake, its peer certificate, the TLS shutdown.
  asio::ssl::stream<tcp::socket>& tls() { return *tls_; }

  // TCP shutdown of both directions, then close; a second call does nothing.
  void close() {
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

 private:
  std::shared_ptr<asio::ssl::context> ctx_;  // kept alive while the stream uses it
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  std::optional<tcp::socket> plain_;
};

}  // namespace

struct Runtime::Impl {
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::thread_pool workers;
  std::vector<std::thread> threads;
  bool stopped = false;
  Impl(int io, int w) : workers(static_cast<size_t>(std::max(1, w))) {
    work.emplace(ioc.get_executor());
    for (int i = 0; i < std::max(1, io); ++i) threads.emplace_back([this] { ioc.run(); });
  }
};

Runtime::Runtime(int io_threads, int worker_threads)
    : impl_(std::make_unique<Impl>(io_threads, worker_threads)) {}

Runtime::~Runtime() { stop(); }

void Runtime::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->workers.join();
}

struct Server::Impl {
  ServerSettings settings;
  Handler handler;
  BodyLimit body_limit;
  std::shared_ptr<Runtime> runtime;
  bool own_runtime;
  asio::io_context& ioc;
  std::mutex ssl_mu;
  std::shared_ptr<asio::ssl::context> ssl;
  std::optional<asio::steady_timer> sweep;
  std::optional<tcp::acceptor> acceptor;
  asio::thread_pool& workers;
  bool started = false;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> streams{0};
  std::mutex conn_mu;
  std::list<std::weak_ptr<AnyStream>> conns;  // for shutdown
  std::atomic<int> in_flight{0};
  std::string bound;

  Impl(ServerSettings s, Handler h, BodyLimit b)
      : settings(std::move(s)),
        handler(std::move(h)),
        body_limit(std::move(b)),
        runtime(settings.runtime
                    ? settings.runtime
                    : std::make_shared<Runtime>(settings.io_threads, settings.worker_threads)),
        own_runtime(!settings.runtime),
        ioc(runtime->impl_->ioc),
        workers(runtime->impl_->workers) {}

  asio::awaitable<void> acceptLoop();
  void armSweep();
  bool peerAllowed(X509* cert);
  Status makeContext();
  asio::awaitable<void> session(std::shared_ptr<AnyStream> s);
};

namespace {

// Runs fn on the pool (or a thread of its own) and resumes the awaiting coroutine on `back` with
// the result. A plain function returning the awaitable (not a coroutine): GCC 12 mishandles
// lambdas with init-captures passed as coroutine arguments.
template <typename T>
auto onPool(asio::thread_pool& pool, std::function<T()> fn, asio::any_io_executor back) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [&pool, back](auto handler, std::function<T()> f) {
        asio::post(pool, [f = std::move(f), handler = std::move(handler), back]() mutable {
          T r = f();
          asio::post(back, [handler = std::move(handler), r = std::move(r)]() mutable {
            handler(std::move(r));
          });
        });
      },
      asio::use_awaitable, std::move(fn));
}

template <typename T>
auto onThread(std::function<T()> fn, asio::any_io_executor back) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [back](auto handler, std::function<T()> f) {
        std::thread([f = std::move(f), handler = std::move(handler), back]() mutable {
          T r = f();
          asio::post(back, [handler = std::move(handler), r = std::move(r)]() mutable {
            handler(std::move(r));
          });
        }).detach();
      },
      asio::use_awaitable, std::move(fn));
}

// Cancels the socket's pending operations when it fires; the session then decides what to send.
class Deadline {
 public:
  Deadline(const asio::any_io_executor& ex, tcp::socket& sock) : timer_(ex), sock_(sock) {}
  void arm(std::chrono::milliseconds d) {
    fired_ = false;
    timer_.expires_after(d);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) {
        fired_ = true;
        beast::error_code ignored;
        sock_.cancel(ignored);
      }
    });
  }
  void disarm() { timer_.cancel(); }
  [[nodiscard]] bool fired() const { return fired_; }

 private:
  asio::steady_timer timer_;
  tcp::socket& sock_;
  bool fired_ = false;
};

// A lingering close: reads and discards what the client still sends (the rest of a refused body)
// until it closes, falls silent for kLingerIdle, or kLingerTotal has passed, so that the refusal
// already written reaches it.
constexpr std::chrono::milliseconds kLingerTotal{5000};
constexpr std::chrono::milliseconds kLingerIdle{1000};

asio::awaitable<void> drainUntilClosed(AnyStream& s, Deadline& deadline) {
  const auto until = std::chrono::steady_clock::now() + kLingerTotal;
  std::array<char, 16 * 1024> scratch{};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) co_return;
    deadline.arm(std::min(left, kLingerIdle));
    auto [ec, n] = co_await s.visit(
        [&](auto& st) { return st.async_read_some(asio::buffer(scratch), kNoThrow); });
    deadline.disarm();
    if (ec) co_return;
  }
}

class ChunkWriter final : public StreamWriter {
 public:
  ChunkWriter(AnyStream& s, asio::any_io_executor ex, std::atomic<bool>& stopping,
              std::chrono::milliseconds write_timeout)
      : s_(s), ex_(std::move(ex)), stopping_(stopping), timeout_(write_timeout) {}

  bool write(std::string_view chunk) override {
    if (gone_ || stopping_) return false;
    if (chunk.empty()) return true;
    auto done = std::make_shared<std::promise<bool>>();
    auto fut = done->get_future();
    auto data = std::make_shared<std::string>(chunk);
    asio::post(ex_, [this, done, data] {
      auto buf = bhttp::make_chunk(asio::buffer(*data));
      auto cb = [done, data](beast::error_code ec, size_t) { done->set_value(!ec); };
      s_.visit([&](auto& st) { asio::async_write(st, buf, cb); });
    });
    if (fut.wait_for(timeout_) != std::future_status::ready) {
      // A client that stops reading is dropped.
      asio::post(ex_, [this] {
        beast::error_code ec;
        s_.socket().close(ec);
      });
      fut.wait();
      gone_ = true;
      return false;
    }
    if (!fut.get()) gone_ = true;
    return !gone_;
  }
  [[nodiscard]] bool stopping() const override { return gone_ || stopping_; }
  // The client closed or reset the connection: writes fail from now on.
  void markGone() { gone_ = true; }

 private:
  AnyStream& s_;
  asio::any_io_executor ex_;
  std::atomic<bool>& stopping_;
  std::chrono::milliseconds timeout_;
  std::atomic<bool> gone_{false};
};

// The end of a peer watch: the session waits on `done` (cancelled by the watch as it ends).
struct PeerWatch {
  explicit PeerWatch(const asio::any_io_executor& ex) : done(ex) {
    done.expires_at(asio::steady_timer::time_point::max());
  }
  asio::steady_timer done;
  bool finished = false;
};

// Reads the connection while a handler streams to it. The client sends nothing more (the
// response closes the connection), so the read ends when the client closes or resets the
// connection, or when the session cancels it; the writer then reports stopping() at once,
// instead of only at its next write.
asio::awaitable<void> watchPeer(std::shared_ptr<AnyStream> s, std::shared_ptr<ChunkWriter> w,
                                std::shared_ptr<PeerWatch> watch) {
  std::array<char, 512> buf{};
  for (;;) {
    beast::error_code ec;
    size_t n = 0;
    std::tie(ec, n) = co_await s->visit(
        [&](auto& st) { return st.async_read_some(asio::buffer(buf), kNoThrow); });
    if (ec) break;  // bytes after the request (a pipelined one) are dropped
  }
  w->markGone();
  watch->finished = true;
  watch->done.cancel();
}

PeerCert peerOf(SSL* ssl) {
  PeerCert pc;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return pc;
  tls::describe(cert, pc);
  return pc;
}

}  // namespace

asio::awaitable<void> Server::Impl::acceptLoop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor->async_accept(asio::make_strand(ioc), kNoThrow);
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. EMFILE: keep serving the connections we have
    }
    // Responses go out in several writes (header, body, TLS records): without TCP_NODELAY the
    // last one waits for the client's delayed ACK (40 ms on Linux) on every large answer.
    beast::error_code nd;
    sock.set_option(tcp::no_delay(true), nd);
    std::shared_ptr<asio::ssl::context> ctx;
    if (!settings.plain_http) {
      std::lock_guard lk(ssl_mu);
      ctx = ssl;
    }
    auto s = std::make_shared<AnyStream>(std::move(sock), std::move(ctx));
    {
      std::lock_guard lk(conn_mu);
      conns.remove_if([](const auto& w) { return w.expired(); });
      conns.push_back(s);
    }
    auto ex = s->socket().get_executor();
    asio::co_spawn(ex, session(std::move(s)), asio::detached);
  }
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<AnyStream> s) {
  auto ex = co_await asio::this_coro::executor;
  Deadline deadline(ex, s->socket());
  beast::error_code ec;
  std::string remote;
  {
    auto ep = s->socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string();
  }
  PeerCert peer;
  if (s->isTls()) {
    deadline.arm(settings.handshake_timeout);
    std::tie(ec) = co_await s->tls().async_handshake(asio::ssl::stream_base::server, kNoThrow);
    deadline.disarm();
    if (ec) co_return;  // refused before any HTTP handling (wrong cert, TLS 1.2, timeout)
    peer = peerOf(s->tls().native_handle());
    s->peer = peer;
  }

  beast::flat_buffer buffer;
  bool first = true;
  // Set when a refusal leaves part of the request's body unread: closing at once would make the
  // kernel answer the client's next segments with a reset, which can discard the refusal before
  // the client reads it.
  bool unread_body = false;
  auto send = [&](bhttp::response<bhttp::string_body>& res) -> asio::awaitable<bool> {
    res.prepare_payload();
    deadline.arm(settings.write_timeout);
    size_t n = 0;
    std::tie(ec, n) =
        co_await s->visit([&](auto& st) { return bhttp::async_write(st, res, kNoThrow); });
    deadline.disarm();
    co_return !ec;
  };
  auto sendError = [&](unsigned status, std::string_view code, std::string_view msg,
                       unsigned version) -> asio::awaitable<void> {
    Response r = jsonError(status, code, msg);
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), version};
    res.set(bhttp::field::server, settings.server_name);
    res.set(bhttp::field::content_type, r.content_type);
    res.set(bhttp::field::connection, "close");
    res.keep_alive(false);
    res.body() = std::move(r.body);
    co_await send(res);
  };

  while (!stopping) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(settings.header_limit));
    // The body limit depends on the route; it is set once the headers are in.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    // A keep-alive connection may stay idle; once a request starts, its headers must arrive in
    // time.
    if (!first && buffer.size() == 0) {
      deadline.arm(settings.idle_timeout);
      size_t n = 0;
      std::tie(ec, n) = co_await s->visit(
          [&](auto& st) { return st.async_read_some(buffer.prepare(1024), kNoThrow); });
      deadline.disarm();
      if (ec) break;
      buffer.commit(n);
    }
    first = false;
    deadline.arm(settings.header_timeout);
    size_t n = 0;
    std::tie(ec, n) = co_await s->visit(
        [&](auto& st) { return bhttp::async_read_header(st, buffer, parser, kNoThrow); });
    deadline.disarm();
    if (ec) {
      if (deadline.fired() && parser.got_some())
        co_await sendError(408, "request_timeout", "request headers not received in time", 11);
      else if (ec == bhttp::error::header_limit)
        co_await sendError(431, "header_too_large", "request headers exceed the limit", 11);
      else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
               ec != asio::ssl::error::stream_truncated && !deadline.fired() && parser.got_some()) {
        // A named local, not a temporary across the co_await (GCC 12 may destroy those twice).
        const std::string why = "malformed HTTP request: " + ec.message();
        co_await sendError(400, "bad_request", why, 11);
      }
      break;
    }
    auto& hdr = parser.get();
    // The target is decoded once, here: the body limit is looked up on the very path the handler
    // will route.
    Request req;
    req.method = std::string(hdr.method_string());
    req.target = std::string(hdr.target());
    if (auto st = parseTarget(req); !st) {
      const std::string why = st.error().message;
      co_await sendError(400, "bad_request", why, hdr.version());
      break;
    }
    // A request whose Transfer-Encoding does not end in chunked has no length we could trust
    // (RFC 9112 6.3): refused, rather than read as a body-less request followed by its body.
    if (hdr.find(bhttp::field::transfer_encoding) != hdr.end() && !parser.chunked()) {
      co_await sendError(400, "bad_request", "the request's transfer coding is not chunked",
                         hdr.version());
      break;
    }
    size_t limit = body_limit ? body_limit(std::string_view(req.method), std::string_view(req.path))
                              : settings.body_limit;
    parser.body_limit(limit);
    const std::string too_large =
        "request body exceeds the limit of " + std::to_string(limit) + " bytes";
    if (auto cl = parser.content_length(); cl && *cl > limit) {
      co_await sendError(413, "body_too_large", too_large, hdr.version());
      unread_body = true;
      break;
    }
    if (!parser.is_done()) {
      deadline.arm(settings.body_timeout);
      std::tie(ec, n) = co_await s->visit(
          [&](auto& st) { return bhttp::async_read(st, buffer, parser, kNoThrow); });
      deadline.disarm();
      if (ec) {
        if (ec == bhttp::error::body_limit) {
          co_await sendError(413, "body_too_large", too_large, hdr.version());
          unread_body = true;
        } else if (deadline.fired())
          co_await sendError(408, "request_timeout", "request body not received in time",
                             hdr.version());
        break;
      }
    }

    // The peer may have been revoked since the handshake (or this is a resumed session).
    if (peer.present && settings.peer_allowed && !settings.peer_allowed(peer)) break;
    auto msg = parser.release();
    takeHeadersAndBody(msg, req);
    req.remote_addr = remote;
    req.peer = peer;
    bool keep_alive = msg.keep_alive();
    unsigned version = msg.version();

    ++in_flight;
    auto reqp = std::make_shared<Request>(std::move(req));
    std::function<Response()> job = [this, reqp]() {
      try {
        return handler(*reqp);
      } catch (const std::exception& e) {
        return jsonError(500, "internal", e.what());
      }
    };
    Response r = co_await onPool<Response>(workers, std::move(job), ex);
    --in_flight;

    if (r.stream) {
      if (streams.load() >= settings.max_streams) {
        r = jsonError(503, "unavailable", "too many open streams");
      } else {
        bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(r.status), version};
        res.set(bhttp::field::server, settings.server_name);
        res.set(bhttp::field::content_type, r.content_type);
        for (auto& [k, v] : r.headers) res.set(k, v);
        res.chunked(true);
        res.keep_alive(false);
        bhttp::response_serializer<bhttp::empty_body> sr{res};
        deadline.arm(settings.write_timeout);
        std::tie(ec, n) = co_await s->visit(
            [&](auto& st) { return bhttp::async_write_header(st, sr, kNoThrow); });
        deadline.disarm();
        if (ec) break;
        ++streams;
        auto writer = std::make_shared<ChunkWriter>(*s, ex, stopping, settings.write_timeout);
        auto watch = std::make_shared<PeerWatch>(ex);
        asio::co_spawn(ex, watchPeer(s, writer, watch), asio::detached);
        auto streamfn = std::make_shared<std::function<void(StreamWriter&)>>(std::move(r.stream));
        std::function<bool()> job = [streamfn, writer, s]() {
          (*streamfn)(*writer);
          return true;
        };
        co_await onThread<bool>(std::move(job), ex);
        --streams;
        auto last = bhttp::make_chunk_last();
        deadline.arm(settings.write_timeout);
        std::tie(ec, n) =
            co_await s->visit([&](auto& st) { return asio::async_write(st, last, kNoThrow); });
        deadline.disarm();
        // The watch's read must be over before the TLS shutdown below reads and writes.
        if (!watch->finished) {
          beast::error_code ignored;
          s->socket().cancel(ignored);
          std::tie(ignored) = co_await watch->done.async_wait(kNoThrow);
        }
        break;
      }
    }

    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, settings.server_name);
    res.set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res.set(k, v);
    res.body() = std::move(r.body);
    res.keep_alive(keep_alive && !stopping);
    if (!co_await send(res)) break;
    if (!res.keep_alive()) break;
  }
  if (unread_body) co_await drainUntilClosed(*s, deadline);
  if (s->isTls() && !ec) {
    deadline.arm(std::chrono::milliseconds(1000));
    std::tie(ec) = co_await s->tls().async_shutdown(kNoThrow);
    deadline.disarm();
  }
  s->close();
}

Server::Server(ServerSettings settings, Handler handler, BodyLimit body_limit)
    : impl_(
          std::make_unique<Impl>(std::move(settings), std::move(handler), std::move(body_limit))) {}

Server::~Server() { stop(); }

namespace {
// Our own ex_data slot on the SSL_CTX (Asio keeps its verify callback in the app_data slot).
int serverExIndex() {
  static const int kIndex = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return kIndex;
}

// OpenSSL's verify callback: the chain is checked by OpenSSL, the leaf by peer_allowed.
int verifyLeaf(int preverify_ok, X509_STORE_CTX* store) noexcept {
  if (preverify_ok != 1) return preverify_ok;
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* impl =
      static_cast<Server::Impl*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), serverExIndex()));
  if (impl == nullptr) return 1;
  return impl->peerAllowed(X509_STORE_CTX_get_current_cert(store)) ? 1 : 0;
}
}  // namespace

bool Server::Impl::peerAllowed(X509* cert) {
  if (!settings.peer_allowed) return true;
  PeerCert pc;
  tls::describe(cert, pc);
  try {
    return settings.peer_allowed(pc);
  } catch (...) {
    return false;
  }
}

Status Server::Impl::makeContext() {
  auto ctx = tls::makeServerContext(settings.cert_file, settings.key_file, settings.client_ca_file,
                                    settings.client_cert);
  if (!ctx) return ctx.error();
  auto shared = std::make_shared<asio::ssl::context>(std::move(*ctx));
  SSL_CTX_set_ex_data(shared->native_handle(), serverExIndex(), this);
  if (settings.client_cert != ClientCertMode::kNone) {
    int mode = SSL_CTX_get_verify_mode(shared->native_handle());
    SSL_CTX_set_verify(shared->native_handle(), mode, &verifyLeaf);
  }
  std::lock_guard lk(ssl_mu);
  ssl = std::move(shared);
  return {};
}

void Server::Impl::armSweep() {
  sweep->expires_after(std::chrono::seconds(1));
  sweep->async_wait([this](beast::error_code ec) {
    if (ec || stopping) return;
    std::vector<std::shared_ptr<AnyStream>> doomed;
    {
      std::lock_guard lk(conn_mu);
      for (auto& w : conns)
        if (auto s = w.lock(); s && s->peer.present && !settings.peer_allowed(s->peer))
          doomed.push_back(s);
    }
    for (auto& s : doomed) asio::post(s->socket().get_executor(), [s] { s->close(); });
    armSweep();
  });
}

Status Server::reloadCertificate() {
  if (impl_->settings.plain_http) return {};
  return impl_->makeContext();
}

Status Server::start() {
  auto& st = impl_->settings;
  if (!st.plain_http) {
    if (auto s = impl_->makeContext(); !s) return s;
  }
  auto hp = splitHostPort(st.listen);
  if (!hp) return hp.error();
  beast::error_code ec;
  auto addr = asio::ip::make_address(hp->first, ec);
  if (ec) {
    if (hp->first == "localhost")
      addr = asio::ip::make_address("127.0.0.1");
    else
      return invalidArgument("listen address \"" + hp->first + "\" is not an IP address");
  }
  tcp::endpoint ep(addr, hp->second);
  impl_->acceptor.emplace(impl_->ioc);
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(ep, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on " + st.listen + ": " + ec.message());
  auto local = impl_->acceptor->local_endpoint();
  impl_->bound = local.address().is_v6()
                     ? "[" + local.address().to_string() + "]:" + std::to_string(local.port())
                     : local.address().to_string() + ":" + std::to_string(local.port());
  asio::co_spawn(impl_->ioc, impl_->acceptLoop(), asio::detached);
  if (st.peer_allowed && !st.plain_http) {
    impl_->sweep.emplace(impl_->ioc);
    impl_->armSweep();
  }
  impl_->started = true;
  return {};
}

std::string Server::boundAddress() const { return impl_->bound; }
uint16_t Server::port() const {
  auto hp = splitHostPort(impl_->bound);
  return hp ? hp->second : 0;
}

void Server::stop() {
  if (!impl_ || !impl_->started || impl_->runtime->impl_->stopped) return;
  impl_->started = false;
  impl_->stopping = true;
  asio::post(impl_->ioc, [this] {
    beast::error_code ec;
    if (impl_->acceptor) impl_->acceptor->close(ec);
    if (impl_->sweep) impl_->sweep->cancel();
  });
  // Let handlers already running finish and send their responses.
  for (int i = 0; i < 300 && impl_->in_flight.load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard lk(impl_->conn_mu);
    for (auto& w : impl_->conns) {
      if (auto s = w.lock()) {
        asio::post(s->socket().get_executor(), [s] {
          beast::error_code ec;
          s->socket().cancel(ec);
        });
      }
    }
  }
  for (int i = 0; i < 300 && impl_->streams.load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (impl_->own_runtime) impl_->runtime->stop();
}

// One request from a byte string, with the parser settings of a connection (see http_parse.hpp).
Result<Request> parseRequest(std::string_view raw, size_t header_limit, size_t body_limit) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<size_t>(header_limit, std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(body_limit);
  parser.eager(true);
  beast::error_code ec;
  size_t off = 0;
  while (!parser.is_done() && off < raw.size()) {
    size_t n = parser.put(asio::buffer(raw.data() + off, raw.size() - off), ec);
    off += n;
    if (ec || n == 0) break;
  }
  if (ec == bhttp::error::header_limit)
    return Error{Code::kResourceExhausted, "request headers exceed the limit"};
  if (ec == bhttp::error::body_limit)
    return Error{Code::kResourceExhausted,
                 "request body exceeds the limit of " + std::to_string(body_limit) + " bytes"};
  if (ec && ec != bhttp::error::need_more)
    return invalidArgument("malformed HTTP request: " + ec.message());
  if (!parser.is_done()) return invalidArgument("incomplete HTTP request");
  auto msg = parser.release();
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  if (auto st = parseTarget(req); !st) return st.error();
  if (msg.find(bhttp::field::transfer_encoding) != msg.end() && !msg.chunked())
    return invalidArgument("the request's transfer coding is not chunked");
  takeHeadersAndBody(msg, req);
  return req;
}

}  // namespace hwl::http
