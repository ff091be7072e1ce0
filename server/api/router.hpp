// A small method + path router: patterns like "/v1/tokens/{id}" with named segments.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hwl/http.hpp"

namespace hwl::api {

using Params = std::map<std::string, std::string>;
using RouteHandler = std::function<http::Response(http::Request&, const Params&)>;

class Router {
 public:
  void add(std::string method, std::string pattern, RouteHandler h, size_t body_limit = 0);
  // 404 for an unknown path, 405 (with Allow) for a known path and another method.
  http::Response dispatch(http::Request& req) const;
  // The body limit for this route (0 = the server default).
  [[nodiscard]] size_t bodyLimit(std::string_view method, std::string_view path) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    RouteHandler handler;
    size_t body_limit;
  };
  static bool match(const Route& r, const std::vector<std::string>& segs, Params* params);
  std::vector<Route> routes_;
};


}  // namespace hwl::api
