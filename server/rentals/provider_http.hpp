// The HTTP side every provider adapter shares: a checked base URL (https with the system CAs or a
// ca_file; plain http only to a loopback address, for the fake providers of the tests), the API
// key in a header (never in a URL, a log line, an event or an error message), a timeout on every
// call, and retries with exponential backoff and full jitter on 429 and 5xx that honour
// Retry-After. Calls block the calling thread (a rental worker, never an Asio I/O thread).
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::http {
class Client;
}  // namespace hwl::http

namespace hwl::rentals {

enum class AuthStyle {
  kBearer,     // Authorization: Bearer KEY
  kBasicUser,  // Authorization: Basic base64(KEY:) — the key as the user name, no password
};

struct Endpoint {
  std::string base_url;  // https://HOST[:PORT][/PATH], or http://LOOPBACK-IP:PORT[/PATH]
  std::string api_key;
  std::string ca_file;  // empty: the system's CA store
  AuthStyle auth = AuthStyle::kBearer;
  std::chrono::milliseconds timeout{20'000};  // per attempt
  int max_attempts = 5;
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};  // also the longest Retry-After honoured
};

// What a base URL is made of once checked.
struct BaseUrl {
  bool tls = true;
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string prefix;                        // path prefix without a trailing '/', may be empty
  [[nodiscard]] std::string origin() const;  // scheme://host:port for hwl::http::Client
};
// https with any valid host name or address; http only with a loopback IP literal (127.0.0.0/8,
// ::1). No user info, query or fragment; the path only of [A-Za-z0-9._~/-].
Result<BaseUrl> parseBaseUrl(std::string_view url);
// A key as it may be sent in a header: 1..512 printable ASCII bytes, no spaces.
Status checkApiKey(std::string_view key);

// Whether a failed call may be sent again.
enum class Retry {
  kIdempotent,   // reads, terminate: 429, 5xx and no answer are retried
  kUnprocessed,  // launches: only 429 (the provider refused before doing anything)
};

// The error reasons (Error::reason) of provider calls.
inline constexpr std::string_view kReasonAuth = "provider_auth";  // 401/403: key refused
inline constexpr std::string_view kReasonRateLimited = "provider_rate_limited";
inline constexpr std::string_view kReasonError = "provider_error";  // other error answers
inline constexpr std::string_view kReasonUnreachable = "provider_unreachable";
inline constexpr std::string_view kReasonBadAnswer =
    "provider_bad_answer";  // not what the API says

class ProviderHttp {
 public:
  ProviderHttp(std::string provider, Endpoint endpoint);
  ~ProviderHttp();
  ProviderHttp(const ProviderHttp&) = delete;
  ProviderHttp& operator=(const ProviderHttp&) = delete;

  [[nodiscard]] const std::string& provider() const { return provider_; }
  // The base URL's problem, when it has one (every call then fails with it).
  [[nodiscard]] const Status& configured() const { return init_; }

  // Sends `body` (JSON, or nothing when null) to prefix + path_and_query and parses a 2xx answer
  // as JSON (an empty body is null). Errors: kUnauthenticated-like answers come back as
  // kBadGateway with reason kReasonAuth; 404 as kNotFound; other error answers as kBadGateway
  // with the provider's message (bounded, printable, the key removed); no answer as kUnavailable.
  Result<boost::json::value> call(std::string_view method, std::string_view path_and_query,
                                  const boost::json::value* body, Retry retry);

  // An error message of the provider's, fit for the ledger: printable, bounded, without the key.
  [[nodiscard]] std::string clean(std::string_view text) const;

  // Ends any backoff wait at once (shutdown); later calls fail without waiting.
  void cancel();

 private:
  struct Reply {
    unsigned status = 0;
    std::string body;
    std::optional<std::chrono::milliseconds> retry_after;
  };
  Result<Reply> once(std::string_view method, const std::string& target, const std::string& body);
  std::unique_ptr<http::Client> takeClient();
  void giveBack(std::unique_ptr<http::Client> c);
  bool sleepFor(std::chrono::milliseconds d);  // false when cancelled
  std::chrono::milliseconds backoff(int attempt);

  std::string provider_;
  Endpoint ep_;
  BaseUrl url_;
  Status init_;
  std::string auth_header_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  std::vector<std::unique_ptr<http::Client>> idle_;
};

// Retry-After as seconds ("3") or an HTTP date; nullopt when absent or unreadable.
std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view v,
                                                         std::chrono::system_clock::time_point now);

// Small readers for provider JSON: the value at `key` when it has the type, else nullopt.
std::optional<std::string> jsonString(const boost::json::value& obj, std::string_view key);
std::optional<double> jsonNumber(const boost::json::value& obj, std::string_view key);
std::optional<int64_t> jsonInt(const boost::json::value& obj, std::string_view key);

}  // namespace hwl::rentals
