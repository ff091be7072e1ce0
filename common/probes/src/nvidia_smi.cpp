// nvidia-smi CSV and `-L` parsers, and the nvidia-smi probe.
#include "hwl/probes/nvidia_smi.hpp"

#include <cmath>
#include <initializer_list>
#include <optional>

#include "hwl/probes/subprocess.hpp"
#include "hwl/probes/text.hpp"

namespace hwl::probes {
namespace {

// "memory.total [MiB]" -> "memory.total".
std::string_view fieldName(std::string_view header) {
  header = trim(header);
  const auto bracket = header.find(" [");
  if (bracket != std::string_view::npos) header = header.substr(0, bracket);
  return trim(header);
}

struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;

  [[nodiscard]] std::optional<std::size_t> column(
      std::initializer_list<std::string_view> names) const {
    for (auto n : names) {
      for (std::size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] == n) return i;
      }
    }
    return std::nullopt;
  }
};

// nvidia-smi writes ", " between values and never quotes. When a row has more values than
// columns (a value contained ", "), the surplus is folded back into `spillColumn`.
Result<CsvTable> parseCsv(std::string_view csv, std::span<const std::string_view> fields,
                          std::initializer_list<std::string_view> spillNames) {
  CsvTable t;
  auto lines = splitLines(csv);
  std::size_t first = 0;
  if (fields.empty()) {
    while (first < lines.size() && trim(lines[first]).empty()) ++first;
    if (first >= lines.size()) return invalidArgument("csv: no header line");
    for (auto h : split(lines[first], ',')) t.columns.emplace_back(fieldName(h));
    ++first;
  } else {
    for (auto f : fields) t.columns.emplace_back(f);
  }
  const auto spill = t.column(spillNames);
  for (std::size_t li = first; li < lines.size(); ++li) {
    if (trim(lines[li]).empty()) continue;
    auto parts = split(lines[li], ',');
    if (parts.size() < t.columns.size()) {
      return invalidArgument("csv: line " + std::to_string(li + 1) + " has " +
                             std::to_string(parts.size()) + " values for " +
                             std::to_string(t.columns.size()) + " columns");
    }
    if (parts.size() > t.columns.size()) {
      if (!spill) {
        return invalidArgument("csv: line " + std::to_string(li + 1) + " has too many values");
      }
      const std::size_t extra = parts.size() - t.columns.size();
      const auto* begin = parts[*spill].data();
      const auto* end = parts[*spill + extra].data() + parts[*spill + extra].size();
      parts[*spill] = std::string_view(begin, static_cast<std::size_t>(end - begin));
      parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(*spill) + 1,
                  parts.begin() + static_cast<std::ptrdiff_t>(*spill + extra) + 1);
    }
    std::vector<std::string> row;
    row.reserve(parts.size());
    for (auto p : parts) row.emplace_back(trim(p));
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string textOrEmpty(const std::vector<std::string>& row, std::optional<std::size_t> col) {
  if (!col) return {};
  const auto& v = row[*col];
  // "[N/A]", "[Not Supported]", "[Unknown Error]"… are placeholders, not names.
  return v.empty() || v.front() == '[' || v == "N/A" ? std::string() : v;
}

std::optional<double> metric(const std::vector<std::string>& row, std::optional<std::size_t> col) {
  if (!col) return std::nullopt;
  return parseMetric(row[*col]);
}

std::optional<std::uint32_t> mhz(const std::vector<std::string>& row,
                                 std::optional<std::size_t> col) {
  const auto v = metric(row, col);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<std::uint32_t>(std::lround(*v));
}

std::optional<std::uint64_t> mib(const std::vector<std::string>& row,
                                 std::optional<std::size_t> col) {
  if (!col) return std::nullopt;
  return parseMibAsBytes(row[*col]);
}

}  // namespace

