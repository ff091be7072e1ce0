// Route matching (see routes.hpp).
#include "hwl/routes.hpp"

#include <boost/json.hpp>

namespace hwl::http {

namespace {
bool match(const std::vector<std::string>& pattern, const std::vector<std::string>& segs,
           Params* params) {
  if (pattern.size() != segs.size()) return false;
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto& p = pattern[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      if (params != nullptr) (*params)[p.substr(1, p.size() - 2)] = segs[i];
    } else if (p != segs[i]) {
      return false;
    }
  }
  return true;
}
}  // namespace

void RouteTable::add(Route r) {
  segments_.push_back(splitPath(r.pattern));
  routes_.push_back(std::move(r));
}

const Route* RouteTable::find(std::string_view method, const std::vector<std::string>& segs,
                              Params* params) const {
  for (size_t i = 0; i < routes_.size(); ++i)
    if (routes_[i].method == method && match(segments_[i], segs, params)) return &routes_[i];
  return nullptr;
}

Response toResponse(Result<Reply> r) {
  if (!r) return errorResponse(r.error());
  if (r->response) return std::move(*r->response);
  return jsonResponse(r->status, r->json);
}

Response RouteTable::dispatch(Request& req) const {
  auto segs = splitPath(req.path);
  Params params;
  if (const Route* r = find(req.method, segs, &params)) return toResponse(r->handler(req, params));
  std::string allow;
  for (size_t i = 0; i < routes_.size(); ++i)
    if (match(segments_[i], segs, nullptr))
      allow += (allow.empty() ? "" : ", ") + routes_[i].method;
  if (!allow.empty()) {
    auto res = jsonError(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
    res.headers.emplace_back("Allow", allow);
    return res;
  }
  return jsonError(404, "not_found", "no such resource: " + req.path);
}

size_t RouteTable::bodyLimit(std::string_view method, std::string_view path) const {
  const Route* r = find(method, splitPath(path), nullptr);
  return r != nullptr && r->body_limit != 0 ? r->body_limit : default_body_limit_;
}

std::string RouteTable::roleOf(std::string_view method, std::string_view path) const {
  const Route* r = find(method, splitPath(path), nullptr);
  return r != nullptr ? r->role : std::string();
}

boost::json::array RouteTable::toJson() const {
  boost::json::array out;
  for (const auto& r : routes_)
    out.push_back(boost::json::object{
        {"method", r.method},
        {"path", r.pattern},
        {"role", r.role},
        {"body_limit", r.body_limit != 0 ? r.body_limit : default_body_limit_}});
  return out;
}

}  // namespace hwl::http
