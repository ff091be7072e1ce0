// The dashboard's routes; see dashboard.hpp.
#include "dashboard.hpp"

#include <map>

#include "hwl/crypto.hpp"
#include "web_assets.hpp"

namespace hwl::web {

namespace {

struct Served {
  const Asset* asset;
  std::string etag;  // the content's SHA-256: a cached copy is revalidated, never trusted stale
};

const std::map<std::string, Served, std::less<>>& served() {
  static const auto kServed = [] {
    std::map<std::string, Served, std::less<>> m;
    for (const auto& a : assets()) {
      const std::string_view bytes(reinterpret_cast<const char*>(a.data), a.size);
      m.emplace(std::string(a.name),
                Served{&a, "\"" + crypto::hex(crypto::sha256(bytes)).substr(0, 32) + "\""});
    }
    return m;
  }();
  return kServed;
}

Result<http::Reply> serve(const http::Request& req, std::string_view name) {
  const auto& all = served();
  const auto it = all.find(name);
  if (it == all.end()) return notFound("no such file in the dashboard");
  http::Response r;
  r.headers = securityHeaders();
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", it->second.etag);
  if (auto m = req.header("if-none-match"); m && *m == it->second.etag) {
    r.status = 304;
    r.content_type = std::string(it->second.asset->content_type);
    return http::raw(std::move(r));
  }
  r.content_type = std::string(it->second.asset->content_type);
  r.body.assign(reinterpret_cast<const char*>(it->second.asset->data), it->second.asset->size);
  return http::raw(std::move(r));
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& securityHeaders() {
  static const std::vector<std::pair<std::string, std::string>> kHeaders = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
      {"Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), serial=()"},
      {"Strict-Transport-Security", "max-age=31536000"}};
  return kHeaders;
}

void addDashboardRoutes(http::RouteTable& table) {
  table.add({"GET", "/", "public", 0,
             [](http::Request& req, const http::Params&) { return serve(req, "index.html"); }});
  table.add({"GET", "/ui/{id}", "public", 0,
             [](http::Request& req, const http::Params& p) { return serve(req, p.at("id")); }});
}

}  // namespace hwl::web
