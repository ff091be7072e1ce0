// Raw bytes as a client would send them on a connection: the server's HTTP/1.1 parser, target
// decoding (path, query), header normalisation, then routing through the real API without a
// token. Invariants: the Request handed to handlers is consistent (lower-case header names, the
// path is the decoded target before '?', the body within the limit), and an unauthenticated
// request is answered with a known status and changes nothing but the refusal trail.
#include <cctype>

#include "api_world.hpp"
#include "hwl/http_parse.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHeaderLimit = 8 * 1024;
  constexpr size_t kBodyLimit = 64 * 1024;
  auto in = fuzz::text(data, size);
  auto req = http::parseRequest(in, kHeaderLimit, kBodyLimit);
  if (!req) {
    HWL_FUZZ_CHECK(
        req.error().code == Code::kInvalidArgument || req.error().code == Code::kResourceExhausted,
        req.error().message);
    return 0;
  }
  HWL_FUZZ_CHECK(!req->method.empty(), req->target);
  HWL_FUZZ_CHECK(req->body.size() <= kBodyLimit, "body over the limit");
  HWL_FUZZ_CHECK(req->path == http::percentDecode(
                                  std::string_view(req->target).substr(0, req->target.find('?'))),
                 req->target);
  for (const auto& [k, v] : req->headers) {
    HWL_FUZZ_CHECK(!k.empty(), "empty header name");
    for (char c : k)
      HWL_FUZZ_CHECK(std::tolower(static_cast<unsigned char>(c)) == static_cast<unsigned char>(c),
                     k);
    // Beast refuses CR and LF in field values: a handler never sees a header that splits.
    HWL_FUZZ_CHECK(v.find_first_of("\r\n") == std::string::npos, v);
  }
  for (const auto& [k, v] : req->query) HWL_FUZZ_CHECK(!k.empty(), "empty query key");
  for (const auto& seg : http::splitPath(req->path)) {
    HWL_FUZZ_CHECK(!seg.empty() && seg.find('/') == std::string::npos, req->path);
  }

  // No credentials: nothing may succeed except the public routes.
  std::erase_if(req->headers, [](const auto& h) { return h.first == "authorization"; });
  auto& w = fuzz::ApiWorld::get();
  int64_t before = w.ledger->headSeq();
  auto res = w.call(*req);
  w.checkAnswer(res, before, in);
  if (res.status < 300) {
    auto segs = http::splitPath(req->path);
    std::string p;
    for (const auto& s : segs) p += "/" + s;
    // The public routes: health, the CA, the dashboard's files ("" is "/"), and who the caller
    // is, which without credentials is nobody.
    HWL_FUZZ_CHECK(req->method == "GET" && (p == "/v1/health" || p == "/v1/pki/ca" || p.empty() ||
                                            p.rfind("/ui/", 0) == 0 || p == "/v1/whoami"),
                   req->method + " " + req->path + " answered " + std::to_string(res.status));
    if (p == "/v1/whoami") {
      HWL_FUZZ_CHECK(res.body == R"({"signed_in":false})",
                     "whoami without credentials: " + res.body);
    }
  }
  if (res.status == 405) {
    bool allow = false;
    for (const auto& [k, v] : res.headers) allow |= k == "Allow" && !v.empty();
    HWL_FUZZ_CHECK(allow, "405 without Allow");
  }
  return 0;
}
