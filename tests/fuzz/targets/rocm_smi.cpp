// `rocm-smi --json` output of every ROCm release the parser knows. Invariant: the parsed cards
// and processes export cleanly.
#include "hwl/probes/rocm_smi.hpp"

#include "fuzz_support.hpp"
#include "probe_check.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = probes::parseRocmSmiJson(fuzz::text(data, size));
  if (!r) return 0;
  auto gpus = r->gpus;
  if (!gpus.empty())
    gpus[0].processes.insert(gpus[0].processes.end(), r->processes.begin(), r->processes.end());
  fuzz::checkExport(gpus);
  return 0;
}
