// NVIDIA through NVML, loaded at run time with dlopen so that the agent neither links against
// nor needs the NVIDIA driver at build time. Only the functions used are declared, with the
// C signatures documented in the NVML API reference.
#pragma once

#include <memory>
#include <string>

#include "hwl/probes/probe.hpp"
#include "hwl/result.hpp"

namespace hwl::probes {

struct NvmlSettings {
  std::string library = "libnvidia-ml.so.1";
};

class NvmlProbe final : public Probe {
 public:
  // Unavailable ("NVML not available: …") when the library cannot be loaded, lacks a
  // required symbol, or nvmlInit_v2 fails (no driver, no GPU).
  static Result<std::unique_ptr<NvmlProbe>> open(const NvmlSettings& settings = {});
  ~NvmlProbe() override;  // nvmlShutdown, then dlclose
  NvmlProbe(const NvmlProbe&) = delete;
  NvmlProbe& operator=(const NvmlProbe&) = delete;

  [[nodiscard]] std::string name() const override { return "nvml"; }
  Result<Sample> sample() override;

  struct Api;  // the resolved function table (nvml_probe.cpp)

 private:
  explicit NvmlProbe(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

}  // namespace hwl::probes
