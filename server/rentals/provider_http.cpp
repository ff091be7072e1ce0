#include "rentals/provider_http.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <ctime>
#include <random>

#include "hwl/crypto.hpp"
#include "hwl/http.hpp"

namespace hwl::rentals {

namespace {

bool loopbackLiteral(const std::string& host) {
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    static const in6_addr kLoop = IN6ADDR_LOOPBACK_INIT;
    return std::equal(std::begin(v6.s6_addr), std::end(v6.s6_addr), std::begin(kLoop.s6_addr));
  }
  return false;
}

bool hostChars(std::string_view h) {
  return !h.empty() && h.size() <= 253 && std::all_of(h.begin(), h.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
  });
}

}  // namespace

std::string BaseUrl::origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return std::string(tls ? "https://" : "http://") + h + ":" + std::to_string(port);
}

Result<BaseUrl> parseBaseUrl(std::string_view url) {
  auto bad = [&](const std::string& why) { return invalidArgument("provider base URL: " + why); };
  BaseUrl out;
  if (url.starts_with("https://")) {
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    out.tls = false;
    url.remove_prefix(7);
  } else {
    return bad("must start with https:// (or http:// to a loopback address)");
  }
  auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
  if (authority.empty()) return bad("names no host");
  if (authority.find('@') != std::string_view::npos) return bad("must not carry user info");
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed '['");
    host = authority.substr(1, close - 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("has text after the IPv6 address");
      port = rest.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (!hostChars(host)) return bad("does not name a valid host");
  out.host = std::string(host);
  if (port.empty()) {
    out.port = out.tls ? 443 : 80;
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        }))
      return bad("has a bad port");
    int p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) return bad("has a port outside 1-65535");
    out.port = static_cast<uint16_t>(p);
  }
  if (!out.tls && !loopbackLiteral(out.host))
    return bad("plain http is allowed only to a loopback address (127.0.0.0/8 or [::1])");
  for (char c : path) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '~' ||
          c == '/' || c == '-'))
      return bad("path may hold only letters, digits and . _ ~ / -");
  }
  if (path.find("/../") != std::string_view::npos || path.ends_with("/..") ||
      path.find("/./") != std::string_view::npos)
    return bad("path must not hold dot segments");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.prefix = std::string(path);
  return out;
}

Status checkApiKey(std::string_view key) {
  if (key.empty()) return invalidArgument("API key is empty");
  if (key.size() > 512) return invalidArgument("API key is longer than 512 bytes");
  for (char c : key) {
    if (c <= ' ' || c >= 0x7f)
      return invalidArgument("API key may hold only printable ASCII without spaces");
  }
  return {};
}

std::optional<std::chrono::milliseconds> parseRetryAfter(
    std::string_view v, std::chrono::system_clock::time_point now) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (v.size() > 9) return std::chrono::milliseconds(999'999'999'000LL);
    return std::chrono::milliseconds(std::stoll(std::string(v)) * 1000);
  }
  std::tm tm{};
  std::string s(v);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
  return std::max(d, std::chrono::milliseconds(0));
}

std::optional<std::string> jsonString(const boost::json::value& obj, std::string_view key) {
  const auto* o = obj.if_object();
  if (o == nullptr) return std::nullopt;
  const auto* v = o->if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

std::optional<double> jsonNumber(const boost::json::value& obj, std::string_view key) {
  const auto* o = obj.if_object();
  if (o == nullptr) return std::nullopt;
  const auto* v = o->if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nullopt;
}

std::optional<int64_t> jsonInt(const boost::json::value& obj, std::string_view key) {
  const auto* o = obj.if_object();
  if (o == nullptr) return std::nullopt;
  const auto* v = o->if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(v->as_uint64());
  if (v->is_double() && v->as_double() >= -9e15 && v->as_double() <= 9e15 &&
      v->as_double() == static_cast<double>(static_cast<int64_t>(v->as_double())))
    return static_cast<int64_t>(v->as_double());
  return std::nullopt;
}

ProviderHttp::ProviderHttp(std::string provider, Endpoint endpoint)
    : provider_(std::move(provider)), ep_(std::move(endpoint)) {
  auto u = parseBaseUrl(ep_.base_url);
  if (!u) {
    init_ = u.error();
    return;
  }
  url_ = std::move(*u);
  if (auto k = checkApiKey(ep_.api_key); !k) {
    init_ = invalidArgument(provider_ + ": " + k.error().message);
    return;
  }
  auth_header_ = ep_.auth == AuthStyle::kBearer ? "Bearer " + ep_.api_key
                                                : "Basic " + crypto::base64(ep_.api_key + ":");
  if (ep_.max_attempts < 1) ep_.max_attempts = 1;
}

ProviderHttp::~ProviderHttp() = default;

std::string ProviderHttp::clean(std::string_view text) const {
  std::string s(text.substr(0, 2000));
  if (!ep_.api_key.empty()) {
    for (size_t at = s.find(ep_.api_key); at != std::string::npos; at = s.find(ep_.api_key))
      s.replace(at, ep_.api_key.size(), "[redacted]");
  }
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= 300) {
      out += "…";
      break;
    }
    out.push_back(c < 0x20 || c == 0x7f || c >= 0x80 ? ' ' : static_cast<char>(c));
  }
  return out;
}

