// The HTTPS server and client shared by hwledger-server, hwledger-agent and the CLI.
// Beast and Asio stay out of this header: handlers see plain Request/Response values and run on a
// worker pool, never on an I/O thread, so they may block on SQLite or a ledger acknowledgement.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hwl/result.hpp"

namespace boost::json {
class value;
}  // namespace boost::json

namespace hwl::http {

// What the TLS layer verified about the peer's certificate (empty when none was presented).
struct PeerCert {
  bool present = false;
  std::string subject;
  std::vector<std::string> uris;  // SAN URIs
  std::string serial_hex;
  std::string spki_sha256_hex;
  int64_t not_after_ms = 0;
};

struct Request {
  std::string method;
  std::string target;  // as received
  // Decoded path, without the query: the one string both routing and the body limit look at.
  // Never holds '/' or a control character that came from a percent escape.
  std::string path;
  std::map<std::string, std::string> query;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  std::string remote_addr;
  PeerCert peer;

  [[nodiscard]] std::optional<std::string_view> header(std::string_view lower_name) const;
};

// Written to by a streaming handler from its own thread. write() blocks until the chunk is sent
// and returns false once the client is gone or the server is stopping. The server keeps reading
// the connection while the handler streams, so stopping() turns true within moments of the client
// closing it (or resetting it), even while the handler has nothing to write: an idle handler
// polls stopping() and returns.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(std::string_view chunk) = 0;
  [[nodiscard]] virtual bool stopping() const = 0;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the headers are sent with chunked encoding and `stream` runs on a thread of its own
  // until it returns; its writes become chunks.
  std::function<void(StreamWriter&)> stream;
};

Response jsonResponse(unsigned status, const boost::json::value& v);
Response jsonError(unsigned status, std::string_view code, std::string_view message);
Response errorResponse(const Error& e);  // the one place that maps Code to an HTTP status
unsigned statusFor(Code code);

using Handler = std::function<Response(Request&)>;
// Body limit for a request, decided once the headers are in from its method and its decoded path
// (Request::path, exactly what the handler routes on).
using BodyLimit = std::function<size_t(std::string_view method, std::string_view path)>;

enum class ClientCertMode { kNone, kOptional, kRequired };

// I/O threads and a handler pool that several servers in one process can share (a process that
// serves many simulated hosts). A server without one makes its own.
class Runtime {
 public:
  Runtime(int io_threads, int worker_threads);
  ~Runtime();  // stop()
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  void stop();  // stops the threads; servers on it must not be used afterwards
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ServerSettings {
  std::string listen = "127.0.0.1:8443";  // HOST:PORT, [v6]:PORT; port 0 picks a free port
  std::string cert_file;                  // PEM chain; empty with plain_http
  std::string key_file;
  std::string client_ca_file;  // CA that client certificates must chain to
  ClientCertMode client_cert = ClientCertMode::kNone;
  bool plain_http = false;  // for local trials only
  size_t header_limit = 8 * 1024;
  size_t body_limit = 1 << 20;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  int io_threads = 1;
  int worker_threads = 16;
  size_t max_streams = 64;
  std::string server_name = "hwledger";
  std::shared_ptr<Runtime> runtime;  // shared threads; io_threads/worker_threads then unused
  // Decides whether a verified client certificate may connect. Called during the handshake
  // (a refusal fails the handshake, before any HTTP), before every request on the connection,
  // and by a sweep every second that closes connections whose peer is no longer allowed
  // (revocation takes effect on open keep-alive connections and resumed sessions too).
  std::function<bool(const PeerCert&)> peer_allowed;
};

class Server {
 public:
  Server(ServerSettings settings, Handler handler, BodyLimit body_limit = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving on background threads.
  Status start();
  // The bound address as HOST:PORT (IPv6 in brackets).
  [[nodiscard]] std::string boundAddress() const;
  [[nodiscard]] uint16_t port() const;
  // Stops accepting, lets in-flight handlers finish and their responses go out, then returns.
  void stop();
  // Loads the certificate and key files again; new connections use them, open ones keep theirs.
  Status reloadCertificate();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct ClientSettings {
  std::string base_url;   // https://HOST:PORT or http://HOST:PORT
  std::string ca_file;    // verify the server against this CA (else the system store)
  std::string ca_pem;     // or against this PEM text
  std::string cert_file;  // client certificate for mutual TLS
  std::string key_file;
  bool verify_hostname = true;
  // When not empty, the server's certificate must carry this SAN URI (checked after the chain).
  std::string expected_uri;
  // Skips every check of the server's certificate (only to fetch a CA that is then pinned).
  bool insecure_skip_verify = false;
  std::chrono::milliseconds timeout{30000};
  // How long a streamed body (stream()) may stay silent: a followed log can be quiet for long.
  std::chrono::milliseconds stream_idle_timeout{3'600'000};
};

struct ClientResponse {
  unsigned status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A blocking HTTPS client holding one keep-alive connection (reconnects when it drops).
class Client {
 public:
  explicit Client(ClientSettings settings);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<ClientResponse> request(
      std::string_view method, std::string_view target, std::string_view body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Streams a response body to `on_data` as it arrives; returns the status once the body ends or
  // on_data returns false. While the body is silent, `cancelled` (when given) is polled a few
  // times a second and ends the stream once it returns true (a relay whose own client left).
  Result<unsigned> stream(std::string_view method, std::string_view target,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const std::function<bool(std::string_view)>& on_data,
                          const std::function<bool()>& cancelled = {});

  // The certificate the server presented on the last connection (PEM), for pinning checks.
  [[nodiscard]] std::string peerCertificatePem() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// "/v1/jobs/x/" → {"v1", "jobs", "x"}.
std::vector<std::string> splitPath(std::string_view path);
// An integer query parameter within [min, max]; nullopt when absent; the error names it.
Result<std::optional<int64_t>> queryInt(const Request& req, const std::string& name, int64_t min,
                                        int64_t max);

// What the client refuses to send (InvalidArgument, and nothing goes on the wire): a method that
// is not a known verb; a target that does not start with '/' or holds a control character, a
// space or a byte outside ASCII; a header name that is not an RFC 9110 token, or a value holding
// CR, LF, NUL or another control character (HTAB aside).
Status checkMethod(std::string_view method);
Status checkTarget(std::string_view target);
Status checkHeader(std::string_view name, std::string_view value);

// Splits "HOST:PORT" / "[V6]:PORT".
Result<std::pair<std::string, uint16_t>> splitHostPort(std::string_view hostport);
std::string percentDecode(std::string_view s);

}  // namespace hwl::http
