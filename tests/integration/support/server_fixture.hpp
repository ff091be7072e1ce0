// A real hwledger-server on loopback for the integration tests, and the real clients that talk
// to it: curl for the REST API, the sqlite3 shell for the database, the hwledger CLI.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"

namespace hwl::itest {

// Paths of the binaries under test (compile definitions).
std::string serverBin();
std::string cliBin();

// One HTTP exchange made by curl.
struct Http {
  int status = 0;     // 0 when curl got no response
  int curl_exit = 0;  // curl's exit code
  std::string body;
  std::string err;  // curl's stderr
  // The body as JSON; throws (failing the test) when it is not JSON.
  [[nodiscard]] boost::json::value json() const;
  [[nodiscard]] boost::json::object obj() const;
  // error.message of an error body, or "" when there is none.
  [[nodiscard]] std::string errorMessage() const;
};

// The answer of a curl run made with `-w "\n%{http_code}"`.
Http httpFromCurl(const RunResult& r);

// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, then released).
uint16_t freeLoopbackPort();

struct CreatedToken {
  std::string id;
  std::string token;  // ID.SECRET
  int64_t seq = 0;
};

// A data directory and the server that runs on it. Nothing outside `root` is touched: the data
// directory is root/name and the server's stdout/stderr go to files beside it.
class LedgerServer {
 public:
  LedgerServer(const std::filesystem::path& root, const std::string& name);
  ~LedgerServer();  // kills a server that is still running
  LedgerServer(const LedgerServer&) = delete;
  LedgerServer& operator=(const LedgerServer&) = delete;

  // hwledger-server init with --admin-token-file; throws when it fails.
  void init();
  // hwledger-server run --data-dir DIR --listen 127.0.0.1:0 --log-level warn EXTRA...; waits until
  // it prints the address it listens on.
  void start(const std::vector<std::string>& extra = {});
  // hwledger-server run ARGS... exactly as given; waits for the address.
  void startRaw(const std::vector<std::string>& args);
  // SIGTERM; waits for the exit.
  ExitStatus stop();
  // SIGKILL, as a crash or power loss would.
  void crash();
  [[nodiscard]] bool running();

  [[nodiscard]] const std::filesystem::path& dataDir() const { return dir_; }
  [[nodiscard]] std::filesystem::path db() const { return dir_ / "ledger.db"; }
  [[nodiscard]] std::filesystem::path caCert() const { return dir_ / "ca.crt"; }
  [[nodiscard]] std::filesystem::path checkpointLog() const { return dir_ / "checkpoints.log"; }
  [[nodiscard]] const std::string& adminToken() const { return admin_token_; }
  [[nodiscard]] const std::string& address() const { return addr_; }  // 127.0.0.1:PORT
  [[nodiscard]] std::string port() const;
  [[nodiscard]] std::string url() const { return "https://" + addr_; }
  [[nodiscard]] std::string serverOut() const;
  [[nodiscard]] std::string serverErr() const;

  // curl -X METHOD URL+path, trusting the data directory's CA; token "" sends no Authorization.
  [[nodiscard]] Http request(const std::string& method, const std::string& path,
                             const std::string& token, const std::optional<std::string>& body = {},
                             const std::vector<std::string>& extra_args = {}) const;
  [[nodiscard]] Http get(const std::string& path) const {
    return request("GET", path, admin_token_);
  }
  [[nodiscard]] Http post(const std::string& path, const std::string& body) const {
    return request("POST", path, admin_token_, body);
  }

  // The "events" figure of GET /v1/health (the head seq).
  [[nodiscard]] int64_t eventCount() const;
  // POST /v1/tokens as admin; throws unless the answer is 201.
  CreatedToken createToken(const std::string& role, std::optional<int64_t> ttl_s = {},
                           const std::string& note = "") const;
  // n tokens from one curl process (URL globbing, `parallel` transfers at a time); returns the
  // ids; throws unless every answer is 201.
  std::vector<std::string> createTokens(int n, int parallel = 1,
                                        const std::string& role = "viewer") const;
  // DELETE /v1/tokens/{id} as admin; throws unless the answer is 200.
  void revokeToken(const std::string& id) const;
  // Every event, page by page.
  [[nodiscard]] std::vector<boost::json::object> allEvents(const std::string& query = "") const;

  // The environment the hwledger CLI reads.
  [[nodiscard]] Env cliEnv(const std::string& token) const;

 private:
  std::filesystem::path root_;
  std::filesystem::path dir_;
  std::string name_;
  std::string admin_token_;
  std::string addr_;
  int starts_ = 0;
  std::unique_ptr<Process> proc_;
};

// sqlite3 -batch -noheader DB SQL; throws when the shell fails. Trailing newlines are removed.
std::string sqlite(const std::filesystem::path& db, const std::string& sql);
// Runs the hwledger CLI.
RunResult cli(const std::vector<std::string>& args, const Env& env = {});
// Copies a directory (flat) into a new one.
void copyDir(const std::filesystem::path& from, const std::filesystem::path& to);
// Splits text into lines, dropping a trailing empty one.
std::vector<std::string> lines(const std::string& text);

}  // namespace hwl::itest
