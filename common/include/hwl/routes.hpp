// One route table for both HTTP APIs (server and agent): each route declares its method, its path
// pattern ("/v1/jobs/{id}"), the role a caller needs and its body limit. Handlers return
// Result<Reply>: a JSON document (or a response of their own: text, PEM, a stream), or an Error
// that dispatch() maps to its HTTP status and JSON body in one place (errorResponse). The table
// answers 404 for an unknown path and 405 (with Allow) for a known path and another method, gives
// the TLS layer the body limit before the body is read, and lists itself (`routes --json`), which a
// test compares with proto/openapi*.yaml. Handlers check the role themselves (they need the
// caller's identity); a test checks that each route refuses callers below its declared role.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hwl/http.hpp"
#include "hwl/result.hpp"

namespace hwl::http {

using Params = std::map<std::string, std::string>;

// What a handler answers when it succeeds.
struct Reply {
  unsigned status = 200;
  boost::json::value json;           // the body, unless `response` is set
  std::optional<Response> response;  // sent as it is: not JSON, or streamed
};
inline Reply ok(boost::json::value v) { return Reply{200, std::move(v), std::nullopt}; }
inline Reply created(boost::json::value v) { return Reply{201, std::move(v), std::nullopt}; }
inline Reply accepted(boost::json::value v) { return Reply{202, std::move(v), std::nullopt}; }
inline Reply raw(Response r) { return Reply{0, nullptr, std::move(r)}; }
// The HTTP response of a handler's result: the one place where an Error becomes a status.
Response toResponse(Result<Reply> r);

using RouteHandler = std::function<Result<Reply>(Request&, const Params&)>;

struct Route {
  std::string method;
  std::string pattern;
  // public, viewer, operator, admin, host, metrics (server); server, metrics (agent).
  std::string role;
  size_t body_limit = 0;  // 0: the table's default
  RouteHandler handler;
};

class RouteTable {
 public:
  explicit RouteTable(size_t default_body_limit) : default_body_limit_(default_body_limit) {}
  void add(Route r);
  [[nodiscard]] Response dispatch(Request& req) const;
  // The body limit of the route `method path`; the default for anything else.
  [[nodiscard]] size_t bodyLimit(std::string_view method, std::string_view path) const;
  // The role `method path` needs ("" when no route matches).
  [[nodiscard]] std::string roleOf(std::string_view method, std::string_view path) const;
  // [{"method","path","role","body_limit"}] in registration order, limits resolved.
  [[nodiscard]] boost::json::array toJson() const;
  [[nodiscard]] const std::vector<Route>& routes() const { return routes_; }

 private:
  const Route* find(std::string_view method, const std::vector<std::string>& segs,
                    Params* params) const;
  size_t default_body_limit_;
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // of each route's pattern
};

}  // namespace hwl::http
