// Bodies of POST /v1/tokens (as an admin) and POST /v1/enroll-tokens (as an operator) through
// the real API and ledger. Invariants: a refusal appends nothing; a 201 appends exactly one
// token.created whose role is one of the three; the new token authenticates at once.
#include <boost/json.hpp>

#include "api_world.hpp"

using namespace hwl;
namespace bj = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = fuzz::ApiWorld::get();
  std::string body(fuzz::text(data, size));

  int64_t before = w.ledger->headSeq();
  auto r = w.call("POST", "/v1/tokens", body, w.admin);
  w.checkAnswer(r, before, body);
  if (r.status == 201) {
    auto evs = w.eventsAfter(before);
    HWL_FUZZ_CHECK(evs.size() == 1 && evs[0].type == "token.created", body);
    auto o = bj::parse(r.body).as_object();
    std::string role(o.at("role").as_string());
    HWL_FUZZ_CHECK(role == "viewer" || role == "operator" || role == "admin", role);
    HWL_FUZZ_CHECK(bj::parse(evs[0].data).at("role").as_string() == role, evs[0].data);
    std::string token(o.at("token").as_string());
    int64_t mid = w.ledger->headSeq();
    auto use = w.call("GET", "/v1/events?limit=1", "", token);
    HWL_FUZZ_CHECK(use.status == 200, "a new token is refused: " + use.body);
    HWL_FUZZ_CHECK(w.ledger->headSeq() == mid, "reading events appended");
  }

  before = w.ledger->headSeq();
  auto e = w.call("POST", "/v1/enroll-tokens", body, w.operator_token);
  w.checkAnswer(e, before, body);
  if (e.status == 201) {
    auto evs = w.eventsAfter(before);
    HWL_FUZZ_CHECK(evs.size() == 1 && evs[0].type == "token.created", body);
    auto o = bj::parse(e.body).as_object();
    HWL_FUZZ_CHECK(o.at("expires_ms").as_int64() > w.clock.nowMs(), e.body);
  }
  return 0;
}