void ProviderHttp::cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  cv_.notify_all();
}

bool ProviderHttp::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return cancelled_; });
  return !cancelled_;
}

std::chrono::milliseconds ProviderHttp::backoff(int attempt) {
  // Full jitter: a uniform wait in [0, min(max, initial * 2^attempt)].
  int64_t cap = ep_.backoff_initial.count();
  for (int i = 0; i < attempt && cap < ep_.backoff_max.count(); ++i) cap *= 2;
  cap = std::min<int64_t>(cap, ep_.backoff_max.count());
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> d(cap / 4, std::max<int64_t>(cap, 1));
  return std::chrono::milliseconds(d(rng));
}

std::unique_ptr<http::Client> ProviderHttp::takeClient() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  http::ClientSettings cs;
  cs.base_url = url_.origin();
  cs.ca_file = ep_.ca_file;
  cs.timeout = ep_.timeout;
  return std::make_unique<http::Client>(std::move(cs));
}

void ProviderHttp::giveBack(std::unique_ptr<http::Client> c) {
  std::lock_guard lock(mu_);
  if (idle_.size() < 4) idle_.push_back(std::move(c));
}

Result<ProviderHttp::Reply> ProviderHttp::once(std::string_view method, const std::string& target,
                                               const std::string& body) {
  auto client = takeClient();
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Authorization", auth_header_},
      {"Accept", "application/json"},
      {"User-Agent", "hwledger"},
  };
  auto r = client->request(method, target, body, headers);
  if (!r) {
    // The client's message names the URL and the failure, never a header: still, clean it.
    return Error{
        r.error().code == Code::kInvalidArgument ? Code::kInvalidArgument : Code::kUnavailable,
        provider_ + ": no answer from the API: " + clean(r.error().message),
        std::string(kReasonUnreachable),
        {}};
  }
  giveBack(std::move(client));
  Reply out;
  out.status = r->status;
  out.body = std::move(r->body);
  for (const auto& [k, v] : r->headers) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "retry-after")
      out.retry_after = parseRetryAfter(v, std::chrono::system_clock::now());
  }
  return out;
}

Result<boost::json::value> ProviderHttp::call(std::string_view method,
                                              std::string_view path_and_query,
                                              const boost::json::value* body, Retry retry) {
  if (!init_) return init_.error();
  std::string target = url_.prefix + std::string(path_and_query);
  if (target.empty()) target = "/";
  std::string payload = body != nullptr ? boost::json::serialize(*body) : std::string{};
  Error last = unavailable(provider_ + ": no attempt made");
  for (int attempt = 0; attempt < ep_.max_attempts; ++attempt) {
    {
      std::lock_guard lock(mu_);
      if (cancelled_) return unavailable(provider_ + ": shutting down");
    }
    auto r = once(method, target, payload);
    std::optional<std::chrono::milliseconds> wait;
    if (!r) {
      if (r.error().code == Code::kInvalidArgument) return r.error();
      last = r.error();
      if (retry != Retry::kIdempotent) return last;  // it may have reached the provider
      wait = backoff(attempt);
    } else if (r->status >= 200 && r->status < 300) {
      if (r->body.empty()) return boost::json::value(nullptr);
      boost::system::error_code ec;
      auto v = boost::json::parse(r->body, ec);
      if (ec)
        return badGateway(std::string(kReasonBadAnswer), provider_ + ": the API answered HTTP " +
                                                             std::to_string(r->status) +
                                                             " with a body that is not JSON");
      return v;
    } else if (r->status == 401 || r->status == 403) {
      return badGateway(std::string(kReasonAuth), provider_ + ": the API refused the key (HTTP " +
                                                      std::to_string(r->status) +
                                                      "): " + clean(r->body));
    } else if (r->status == 404) {
      return notFound(provider_ + ": not found (HTTP 404): " + clean(r->body));
    } else if (r->status == 429) {
      last = badGateway(std::string(kReasonRateLimited),
                        provider_ + ": rate limited (HTTP 429) after " +
                            std::to_string(attempt + 1) + " attempts");
      wait = std::max(backoff(attempt), r->retry_after.value_or(std::chrono::milliseconds(0)));
      if (r->retry_after && *r->retry_after > ep_.backoff_max) {
        last.message = provider_ + ": rate limited (HTTP 429), Retry-After " +
                       std::to_string(r->retry_after->count() / 1000) + " s is too long to wait";
        return last;
      }
    } else if (r->status >= 500) {
      last = badGateway(std::string(kReasonError),
                        provider_ + ": HTTP " + std::to_string(r->status) + ": " + clean(r->body));
      if (retry != Retry::kIdempotent) return last;
      wait = std::max(backoff(attempt), r->retry_after.value_or(std::chrono::milliseconds(0)));
    } else {
      return badGateway(std::string(kReasonError),
                        provider_ + ": HTTP " + std::to_string(r->status) + ": " + clean(r->body));
    }
    if (attempt + 1 < ep_.max_attempts) {
      spdlog::debug("{}: {} {} failed ({}), retrying in {} ms", provider_, method, path_and_query,
                    last.message, wait->count());
      if (!sleepFor(*wait)) return unavailable(provider_ + ": shutting down");
    }
  }
  return last;
}

}  // namespace hwl::rentals
