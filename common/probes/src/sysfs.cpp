// sysfs readers: DRM cards with their hwmon sensors, and RAPL powercap zones.
#include "hwl/probes/sysfs.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "hwl/files.hpp"
#include "hwl/probes/text.hpp"

namespace hwl::probes {
namespace fs = std::filesystem;
namespace {

std::optional<std::uint64_t> readU64(const fs::path& p) {
  const auto a = readAttribute(p.string());
  if (!a || a->empty()) return std::nullopt;
  return parseUnsigned(*a);
}

// "cardN" with only digits after "card".
std::optional<std::uint32_t> cardNumber(const std::string& name) {
  if (!startsWith(name, "card") || name.size() == 4) return std::nullopt;
  for (std::size_t i = 4; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
  }
  return static_cast<std::uint32_t>(std::stoul(name.substr(4)));
}

std::string vendorName(const std::string& vendorId) {
  if (vendorId == "0x1002") return "amd";
  if (vendorId == "0x10de") return "nvidia";
  if (vendorId == "0x8086") return "intel";
  return "unknown";
}

std::vector<fs::path> sortedEntries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void readHwmon(const fs::path& device, GpuSample& g) {
  for (const auto& hw : sortedEntries(device / "hwmon")) {
    if (!g.temperature_c) {
      // amdgpu labels temp1 "edge", temp2 "junction"; prefer edge like rocm-smi does.
      for (int i = 1; i <= 3 && !g.temperature_c; ++i) {
        const auto label = readAttribute((hw / ("temp" + std::to_string(i) + "_label")).string());
        if (i > 1 && label && *label != "edge") continue;
        if (const auto t = readU64(hw / ("temp" + std::to_string(i) + "_input"))) {
          g.temperature_c = static_cast<double>(*t) / 1000.0;
        }
      }
    }
    if (!g.power_w) {
      auto p = readU64(hw / "power1_average");
      if (!p) p = readU64(hw / "power1_input");
      if (p) g.power_w = static_cast<double>(*p) / 1e6;  // microwatts
    }
    if (!g.power_limit_w) {
      if (const auto cap = readU64(hw / "power1_cap"))
        g.power_limit_w = static_cast<double>(*cap) / 1e6;
    }
    if (!g.clock_sm_mhz) {
      if (const auto f = readU64(hw / "freq1_input")) {
        g.clock_sm_mhz = static_cast<std::uint32_t>(*f / 1000000);
      }
    }
    if (!g.clock_mem_mhz) {
      if (const auto f = readU64(hw / "freq2_input")) {
        g.clock_mem_mhz = static_cast<std::uint32_t>(*f / 1000000);
      }
    }
    if (!g.energy_mj) {
      if (const auto e = readU64(hw / "energy1_input")) g.energy_mj = *e / 1000;  // microjoules
    }
  }
}

std::vector<RaplZone> readZones(const std::string& sysRoot, bool topLevelOnly) {
  std::vector<RaplZone> zones;
  for (const auto& p : sortedEntries(fs::path(sysRoot) / "class" / "powercap")) {
    const std::string id = p.filename().string();
    if (!startsWith(id, "intel-rapl:") && !startsWith(id, "amd-rapl:")) continue;
    const auto colons = std::count(id.begin(), id.end(), ':');
    if (topLevelOnly && colons != 1) continue;
    const auto energy = readU64(p / "energy_uj");
    if (!energy) continue;  // unreadable (root-only since Linux 5.10 on many distributions)
    RaplZone z;
    z.id = id;
    z.name = readAttribute((p / "name").string()).value_or("");
    z.energy_uj = *energy;
    z.max_energy_range_uj = readU64(p / "max_energy_range_uj");
    zones.push_back(std::move(z));
  }
  return zones;
}

}  // namespace

std::vector<GpuSample> readDrmCards(const std::string& sysRoot) {
  std::vector<GpuSample> gpus;
  for (const auto& entry : sortedEntries(fs::path(sysRoot) / "class" / "drm")) {
    const auto n = cardNumber(entry.filename().string());
    if (!n) continue;
    const fs::path dev = entry / "device";
    const auto vendorId = readAttribute((dev / "vendor").string());
    if (!vendorId || vendorId->empty()) continue;
    GpuSample g;
    g.index = *n;
    g.vendor = vendorName(*vendorId);
    const auto deviceId = readAttribute((dev / "device").string()).value_or("");
    if (const auto uevent = files::readFile(dev / "uevent")) {
      for (auto line : splitLines(*uevent)) {
        if (startsWith(line, "PCI_SLOT_NAME=")) g.pci_bus_id = std::string(line.substr(14));
      }
    }
    if (g.pci_bus_id.empty()) {
      std::error_code ec;
      const auto real = fs::canonical(dev, ec);
      if (!ec) g.pci_bus_id = real.filename().string();
    }
    const auto uniqueId = readAttribute((dev / "unique_id").string());
    if (uniqueId && !uniqueId->empty()) {
      g.uuid = *uniqueId;
    } else if (!g.pci_bus_id.empty()) {
      g.uuid = "PCI-" + g.pci_bus_id;
    } else {
      g.uuid = "DRM-" + entry.filename().string();
    }
    const auto product = readAttribute((dev / "product_name").string());
    if (product && !product->empty()) {
      g.name = *product;
    } else {
      const std::string v = g.vendor == "amd"      ? "AMD"
                            : g.vendor == "nvidia" ? "NVIDIA"
                            : g.vendor == "intel"  ? "Intel"
                                                   : *vendorId;
      g.name = v + " GPU " + deviceId;
    }
    std::error_code ec;
    const auto driver = fs::read_symlink(dev / "driver", ec);
    if (!ec) {
      const auto version =
          readAttribute((fs::path(sysRoot) / "module" / driver.filename() / "version").string());
      g.driver_version = version.value_or("");
    }
    g.memory_total_bytes = readU64(dev / "mem_info_vram_total");
    g.memory_used_bytes = readU64(dev / "mem_info_vram_used");
    if (g.memory_total_bytes && g.memory_used_bytes &&
        *g.memory_total_bytes >= *g.memory_used_bytes) {
      g.memory_free_bytes = *g.memory_total_bytes - *g.memory_used_bytes;
    }
    if (const auto b = readU64(dev / "gpu_busy_percent"))
      g.utilization_gpu_pct = static_cast<double>(*b);
    if (const auto b = readU64(dev / "mem_busy_percent")) {
      g.utilization_memory_pct = static_cast<double>(*b);
    }
    readHwmon(dev, g);
    gpus.push_back(std::move(g));
  }
  std::sort(gpus.begin(), gpus.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  return gpus;
}

std::vector<RaplZone> readRaplZones(const std::string& sysRoot) { return readZones(sysRoot, true); }
std::vector<RaplZone> readAllRaplZones(const std::string& sysRoot) {
  return readZones(sysRoot, false);
}

std::optional<std::uint64_t> raplEnergyDeltaUj(std::uint64_t before, std::uint64_t after,
                                               std::optional<std::uint64_t> maxRangeUj) {
  if (after >= before) return after - before;
  if (!maxRangeUj || before > *maxRangeUj) return std::nullopt;
  // The counter wrapped: it counts from 0 to max_energy_range_uj inclusive.
  return (*maxRangeUj - before) + after + 1;
}

Result<Sample> SysfsGpuProbe::sample() {
  Sample s;
  s.time_ms = unixNowMs();
  s.gpus = readDrmCards(sys_root_);
  return s;
}

Result<Sample> RaplProbe::sample() {
  const auto zones = readRaplZones(sys_root_);
  const auto now = now_();
  if (zones.empty()) return unavailable("no readable RAPL zone under " + sys_root_);
  bool anyPackage = false;
  for (const auto& z : zones) anyPackage = anyPackage || startsWith(z.name, "package");
  Sample s;
  s.time_ms = unixNowMs();
  std::map<std::string, std::uint64_t> current;
  std::uint64_t sumUj = 0;
  bool complete = last_time_.has_value();
  for (const auto& z : zones) {
    if (anyPackage ? !startsWith(z.name, "package") : z.name == "psys") continue;
    current[z.id] = z.energy_uj;
    const auto it = last_uj_.find(z.id);
    if (it == last_uj_.end()) {
      complete = false;
      continue;
    }
    const auto d = raplEnergyDeltaUj(it->second, z.energy_uj, z.max_energy_range_uj);
    if (!d) {
      complete = false;
      continue;
    }
    sumUj += *d;
  }
  if (complete) {
    const double seconds = std::chrono::duration<double>(now - *last_time_).count();
    if (seconds > 0) s.host.package_power_w = static_cast<double>(sumUj) / 1e6 / seconds;
  }
  last_uj_ = std::move(current);
  last_time_ = now;
  return s;
}

}  // namespace hwl::probes