Result<std::vector<GpuSample>> parseQueryGpuCsv(std::string_view csv,
                                                std::span<const std::string_view> fields) {
  auto table = parseCsv(csv, fields, {"name", "gpu_name"});
  if (!table) return table.error();
  const auto& t = *table;
  const auto cUuid = t.column({"uuid", "gpu_uuid"});
  if (!cUuid) return invalidArgument("csv: no uuid column");
  const auto cIndex = t.column({"index"});
  const auto cName = t.column({"name", "gpu_name"});
  const auto cDriver = t.column({"driver_version"});
  const auto cBus = t.column({"pci.bus_id", "gpu_bus_id"});
  const auto cTotal = t.column({"memory.total"});
  const auto cUsed = t.column({"memory.used"});
  const auto cFree = t.column({"memory.free"});
  const auto cUtil = t.column({"utilization.gpu"});
  const auto cMemUtil = t.column({"utilization.memory"});
  const auto cTemp = t.column({"temperature.gpu"});
  const auto cPower = t.column({"power.draw", "power.draw.instant", "power.draw.average"});
  const auto cLimit = t.column({"power.limit", "enforced.power.limit", "gpu.power.current_limit"});
  const auto cSm = t.column({"clocks.sm", "clocks.current.sm"});
  const auto cMem = t.column({"clocks.mem", "clocks.current.memory"});

  std::vector<GpuSample> gpus;
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    GpuSample g;
    g.vendor = "nvidia";
    g.index = static_cast<std::uint32_t>(r);
    if (cIndex) {
      const auto idx = parseUnsigned(row[*cIndex]);
      if (!idx) return invalidArgument("csv: bad index '" + row[*cIndex] + "'");
      g.index = static_cast<std::uint32_t>(*idx);
    }
    g.uuid = row[*cUuid];
    if (g.uuid.empty() || g.uuid.front() == '[') return invalidArgument("csv: GPU without uuid");
    g.name = textOrEmpty(row, cName);
    g.driver_version = textOrEmpty(row, cDriver);
    g.pci_bus_id = textOrEmpty(row, cBus);
    g.memory_total_bytes = mib(row, cTotal);
    g.memory_used_bytes = mib(row, cUsed);
    g.memory_free_bytes = mib(row, cFree);
    g.utilization_gpu_pct = metric(row, cUtil);
    g.utilization_memory_pct = metric(row, cMemUtil);
    g.temperature_c = metric(row, cTemp);
    g.power_w = metric(row, cPower);
    g.power_limit_w = metric(row, cLimit);
    g.clock_sm_mhz = mhz(row, cSm);
    g.clock_mem_mhz = mhz(row, cMem);
    gpus.push_back(std::move(g));
  }
  return gpus;
}

Result<std::vector<ComputeApp>> parseComputeAppsCsv(std::string_view csv,
                                                    std::span<const std::string_view> fields) {
  auto table = parseCsv(csv, fields, {"process_name", "name"});
  if (!table) return table.error();
  const auto& t = *table;
  const auto cUuid = t.column({"gpu_uuid"});
  const auto cPid = t.column({"pid"});
  const auto cName = t.column({"process_name", "name"});
  const auto cMem = t.column({"used_memory", "used_gpu_memory"});
  if (!cUuid || !cPid) return invalidArgument("csv: compute apps need gpu_uuid and pid columns");
  std::vector<ComputeApp> apps;
  for (const auto& row : t.rows) {
    ComputeApp a;
    a.gpu_uuid = row[*cUuid];
    const auto pid = parseUnsigned(row[*cPid]);
    if (!pid) return invalidArgument("csv: bad pid '" + row[*cPid] + "'");
    a.process.pid = static_cast<std::uint32_t>(*pid);
    if (cName) a.process.name = row[*cName];
    a.process.memory_bytes = mib(row, cMem);
    apps.push_back(std::move(a));
  }
  return apps;
}

std::size_t attachProcesses(std::vector<GpuSample>& gpus, const std::vector<ComputeApp>& apps) {
  std::size_t orphans = 0;
  for (const auto& a : apps) {
    bool found = false;
    for (auto& g : gpus) {
      if (g.uuid == a.gpu_uuid) {
        g.processes.push_back(a.process);
        found = true;
        break;
      }
    }
    orphans += found ? 0 : 1;
  }
  return orphans;
}

