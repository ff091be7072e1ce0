// A blocking HTTPS client (CLI, agent enrollment, the server's calls to agents): one keep-alive
// connection, timeouts, certificate verification against a given CA, optional client
// certificate. Each step is an asynchronous Beast operation run to completion on a private
// io_context, because Beast applies stream timeouts to asynchronous operations only.
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>

#include "hwl/http.hpp"
#include "hwl/pki.hpp"
#include "hwl/tls.hpp"

namespace hwl::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

bool isTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Printable ASCII and (in values) HTAB; the request line and header block have no other bytes.
std::string visible(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 80)) {
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      static const char* kHex = "0123456789ABCDEF";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The host of a base URL goes into the Host header: a DNS name or an IP literal only.
bool validHost(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (unsigned char c : h)
    if (!(std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_' || c == ':')) return false;
  return true;
}

}  // namespace

Status checkMethod(std::string_view method) {
  if (method.empty() || method.size() > 16 || bhttp::string_to_verb(method) == bhttp::verb::unknown)
    return invalidArgument("HTTP method \"" + visible(method) + "\" is not a known method");
  return {};
}

Status checkTarget(std::string_view target) {
  if (target.empty() || target.front() != '/')
    return invalidArgument("request target \"" + visible(target) + "\" does not start with '/'");
  if (target.size() > 8 * 1024) return invalidArgument("request target is longer than 8 KiB");
  for (unsigned char c : target)
    if (c <= 0x20 || c >= 0x7F)
      return invalidArgument("request target \"" + visible(target) +
                             "\" holds a control character, a space or a non-ASCII byte");
  return {};
}

Status checkHeader(std::string_view name, std::string_view value) {
  if (name.empty() || !std::all_of(name.begin(), name.end(),
                                   [](char c) { return isTchar(static_cast<unsigned char>(c)); }))
    return invalidArgument("header name \"" + visible(name) + "\" is not a token");
  for (unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7F)
      return invalidArgument("the value of header " + std::string(name) +
                             " holds CR, LF, NUL or another control character");
  return {};
}

struct Client::Impl {
  ClientSettings settings;
  bool tls = true;
  std::string host;
  std::string port;
  asio::io_context ioc;
  std::optional<asio::ssl::context> ctx;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream;
  std::optional<beast::tcp_stream> plain_stream;
  beast::flat_buffer buffer;
  std::string peer_pem;
  Status init_status;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls_stream) : *plain_stream; }
  bool connected() { return (tls ? tls_stream.has_value() : plain_stream.has_value()); }
  void reset() {
    if (tls_stream) {
      beast::error_code ec;
      beast::get_lowest_layer(*tls_stream).socket().close(ec);
    }
    tls_stream.reset();
    plain_stream.reset();
    buffer.clear();
  }

  // Runs one asynchronous operation to completion; the stream's expiry bounds it.
  template <typename Start>
  beast::error_code await(Start&& start) {
    beast::error_code result = asio::error::timed_out;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  Status connect() {
    if (!init_status) return init_status;
    reset();
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    tcp::resolver::results_type results;
    ec = await([&](auto h) {
      resolver.async_resolve(
          host, port, [h, &results](beast::error_code e, tcp::resolver::results_type r) mutable {
            results = std::move(r);
            h(e);
          });
    });
    if (ec) return unavailable("cannot resolve " + host + ": " + ec.message());
    if (tls) {
      tls_stream.emplace(ioc, *ctx);
      auto* ssl = tls_stream->native_handle();
      asio::ip::make_address(host, ec);
      bool is_ip = !ec;
      if (!is_ip) SSL_set_tlsext_host_name(ssl, host.c_str());
      if (settings.verify_hostname && !settings.insecure_skip_verify)
        tls_stream->set_verify_callback(asio::ssl::host_name_verification(host));
    } else {
      plain_stream.emplace(ioc);
    }
    lowest().expires_after(settings.timeout);
    ec = await([&](auto h) { lowest().async_connect(results, h); });
    if (ec) {
      reset();
      return unavailable("cannot connect to " + host + ":" + port + ": " + ec.message());
    }
    // A request is written in parts (header, body): not held back for the server's ACK.
    boost::system::error_code nd;
    lowest().socket().set_option(asio::ip::tcp::no_delay(true), nd);
    if (tls) {
      lowest().expires_after(settings.timeout);
      ec = await([&](auto h) { tls_stream->async_handshake(asio::ssl::stream_base::client, h); });
      if (ec) {
        std::string why = ec.message();
        long vr = SSL_get_verify_result(tls_stream->native_handle());
        if (vr != X509_V_OK) why = X509_verify_cert_error_string(vr);
        reset();
        return unavailable("TLS handshake with " + host + ":" + port + " failed: " + why);
      }
      X509* peer = SSL_get0_peer_certificate(tls_stream->native_handle());
      peer_pem = peer != nullptr ? pki::certPem(peer) : "";
      if (!settings.expected_uri.empty()) {
        PeerCert pc;
        if (peer != nullptr) tls::describe(peer, pc);
        if (std::find(pc.uris.begin(), pc.uris.end(), settings.expected_uri) == pc.uris.end()) {
          reset();
          return unavailable("the server at " + host + ":" + port +
                             " does not present the identity " + settings.expected_uri);
        }
      }
    }
    return {};
  }

  template <typename Msg>
  beast::error_code write(Msg& m) {
    lowest().expires_after(settings.timeout);
    return await([&](auto h) {
      if (tls)
        bhttp::async_write(*tls_stream, m, h);
      else
        bhttp::async_write(*plain_stream, m, h);
    });
  }
  template <typename Parser>
  beast::error_code readHeader(Parser& p) {
    lowest().expires_after(settings.timeout);
    return await([&](auto h) {
      if (tls)
        bhttp::async_read_header(*tls_stream, buffer, p, h);
      else
        bhttp::async_read_header(*plain_stream, buffer, p, h);
    });
  }
  template <typename Parser>
  beast::error_code readSome(Parser& p, bool streaming = false) {
    lowest().expires_after(streaming ? settings.stream_idle_timeout : settings.timeout);
    return await([&](auto h) {
      if (tls)
        bhttp::async_read_some(*tls_stream, buffer, p, h);
      else
        bhttp::async_read_some(*plain_stream, buffer, p, h);
    });
  }

  // A streaming read that also wakes every 200 ms to ask `cancelled`; once it answers true the
  // read is abandoned (operation_aborted). The idle timeout still bounds the whole wait.
  template <typename Parser>
  beast::error_code readSomeWatched(Parser& p, const std::function<bool()>& cancelled) {
    lowest().expires_after(settings.stream_idle_timeout);
    beast::error_code result = asio::error::timed_out;
    bool done = false;
    asio::steady_timer tick(ioc);
    std::function<void()> arm = [&] {
      tick.expires_after(std::chrono::milliseconds(200));
      tick.async_wait([&](beast::error_code ec) {
        if (ec || done) return;
        if (cancelled()) {
          lowest().cancel();
          return;
        }
        arm();
      });
    };
    auto on_read = [&](beast::error_code ec, size_t) {
      done = true;
      result = ec;
      tick.cancel();
    };
    if (tls)
      bhttp::async_read_some(*tls_stream, buffer, p, on_read);
    else
      bhttp::async_read_some(*plain_stream, buffer, p, on_read);
    arm();
    ioc.restart();
    ioc.run();
    return result;
  }

  // Refuses anything that would let a caller's value change the request's framing.
  static Status check(std::string_view method, std::string_view target,
                      const std::vector<std::pair<std::string, std::string>>& h) {
    if (auto s = checkMethod(method); !s) return s;
    if (auto s = checkTarget(target); !s) return s;
    for (const auto& [k, v] : h)
      if (auto s = checkHeader(k, v); !s) return s;
    return {};
  }

  bhttp::request<bhttp::string_body> build(
      std::string_view method, std::string_view target, std::string_view body,
      const std::vector<std::pair<std::string, std::string>>& h) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::user_agent, "hwledger");
    for (const auto& [k, v] : h) req.set(k, v);
    if (!body.empty() || method == "POST" || method == "PUT") {
      req.body() = std::string(body);
      if (req.find(bhttp::field::content_type) == req.end())
        req.set(bhttp::field::content_type, "application/json");
    }
    req.prepare_payload();
    req.keep_alive(true);
    return req;
  }
};

