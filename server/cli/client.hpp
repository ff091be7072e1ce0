// Reaching the server: the connection settings the config file supplies, the REST client with the
// token, and the fleet lookups several commands share.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hwl/http.hpp"
#include "hwl/result.hpp"

namespace hwl::cli {

namespace bj = boost::json;

// How to reach the server: each field from its flag, else the environment, else the config file.
struct Connection {
  std::string server;
  std::string token;
  std::string ca;
};

std::string envOr(const char* name);

// Fills what neither a flag nor the environment gave from the config file
// {"server": URL, "ca": FILE, "token_file": FILE} (paths relative to the file's folder). An
// absent file is no error; an unreadable one, an unknown key or a missing token file is.
Status applyConfigFile(Connection& conn);

class Api {
 public:
  explicit Api(const Connection& conn);

  // The answer's JSON; an HTTP error status becomes an Error naming the server's code and message.
  Result<bj::value> call(std::string_view method, std::string_view target,
                         std::string_view body = {});

  [[nodiscard]] std::vector<std::pair<std::string, std::string>> headers() const;
  // For answers that are not one JSON value, or whose error statuses a command reads itself.
  http::Client& client() { return client_; }

 private:
  Connection conn_;
  http::Client client_;
};

// "error: HTTP <status> <body>" and exit code 1, for an answer read without Api::call.
int failHttp(std::ostream& err, const http::ClientResponse& r);

// Every page of GET /v1/hosts.
Result<bj::array> allHosts(Api& api);

// Host names and GPU indices for tables: people read names, the API answers with ids.
struct FleetNames {
  std::map<std::string, std::string> host;                     // host id -> name
  std::map<std::string, std::pair<std::string, int64_t>> gpu;  // uuid -> (host id, index)
  [[nodiscard]] std::string hostName(const std::string& id) const;
  [[nodiscard]] std::string gpuIndices(const bj::array& uuids) const;
};

Result<FleetNames> fleetNames(Api& api);

}  // namespace hwl::cli
