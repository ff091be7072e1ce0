// Bodies of POST /v1/enroll through the real API, fleet CA and ledger. So that inputs get past
// the token check, "$TOKEN" in an input becomes a fresh enrollment token and "$CSR" a valid CSR
// (PEM, JSON-escaped). Invariants: a refusal appends nothing but the refusal trail; a 201 appends
// token.used and host.enrolled only, and its certificate names the new host and nothing else an
// input could choose: exactly one URI SAN, hwledger://host/<host_id>, and at most one DNS or IP
// SAN (the advertised address), never an admin or server identity.
#include <boost/json.hpp>

#include "api_world.hpp"

using namespace hwl;
namespace bj = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = fuzz::ApiWorld::get();
  std::string body(fuzz::text(data, size));
  if (body.find("$TOKEN") != std::string::npos)
    body = fuzz::replaceAll(std::move(body), "$TOKEN", w.mintEnrollToken());
  if (body.find("$CSR") != std::string::npos)
    body = fuzz::replaceAll(std::move(body), "$CSR", fuzz::jsonEscape(w.csrPem()));

  int64_t before = w.ledger->headSeq();
  auto r = w.call("POST", "/v1/enroll", body, "");
  w.checkAnswer(r, before, body);
  if (r.status != 201) return 0;

  auto evs = w.eventsAfter(before);
  HWL_FUZZ_CHECK(evs.size() == 2 && evs[0].type == "token.used" && evs[1].type == "host.enrolled",
                 body);
  auto o = bj::parse(r.body).as_object();
  std::string host_id(o.at("host_id").as_string());
  auto sans = fuzz::subjectAltNames(std::string(o.at("certificate").as_string()));
  std::string all;
  for (const auto& s : sans) all += s + " ";
  int uris = 0, addrs = 0;
  for (const auto& s : sans) {
    if (s.rfind("URI:", 0) == 0) {
      ++uris;
      HWL_FUZZ_CHECK(s == "URI:hwledger://host/" + host_id,
                     "certificate SANs: " + all + "\n  input: " + body);
    } else if (s.rfind("DNS:", 0) == 0 || s.rfind("IP:", 0) == 0) {
      ++addrs;
    } else {
      HWL_FUZZ_CHECK(false, "certificate SANs: " + all + "\n  input: " + body);
    }
  }
  HWL_FUZZ_CHECK(uris == 1 && addrs <= 1, "certificate SANs: " + all + "\n  input: " + body);
  return 0;
}