Client::Client(ClientSettings settings) : impl_(std::make_unique<Impl>()) {
  impl_->settings = std::move(settings);
  std::string_view url = impl_->settings.base_url;
  if (url.starts_with("https://")) {
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    impl_->tls = false;
    url.remove_prefix(7);
  } else {
    impl_->init_status =
        invalidArgument("server URL \"" + impl_->settings.base_url + "\" must start with https://");
    return;
  }
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  if (url.find_first_of("/?#@") != std::string_view::npos) {
    impl_->init_status = invalidArgument("server URL \"" + visible(impl_->settings.base_url) +
                                         "\" must be https://HOST:PORT and nothing more");
    return;
  }
  auto hp = splitHostPort(url);
  if (!hp) {
    if (url.find(':') == std::string_view::npos && !url.empty()) {
      impl_->host = std::string(url);
      impl_->port = impl_->tls ? "443" : "80";
    } else {
      impl_->init_status = hp.error();
      return;
    }
  } else {
    impl_->host = hp->first;
    impl_->port = std::to_string(hp->second);
  }
  if (!validHost(impl_->host)) {
    impl_->init_status = invalidArgument("server URL \"" + visible(impl_->settings.base_url) +
                                         "\" does not name a valid host");
    return;
  }
  if (impl_->tls) {
    auto ctx = tls::makeClientContext(impl_->settings);
    if (!ctx)
      impl_->init_status = ctx.error();
    else
      impl_->ctx.emplace(std::move(*ctx));
  }
}

