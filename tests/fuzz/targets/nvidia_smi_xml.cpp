// `nvidia-smi -q -x` documents: the strict XML reader, then the GPU/process/MIG extraction.
// Invariants: an accepted document's tree is within the depth bound, and its samples export
// cleanly.
#include "fuzz_support.hpp"
#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/xml.hpp"
#include "probe_check.hpp"

using namespace hwl;

namespace {

int depth(const probes::XmlElement& e) {
  int d = 0;
  for (const auto& c : e.children) d = std::max(d, depth(c));
  return d + 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = fuzz::text(data, size);
  auto root = probes::parseXml(in);
  if (root) HWL_FUZZ_CHECK(depth(*root) <= probes::kXmlMaxDepth + 1, "too deep");
  auto gpus = probes::parseNvidiaSmiXml(in);
  if (!gpus) return 0;
  HWL_FUZZ_CHECK(root.has_value(), "GPUs from a document the XML reader refuses");
  fuzz::checkExport(*gpus);
  return 0;
}
