// CompositeProbe and backend detection.
#include <chrono>
#include <filesystem>

#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/nvml_probe.hpp"
#include "hwl/probes/probe.hpp"
#include "hwl/probes/procfs.hpp"
#include "hwl/probes/replay_probe.hpp"
#include "hwl/probes/rocm_smi.hpp"
#include "hwl/probes/subprocess.hpp"
#include "hwl/probes/sysfs.hpp"
#include "hwl/probes/text.hpp"

namespace hwl::probes {

std::int64_t unixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CompositeProbe::CompositeProbe(std::vector<std::unique_ptr<Probe>> probes)
    : probes_(std::move(probes)) {}

std::string CompositeProbe::name() const {
  std::string out;
  for (const auto& p : probes_) {
    if (!out.empty()) out += '+';
    out += p->name();
  }
  return out;
}

std::vector<std::string> CompositeProbe::backends() const {
  std::vector<std::string> out;
  out.reserve(probes_.size());
  for (const auto& p : probes_) out.push_back(p->name());
  return out;
}

Result<Sample> CompositeProbe::sample() {
  lastErrors_.clear();
  Sample merged;
  merged.timeMs = unixNowMs();
  auto take = [](auto& dst, const auto& src) {
    if (!dst && src) dst = src;
  };
  for (auto& p : probes_) {
    auto s = p->sample();
    if (!s) {
      lastErrors_.push_back(Error{s.error().code, p->name() + ": " + s.error().message});
      continue;
    }
    for (auto& g : s->gpus) merged.gpus.push_back(std::move(g));
    HostSample& h = merged.host;
    if (h.cpuModel.empty()) h.cpuModel = s->host.cpuModel;
    take(h.cpuCores, s->host.cpuCores);
    take(h.cpuUtilPct, s->host.cpuUtilPct);
    take(h.memoryTotalBytes, s->host.memoryTotalBytes);
    take(h.memoryAvailableBytes, s->host.memoryAvailableBytes);
    take(h.packagePowerW, s->host.packagePowerW);
  }
  if (!probes_.empty() && lastErrors_.size() == probes_.size()) {
    return Error{lastErrors_.front().code,
                 "every probe failed; first: " + lastErrors_.front().message};
  }
  return merged;
}

namespace {

using ProbePtr = std::unique_ptr<Probe>;

// A backend that answers with at least one GPU.
Result<ProbePtr> tryBackend(const std::string& which, const ProbeConfig& c) {
  ProbePtr probe;
  if (which == "nvml") {
    auto p = NvmlProbe::open({.library = c.nvmlLibrary});
    if (!p) return p.error();
    probe = std::move(*p);
  } else if (which == "nvidia-smi") {
    if (!findExecutable(c.nvidiaSmi))
      return unavailable("nvidia-smi not available: " + c.nvidiaSmi + " not found");
    probe = std::make_unique<NvidiaSmiProbe>(
        NvidiaSmiSettings{.executable = c.nvidiaSmi, .timeout = c.commandTimeout});
  } else if (which == "rocm-smi") {
    if (!findExecutable(c.rocmSmi))
      return unavailable("rocm-smi not available: " + c.rocmSmi + " not found");
    probe = std::make_unique<RocmSmiProbe>(
        RocmSmiSettings{.executable = c.rocmSmi, .timeout = c.commandTimeout});
  } else if (which == "sysfs") {
    probe = std::make_unique<SysfsGpuProbe>(c.sysRoot);
  } else {
    return invalidArgument("unknown GPU source \"" + which + "\"");
  }
  auto first = probe->sample();
  if (!first) return first.error();
  if (first->gpus.empty()) return unavailable(which + ": no GPU found");
  return probe;
}

}  // namespace

Result<std::unique_ptr<CompositeProbe>> detectProbes(const ProbeConfig& config) {
  std::vector<ProbePtr> probes;
  const std::string& src = config.gpuSource;
  if (startsWith(src, "replay:")) {
    auto p = ReplayProbe::open(src.substr(7));
    if (!p) return p.error();
    probes.push_back(std::move(*p));
  } else if (src == "auto") {
    for (const char* which : {"nvml", "nvidia-smi", "rocm-smi", "sysfs"}) {
      auto p = tryBackend(which, config);
      if (p) {
        probes.push_back(std::move(*p));
        break;
      }
    }
  } else if (src != "none") {
    auto p = tryBackend(src, config);
    if (!p) return p.error();
    probes.push_back(std::move(*p));
  }
  if (config.hostMetrics) {
    auto rapl = std::make_unique<RaplProbe>(config.sysRoot);
    if (!readRaplZones(config.sysRoot).empty()) probes.push_back(std::move(rapl));
    probes.push_back(std::make_unique<ProcHostProbe>(config.procRoot));
  }
  return std::make_unique<CompositeProbe>(std::move(probes));
}

}  // namespace hwl::probes
