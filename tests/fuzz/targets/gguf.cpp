// GGUF files (v2/v3 header, metadata, tensor infos): the whole input is the file. Invariants: the
// reader never reads past the file, accepted tensors lie inside it, and the spec built from an
// accepted file plans without overflow.
#include "hwl/planner/gguf.hpp"

#include <sstream>

#include "fuzz_support.hpp"
#include "plan_check.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(fuzz::text(data, size));
  std::istringstream in(bytes);
  // Small limits, so a count in the input cannot make one run allocate gigabytes.
  planner::GgufLimits limits;
  limits.max_string = 1 << 16;
  limits.max_array = 1 << 16;
  limits.max_kv = 1 << 12;
  limits.max_tensors = 1 << 12;
  auto f = planner::readGguf(in, size, limits);
  if (!f) return 0;
  HWL_FUZZ_CHECK(f->bytes_read <= size, std::to_string(f->bytes_read));
  // The data section starts at the aligned end of the header (past the end of a file without
  // tensors); every tensor lies inside the file.
  if (!f->tensors.empty()) HWL_FUZZ_CHECK(f->data_offset <= size, std::to_string(f->data_offset));
  for (const auto& t : f->tensors) {
    std::uint64_t end = 0;
    bool wraps = __builtin_add_overflow(f->data_offset, t.offset, &end) ||
                 __builtin_add_overflow(end, t.bytes, &end);
    HWL_FUZZ_CHECK(!wraps && end <= size, t.name + " outside the file");
  }
  auto spec = planner::ggufToSpec(*f, "fuzz");
  if (!spec) return 0;
  fuzz::checkPlans(*spec);
  return 0;
}
