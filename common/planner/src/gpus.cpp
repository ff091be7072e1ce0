// The GPU peak table. Figures are the vendors' datasheet peaks for dense math (sparsity figures
// halved where a datasheet quotes only those); docs/planner.md names the datasheet of each row.
#include "hwl/planner/gpus.hpp"

#include <array>
#include <cctype>

namespace hwl::planner {
namespace {

constexpr double kTB = 1e12;  // bytes/s per TB/s
constexpr double kTF = 1e12;  // FLOP/s per TFLOPS
constexpr std::uint64_t kGiB = 1ULL << 30;
constexpr std::uint64_t kGB = 1000ULL * 1000 * 1000;

struct Row {
  GpuPeak peak;
  // Normalised names (lower case letters and digits only) that denote this GPU; a reported name
  // matches a row when its normalised form contains every word of one alias.
  std::array<std::string_view, 4> aliases;
};

// Most specific first: "h100nvl" and "h100pcie" before plain "h100".
const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {{"H200", 4.8 * kTB, 989.4 * kTF, 1978.9 * kTF, 141 * kGB}, {"h200"}},
      {{"H100 NVL", 3.9 * kTB, 835.5 * kTF, 1670.5 * kTF, 94 * kGB}, {"h100nvl"}},
      {{"H100 PCIe", 2.0 * kTB, 756.5 * kTF, 1513.0 * kTF, 80 * kGB}, {"h100pcie"}},
      {{"H100 SXM", 3.35 * kTB, 989.4 * kTF, 1978.9 * kTF, 80 * kGB},
       {"h100sxm", "h10080gbhbm3", "h100"}},
      {{"A100 80GB PCIe", 1.935 * kTB, 312 * kTF, 0, 80 * kGB}, {"a10080gbpcie", "a100pcie80gb"}},
      {{"A100 40GB PCIe", 1.555 * kTB, 312 * kTF, 0, 40 * kGB}, {"a100pcie40gb", "a10040gbpcie"}},
      {{"A100 80GB SXM", 2.039 * kTB, 312 * kTF, 0, 80 * kGB},
       {"a100sxm480gb", "a10080gb", "a100sxm80gb"}},
      {{"A100 40GB SXM", 1.555 * kTB, 312 * kTF, 0, 40 * kGB},
       {"a100sxm440gb", "a10040gb", "a100"}},
      {{"L40S", 0.864 * kTB, 362.05 * kTF, 733 * kTF, 48 * kGB}, {"l40s"}},
      {{"L40", 0.864 * kTB, 181.05 * kTF, 362 * kTF, 48 * kGB}, {"l40"}},
      {{"L4", 0.300 * kTB, 121 * kTF, 242.5 * kTF, 24 * kGB}, {"l4"}},
      {{"A10", 0.600 * kTB, 125 * kTF, 0, 24 * kGB}, {"a10"}},
      {{"RTX 6000 Ada", 0.960 * kTB, 364.2 * kTF, 728.5 * kTF, 48 * kGB}, {"rtx6000ada"}},
      {{"RTX A6000", 0.768 * kTB, 154.8 * kTF, 0, 48 * kGB}, {"rtxa6000", "a6000"}},
      {{"RTX 4090", 1.008 * kTB, 165.2 * kTF, 330.3 * kTF, 24 * kGB}, {"rtx4090", "4090"}},
      {{"RTX 3090", 0.936 * kTB, 71 * kTF, 0, 24 * kGB}, {"rtx3090", "3090"}},
      {{"B200", 8.0 * kTB, 2250 * kTF, 4500 * kTF, 180 * kGB}, {"b200"}},
      {{"MI300X", 5.3 * kTB, 1307.4 * kTF, 2614.9 * kTF, 192 * kGB}, {"mi300x"}},
      {{"MI250X", 3.2 * kTB, 383 * kTF, 0, 128 * kGB}, {"mi250x"}},
      {{"MI250", 3.2 * kTB, 362.1 * kTF, 0, 128 * kGB}, {"mi250"}},
      {{"V100 SXM2", 0.900 * kTB, 125 * kTF, 0, 32 * kGiB}, {"v100"}},
      {{"T4", 0.320 * kTB, 65 * kTF, 0, 16 * kGB}, {"t4"}},
  };
  return kRows;
}

std::string normalise(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  // Vendor words and form-factor noise that reported names carry.
  for (std::string_view noise : {"nvidia", "amd", "instinct", "geforce", "tesla"}) {
    for (auto pos = out.find(noise); pos != std::string::npos; pos = out.find(noise)) {
      out.erase(pos, noise.size());
    }
  }
  return out;
}

}  // namespace

std::optional<GpuPeak> gpuPeak(std::string_view name) {
  const std::string n = normalise(name);
  if (n.empty()) return std::nullopt;
  // An alias matches as a prefix of the normalised name or as the whole of it, and so that a
  // short alias ("l4", "a10") does not match a longer model ("l40s", "a100"): the character after
  // it must not continue the model number.
  for (const Row& r : rows()) {
    for (std::string_view a : r.aliases) {
      if (a.empty() || n.compare(0, a.size(), a) != 0) continue;
      if (n.size() == a.size()) return r.peak;
      const char next = n[a.size()];
      if (std::isdigit(static_cast<unsigned char>(next)) != 0) continue;
      if (a == "l40" && next == 's') continue;
      return r.peak;
    }
  }
  return std::nullopt;
}

std::string unknownGpuMessage(std::string_view name) {
  std::string known;
  for (const Row& r : rows()) known += (known.empty() ? "" : ", ") + r.peak.name;
  return "unknown GPU '" + std::string(name) + "' (known: " + known + ")";
}

const std::vector<GpuPeak>& knownGpus() {
  static const std::vector<GpuPeak> kAll = [] {
    std::vector<GpuPeak> out;
    for (const Row& r : rows()) out.push_back(r.peak);
    return out;
  }();
  return kAll;
}

}  // namespace hwl::planner