Client::~Client() = default;

std::string Client::peerCertificatePem() const { return impl_->peer_pem; }

Result<ClientResponse> Client::request(std::string_view method, std::string_view target,
                                       std::string_view body,
                                       const std::vector<std::pair<std::string, std::string>>& h) {
  if (auto s = Impl::check(method, target, h); !s) return s.error();
  auto req = impl_->build(method, target, body, h);
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->connected();
    if (!reused) {
      auto st = impl_->connect();
      if (!st) return st.error();
    }
    auto ec = impl_->write(req);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64ull << 20);
    if (!ec) {
      ec = impl_->readHeader(parser);
      while (!ec && !parser.is_done()) ec = impl_->readSome(parser);
    }
    if (ec) {
      impl_->reset();
      if (reused && attempt == 0) continue;  // the server closed an idle keep-alive connection
      return unavailable("request to " + impl_->host + ":" + impl_->port +
                         " failed: " + ec.message());
    }
    auto res = parser.release();
    ClientResponse out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    for (const auto& f : res)
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    if (!res.keep_alive()) impl_->reset();
    return out;
  }
  return unavailable("request failed");
}

Result<unsigned> Client::stream(std::string_view method, std::string_view target,
                                const std::vector<std::pair<std::string, std::string>>& h,
                                const std::function<bool(std::string_view)>& on_data,
                                const std::function<bool()>& cancelled) {
  if (auto s = Impl::check(method, target, h); !s) return s.error();
  auto req = impl_->build(method, target, {}, h);
  auto st = impl_->connect();
  if (!st) return st.error();
  auto ec = impl_->write(req);
  if (ec) return unavailable("request failed: " + ec.message());
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);
  ec = impl_->readHeader(parser);
  if (ec) return unavailable("reading the response failed: " + ec.message());
  unsigned status = parser.get().result_int();
  char buf[16384];
  while (!parser.is_done()) {
    parser.get().body().data = buf;
    parser.get().body().size = sizeof buf;
    ec = cancelled ? impl_->readSomeWatched(parser, cancelled) : impl_->readSome(parser, true);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec && cancelled && cancelled()) break;  // the caller stopped waiting
    if (ec) {
      impl_->reset();
      return unavailable("stream ended: " + ec.message());
    }
    size_t n = sizeof buf - parser.get().body().size;
    if (n > 0 && !on_data(std::string_view(buf, n))) break;
  }
  impl_->reset();
  return status;
}

}  // namespace hwl::http
