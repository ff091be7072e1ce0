// Route matching.
#include "router.hpp"

namespace hwl::api {

void Router::add(std::string method, std::string pattern, RouteHandler h, size_t body_limit) {
  routes_.push_back(Route{std::move(method), http::splitPath(pattern), std::move(h), body_limit});
}

bool Router::match(const Route& r, const std::vector<std::string>& segs, Params* params) {
  if (r.segments.size() != segs.size()) return false;
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto& p = r.segments[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      if (params != nullptr) (*params)[p.substr(1, p.size() - 2)] = segs[i];
    } else if (p != segs[i]) {
      return false;
    }
  }
  return true;
}

http::Response Router::dispatch(http::Request& req) const {
  auto segs = http::splitPath(req.path);
  std::string allow;
  for (const auto& r : routes_) {
    Params params;
    if (!match(r, segs, &params)) continue;
    if (r.method == req.method) return r.handler(req, params);
    allow += (allow.empty() ? "" : ", ") + r.method;
  }
  if (!allow.empty()) {
    auto res = http::jsonError(405, "method_not_allowed",
                               req.method + " is not allowed on " + req.path);
    res.headers.emplace_back("Allow", allow);
    return res;
  }
  return http::jsonError(404, "not_found", "no such resource: " + req.path);
}

size_t Router::bodyLimit(std::string_view method, std::string_view path) const {
  auto segs = http::splitPath(path);
  for (const auto& r : routes_)
    if (r.method == method && match(r, segs, nullptr)) return r.body_limit;
  return 0;
}

}  // namespace hwl::api
