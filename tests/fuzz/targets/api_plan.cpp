// Bodies of POST /v1/plan and POST /v1/placements (as a viewer): the plan request parser, the
// HF config reader behind "model", the VRAM math and the placement over the ledger's hosts.
// Invariants: known statuses, JSON answers, and neither route ever appends.
#include "api_world.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = fuzz::ApiWorld::get();
  std::string body(fuzz::text(data, size));
  int64_t before = w.ledger->headSeq();
  auto r = w.call("POST", "/v1/plan", body, w.viewer);
  w.checkAnswer(r, before, body);
  auto p = w.call("POST", "/v1/placements", body, w.viewer);
  w.checkAnswer(p, before, body);
  HWL_FUZZ_CHECK(w.ledger->headSeq() == before, "planning appended to the ledger");
  return 0;
}
