// rocm-smi JSON parser and probe.
#include "hwl/probes/rocm_smi.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <initializer_list>

#include "hwl/probes/subprocess.hpp"
#include "hwl/probes/text.hpp"

namespace hwl::probes {
namespace {

std::string_view str(const boost::json::object& o, std::initializer_list<std::string_view> keys) {
  for (auto k : keys) {
    if (const auto* v = o.if_contains(k); v != nullptr && v->is_string()) {
      return trim(std::string_view(v->as_string()));
    }
  }
  return {};
}

std::optional<double> num(const boost::json::object& o,
                          std::initializer_list<std::string_view> keys) {
  for (auto k : keys) {
    const auto* v = o.if_contains(k);
    if (v == nullptr) continue;
    if (v->is_number()) return v->to_number<double>();
    if (v->is_string()) {
      if (auto m = parseMetric(std::string_view(v->as_string()))) return m;
    }
  }
  return std::nullopt;
}

bool isHexId(std::string_view s) { return startsWith(s, "0x") && s.size() <= 6; }

// Text fields that hold "N/A" mean "unknown".
std::string known(std::string_view s) {
  if (s.empty() || startsWith(s, "N/A") || s == "[N/A]") return {};
  return std::string(s);
}

}  // namespace

Result<RocmSmiReport> parseRocmSmiJson(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(json, ec);
  if (ec) return invalidArgument("rocm-smi json: " + ec.message());
  if (!root.is_object()) return invalidArgument("rocm-smi json: top level is not an object");
  const auto& top = root.as_object();

  std::string driver;
  RocmSmiReport report;
  if (const auto* sys = top.if_contains("system"); sys != nullptr && sys->is_object()) {
    driver = known(str(sys->as_object(), {"Driver version"}));
    for (const auto& [key, value] : sys->as_object()) {
      if (!startsWith(key, "PID") || !value.is_string()) continue;
      const auto pid = parseUnsigned(std::string_view(key).substr(3));
      if (!pid) continue;
      const auto parts = split(std::string_view(value.as_string()), ',');
      ProcessSample p;
      p.pid = static_cast<std::uint32_t>(*pid);
      p.name = std::string(trim(parts[0]));
      if (parts.size() >= 3) p.memory_bytes = parseUnsigned(parts[2]);
      report.processes.push_back(std::move(p));
    }
  }

  std::vector<std::pair<std::uint32_t, const boost::json::object*>> cards;
  for (const auto& [key, value] : top) {
    if (!startsWith(key, "card")) continue;
    const auto idx = parseUnsigned(std::string_view(key).substr(4));
    if (!idx || !value.is_object())
      return invalidArgument("rocm-smi json: bad entry " + std::string(key));
    cards.emplace_back(static_cast<std::uint32_t>(*idx), &value.as_object());
  }
  std::sort(cards.begin(), cards.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  for (const auto& [idx, card] : cards) {
    const auto& c = *card;
    GpuSample g;
    g.index = idx;
    g.vendor = "amd";
    g.driver_version = driver;
    g.pci_bus_id = known(str(c, {"PCI Bus"}));
    const std::string uniqueId = known(str(c, {"Unique ID"}));
    if (!uniqueId.empty()) {
      g.uuid = uniqueId;
    } else if (!g.pci_bus_id.empty()) {
      g.uuid = "PCI-" + g.pci_bus_id;
    } else {
      g.uuid = "AMD-card" + std::to_string(idx);
    }
    // ROCm 4.3 printed the vendor id ("0x1002") under "Card series"; skip such ids.
    for (auto k : {"Device Name", "Card Series", "Card series"}) {
      const std::string v = known(str(c, {k}));
      if (!v.empty() && !isHexId(v)) {
        g.name = v;
        break;
      }
    }
    if (g.name.empty()) {
      const std::string devId = known(str(c, {"Device ID", "GPU ID"}));
      g.name = devId.empty() ? "AMD GPU" : "AMD GPU " + devId;
    }
    // Byte counts outside [0, 2^64) are not byte counts (and would not convert).
    auto bytes = [](std::optional<double> v) -> std::optional<double> {
      if (!v || !(*v >= 0.0 && *v < 18446744073709551616.0)) return std::nullopt;
      return v;
    };
    const auto total = bytes(num(c, {"VRAM Total Memory (B)"}));
    const auto used = bytes(num(c, {"VRAM Total Used Memory (B)"}));
    if (total) g.memory_total_bytes = static_cast<std::uint64_t>(*total);
    if (used) g.memory_used_bytes = static_cast<std::uint64_t>(*used);
    if (total && used && *total >= *used) {
      g.memory_free_bytes = static_cast<std::uint64_t>(*total - *used);
    }
    g.utilization_gpu_pct = num(c, {"GPU use (%)"});
    // Memory controller activity (the analogue of NVIDIA's utilization.memory), not allocation.
    g.utilization_memory_pct = num(c, {"GPU Memory Read/Write Activity (%)", "GPU memory use (%)"});
    g.temperature_c =
        num(c, {"Temperature (Sensor edge) (C)", "Temperature (Sensor junction) (C)"});
    g.power_w =
        num(c, {"Average Graphics Package Power (W)", "Current Socket Graphics Package Power (W)"});
    g.power_limit_w = num(c, {"Max Graphics Package Power (W)"});
    if (const auto sclk = num(c, {"sclk clock speed:"})) {
      g.clock_sm_mhz = static_cast<std::uint32_t>(std::lround(*sclk));
    }
    if (const auto mclk = num(c, {"mclk clock speed:"})) {
      g.clock_mem_mhz = static_cast<std::uint32_t>(std::lround(*mclk));
    }
    if (const auto e = num(c, {"Accumulated Energy (uJ)"})) {
      if (*e >= 0) g.energy_mj = static_cast<std::uint64_t>(*e / 1000.0);
    }
    report.gpus.push_back(std::move(g));
  }
  if (report.gpus.size() == 1) report.gpus[0].processes = report.processes;
  return report;
}

Result<Sample> RocmSmiProbe::sample() {
  std::vector<std::string> argv{settings_.executable};
  for (auto a : kRocmSmiArgs) argv.emplace_back(a);
  auto run = runCommand(argv, CommandSettings{.timeout = settings_.timeout});
  if (!run) return run.error();
  // rocm-smi exits non-zero when one of many readings fails but still prints the JSON.
  const auto start = run->out.find('{');
  if (start == std::string::npos) {
    return unavailable("rocm-smi printed no JSON (exit " + std::to_string(run->exit_code) +
                       "): " + std::string(trim(run->err)));
  }
  auto report = parseRocmSmiJson(std::string_view(run->out).substr(start));
  if (!report) return report.error();
  Sample s;
  s.time_ms = unixNowMs();
  s.gpus = std::move(report->gpus);
  return s;
}

}  // namespace hwl::probes
