// safetensors headers (8-byte length, JSON header): the whole input is the start of a file whose
// size is the input's. Invariants: the summary's totals are the sums of its per-dtype totals, and
// every tensor's bytes lie within the file.
#include "hwl/planner/safetensors.hpp"

#include "fuzz_support.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = planner::parseSafetensorsHeader(fuzz::text(data, size), size, "fuzz.safetensors");
  if (!s) return 0;
  uint64_t tensors = 0, params = 0, bytes = 0;
  for (const auto& [dtype, t] : s->by_dtype) {
    tensors += t.tensors;
    params += t.params;
    bytes += t.bytes;
  }
  HWL_FUZZ_CHECK(tensors == s->tensors && params == s->params && bytes == s->bytes,
                 "totals differ from the per-dtype sums");
  HWL_FUZZ_CHECK(s->bytes <= size,
                 std::to_string(s->bytes) + " bytes in a file of " + std::to_string(size));
  HWL_FUZZ_CHECK(s->tensor_params.size() == s->tensors, "tensor count");
  return 0;
}
