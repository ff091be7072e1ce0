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
  last_errors_.clear();
  Sample merged;
  merged.time_ms = unixNowMs();
  auto take = [](auto& dst, const auto& src) {
    if (!dst && src) dst = src;
  };
  for (auto& p : probes_) {
    auto s = p->sample();
    if (!s) {
      last_errors_.push_back(Error{s.error().code, p->name() + ": " + s.error().message});
      continue;
    }
    for (auto& g : s->gpus) merged.gpus.push_back(std::move(g));
    HostSample& h = merged.host;
    if (h.cpu_model.empty()) h.cpu_model = s->host.cpu_model;
    take(h.cpu_cores, s->host.cpu_cores);
    take(h.cpu_util_pct, s->host.cpu_util_pct);
    take(h.memory_total_bytes, s->host.memory_total_bytes);
    take(h.memory_available_bytes, s->host.memory_available_bytes);
    take(h.package_power_w, s->host.package_power_w);
  }
  if (!probes_.empty() && last_errors_.size() == probes_.size()) {
    return Error{last_errors_.front().code,
                 "every probe failed; first: " + last_errors_.front().message};
  }
  return merged;
}

namespace {

using ProbePtr = std::unique_ptr<Probe>;

// A backend that answers with at least one GPU.
Result<ProbePtr> tryBackend(const std::string& which, const ProbeConfig& c) {
  ProbePtr probe;
  if (which == "nvml") {
    auto p = NvmlProbe::open({.library = c.nvml_library});
    if (!p) return p.error();
    probe = std::move(*p);
  } else if (which == "nvidia-smi") {
    if (!findExecutable(c.nvidia_smi))
      return unavailable("nvidia-smi not available: " + c.nvidia_smi + " not found");
    probe = std::make_unique<NvidiaSmiProbe>(
        NvidiaSmiSettings{.executable = c.nvidia_smi, .timeout = c.command_timeout});
  } else if (which == "rocm-smi") {
    if (!findExecutable(c.rocm_smi))
      return unavailable("rocm-smi not available: " + c.rocm_smi + " not found");
    probe = std::make_unique<RocmSmiProbe>(
        RocmSmiSettings{.executable = c.rocm_smi, .timeout = c.command_timeout});
  } else if (which == "sysfs") {
    probe = std::make_unique<SysfsGpuProbe>(c.sys_root);
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
  const std::string& src = config.gpu_source;
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
  if (config.host_metrics) {
    auto rapl = std::make_unique<RaplProbe>(config.sys_root);
    if (!readRaplZones(config.sys_root).empty()) probes.push_back(std::move(rapl));
    probes.push_back(std::make_unique<ProcHostProbe>(config.proc_root));
  }
  return std::make_unique<CompositeProbe>(std::move(probes));
}

}  // namespace hwl::probes
