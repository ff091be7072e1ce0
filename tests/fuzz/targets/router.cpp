// Dispatch of arbitrary methods and targets by the API's router: the first line of the input is
// the method, the rest the request target (put on a request line and parsed as the server does).
// Invariants: the per-route body limit and the route that answers agree (a limit is that of the
// route with this method, or the default), 405 names the allowed methods (never the one used),
// only public routes answer without a token, and nothing but the refusal trail is appended.
#include "api_world.hpp"
#include "hwl/http_parse.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [method, target] = fuzz::splitOnce(fuzz::text(data, size), '\n');
  if (method.empty() || method.size() > 16 || target.empty() || target.size() > 4096) return 0;
  std::string raw = std::string(method) + " " + std::string(target) +
                    " HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 0\r\n\r\n";
  auto req = http::parseRequest(raw, 8 * 1024, 1 << 20);
  if (!req) return 0;

  auto& w = fuzz::ApiWorld::get();
  size_t limit = w.api->bodyLimit(req->method, req->path);
  HWL_FUZZ_CHECK(limit > 0 && limit <= (1u << 20), std::to_string(limit));
  // A route the table knows for this method and path.
  const bool is_route = !w.api->routes().roleOf(req->method, req->path).empty();

  int64_t before = w.ledger->headSeq();
  auto res = w.call(*req);
  w.checkAnswer(res, before, raw);
  if (is_route)
    HWL_FUZZ_CHECK(res.status != 404 && res.status != 405,
                   "a route of the table answered as unknown: " + req->method + " " + req->path);
  if (res.status == 405) {
    std::string allow;
    for (const auto& [k, v] : res.headers)
      if (k == "Allow") allow = v;
    HWL_FUZZ_CHECK(!allow.empty(), "405 without Allow");
    std::string_view rest = allow;
    while (!rest.empty()) {
      auto [m, tail] = fuzz::splitOnce(rest, ',');
      if (!m.empty() && m.front() == ' ') m.remove_prefix(1);
      HWL_FUZZ_CHECK(m != req->method, "405 allows " + allow + " for " + req->method);
      rest = tail;
    }
  }
  if (res.status < 300) {
    std::string p;
    for (const auto& s : http::splitPath(req->path)) p += "/" + s;
    HWL_FUZZ_CHECK(req->method == "GET" && (p == "/v1/health" || p == "/v1/pki/ca"),
                   req->method + " " + req->path);
  }
  // A second dispatch of the same request gives the same status (routing has no state).
  auto again = w.call(*req);
  HWL_FUZZ_CHECK(again.status == res.status || again.status == 429,
                 std::to_string(res.status) + " then " + std::to_string(again.status));
  return 0;
}