Result<std::vector<ListedGpu>> parseNvidiaSmiList(std::string_view text) {
  std::vector<ListedGpu> out;
  auto uuidIn = [](std::string_view line) -> std::string {
    const auto p = line.find("(UUID: ");
    if (p == std::string_view::npos) return {};
    const auto e = line.find(')', p);
    if (e == std::string_view::npos) return {};
    return std::string(trim(line.substr(p + 7, e - p - 7)));
  };
  for (auto raw : splitLines(text)) {
    const auto line = trim(raw);
    if (line.empty()) continue;
    if (startsWith(line, "GPU ")) {
      const auto colon = line.find(':');
      const auto idx =
          colon == std::string_view::npos ? std::nullopt : parseUnsigned(line.substr(4, colon - 4));
      if (!idx) return invalidArgument("nvidia-smi -L: bad line '" + std::string(line) + "'");
      ListedGpu g;
      g.index = static_cast<std::uint32_t>(*idx);
      const auto paren = line.find(" (UUID: ");
      g.name = std::string(
          trim(line.substr(colon + 1, paren == std::string_view::npos ? std::string_view::npos
                                                                      : paren - colon - 1)));
      g.uuid = uuidIn(line);
      out.push_back(std::move(g));
    } else if (startsWith(line, "MIG ")) {
      if (out.empty()) return invalidArgument("nvidia-smi -L: MIG device before any GPU");
      // "MIG 3g.40gb     Device  0: (UUID: MIG-…)"
      const auto dev = line.find("Device");
      const auto colon = line.find(':', dev == std::string_view::npos ? 0 : dev);
      if (dev == std::string_view::npos || colon == std::string_view::npos) {
        return invalidArgument("nvidia-smi -L: bad line '" + std::string(line) + "'");
      }
      const auto idx = parseUnsigned(line.substr(dev + 6, colon - dev - 6));
      if (!idx) return invalidArgument("nvidia-smi -L: bad MIG index");
      MigDeviceSample m;
      m.index = static_cast<std::uint32_t>(*idx);
      m.profile = std::string(trim(line.substr(4, dev - 4)));
      m.uuid = uuidIn(line);
      out.back().mig_devices.push_back(std::move(m));
    }
  }
  return out;
}

Result<Sample> NvidiaSmiProbe::sample() {
  std::string query = "--query-gpu=";
  for (std::size_t i = 0; i < std::size(kQueryGpuFields); ++i) {
    if (i > 0) query += ',';
    query += kQueryGpuFields[i];
  }
  CommandSettings cs{.timeout = settings_.timeout};
  auto gpuRun = runCommand({settings_.executable, query, "--format=csv,noheader,nounits"}, cs);
  if (!gpuRun) return gpuRun.error();
  if (gpuRun->exit_code != 0) {
    return unavailable("nvidia-smi exited with " + std::to_string(gpuRun->exit_code) + ": " +
                       std::string(trim(gpuRun->out + gpuRun->err)));
  }
  auto gpus = parseQueryGpuCsv(gpuRun->out, kQueryGpuFields);
  if (!gpus) return gpus.error();

  std::string appsQuery = "--query-compute-apps=";
  for (std::size_t i = 0; i < std::size(kQueryComputeAppsFields); ++i) {
    if (i > 0) appsQuery += ',';
    appsQuery += kQueryComputeAppsFields[i];
  }
  // Processes are best effort: a GPU reading without them is still worth reporting.
  auto appsRun = runCommand({settings_.executable, appsQuery, "--format=csv,noheader,nounits"}, cs);
  if (appsRun && appsRun->exit_code == 0) {
    auto apps = parseComputeAppsCsv(appsRun->out, kQueryComputeAppsFields);
    if (apps) attachProcesses(*gpus, *apps);
  }
  Sample s;
  s.time_ms = unixNowMs();
  s.gpus = std::move(*gpus);
  return s;
}

}  // namespace hwl::probes
