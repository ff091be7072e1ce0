// AMD through `rocm-smi --json`. The per-card keys changed across ROCm releases ("GPU ID" became
// "Device ID", "Card series" became "Card Series", "GPU memory use (%)" became
// "GPU Memory Read/Write Activity (%)" …); the parser accepts every spelling seen from 4.3 to 6.1.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/probes/probe.hpp"
#include "hwl/probes/sample.hpp"
#include "hwl/result.hpp"

namespace hwl::probes {

// The flags the probe passes (each documented by `rocm-smi --help`).
inline constexpr std::string_view kRocmSmiArgs[] = {
    "--showid",       "--showuniqueid", "--showproductname", "--showdriverversion", "--showmeminfo",
    "vram",           "--showuse",      "--showmemuse",      "--showtemp",          "--showpower",
    "--showmaxpower", "--showclocks",   "--showbus",         "--showpids",          "--json"};

struct RocmSmiReport {
  std::vector<GpuSample> gpus;  // in card order
  // From "PIDnnn": "name, gpu count, vram bytes, sdma, cu occupancy" in the "system" object.
  // rocm-smi does not say which card a process uses; with a single card they are attached to it.
  std::vector<ProcessSample> processes;
};

Result<RocmSmiReport> parseRocmSmiJson(std::string_view json);

struct RocmSmiSettings {
  std::string executable = "rocm-smi";
  std::chrono::milliseconds timeout{5000};
};

class RocmSmiProbe final : public Probe {
 public:
  explicit RocmSmiProbe(RocmSmiSettings settings) : settings_(std::move(settings)) {}
  [[nodiscard]] std::string name() const override { return "rocm-smi"; }
  Result<Sample> sample() override;

 private:
  RocmSmiSettings settings_;
};

}  // namespace hwl::probes
