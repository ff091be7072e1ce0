// nvidia-smi's CSV output: --query-gpu and --query-compute-apps (with a header line, or without
// one in the probe's own field order), and `nvidia-smi -L`. The first input byte picks the form.
// Invariants: processes attach only to GPUs of their uuid, and the parsed samples export cleanly.
#include "fuzz_support.hpp"
#include "hwl/probes/nvidia_smi.hpp"
#include "probe_check.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t form = data[0] % 3;
  auto in = fuzz::text(data + 1, size - 1);
  if (form == 2) {
    auto list = probes::parseNvidiaSmiList(in);
    (void)list;
    return 0;
  }
  // Either the first half is the GPU table and the rest the process table ("\f" between them).
  auto [gpu_csv, apps_csv] = fuzz::splitOnce(in, '\f');
  auto gpus = form == 0 ? probes::parseQueryGpuCsv(gpu_csv)
                        : probes::parseQueryGpuCsv(gpu_csv, probes::kQueryGpuFields);
  if (!gpus) return 0;
  auto apps = form == 0 ? probes::parseComputeAppsCsv(apps_csv)
                        : probes::parseComputeAppsCsv(apps_csv, probes::kQueryComputeAppsFields);
  if (apps) {
    size_t before = 0;
    for (const auto& g : *gpus) before += g.processes.size();
    size_t orphans = probes::attachProcesses(*gpus, *apps);
    size_t after = 0;
    for (const auto& g : *gpus) after += g.processes.size();
    HWL_FUZZ_CHECK(orphans <= apps->size(), "orphans");
    HWL_FUZZ_CHECK(after - before <= apps->size(), "attached more processes than reported");
  }
  fuzz::checkExport(*gpus);
  return 0;
}
