// Bodies of POST /v1/jobs (as an operator) through the real API and ledger. No host is
// reachable, so every valid spec ends in 409 no_placement: the target covers validation, and
// checks that nothing is appended for a spec that is refused or cannot be placed.
#include "api_world.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = fuzz::ApiWorld::get();
  std::string body(fuzz::text(data, size));
  int64_t before = w.ledger->headSeq();
  auto r = w.call("POST", "/v1/jobs", body, w.operator_token);
  w.checkAnswer(r, before, body);
  HWL_FUZZ_CHECK(r.status >= 400, "a job was accepted with no reachable host: " + r.body);
  return 0;
}
