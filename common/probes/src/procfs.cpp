// /proc parsers and the host probe.
#include "hwl/probes/procfs.hpp"

#include <unistd.h>

#include "hwl/files.hpp"
#include "hwl/probes/text.hpp"

namespace hwl::probes {

Result<CpuTimes> parseProcStat(std::string_view text) {
  for (auto line : splitLines(text)) {
    if (!startsWith(line, "cpu ")) continue;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    std::vector<std::uint64_t> v;
    for (auto tok : split(trim(line.substr(4)), ' ')) {
      if (tok.empty()) continue;
      const auto n = parseUnsigned(tok);
      if (!n) return invalidArgument("/proc/stat: bad value '" + std::string(tok) + "'");
      v.push_back(*n);
    }
    if (v.size() < 4) return invalidArgument("/proc/stat: short cpu line");
    CpuTimes t;
    t.idle = v[3] + (v.size() > 4 ? v[4] : 0);
    // guest and guest_nice are already counted in user and nice.
    for (std::size_t i = 0; i < v.size() && i < 8; ++i) {
      if (i != 3 && i != 4) t.busy += v[i];
    }
    return t;
  }
  return invalidArgument("/proc/stat: no aggregate cpu line");
}

std::optional<double> cpuUtilizationPct(const CpuTimes& before, const CpuTimes& after) {
  if (after.total() <= before.total() || after.busy < before.busy || after.idle < before.idle) {
    return std::nullopt;
  }
  const auto total = static_cast<double>(after.total() - before.total());
  return 100.0 * static_cast<double>(after.busy - before.busy) / total;
}

MemInfo parseMeminfo(std::string_view text) {
  MemInfo m;
  auto kib = [](std::string_view rest) -> std::optional<std::uint64_t> {
    const auto v = parseUnsigned(trim(rest));  // "16318256 kB"
    if (!v) return std::nullopt;
    return *v * 1024;
  };
  for (auto line : splitLines(text)) {
    if (startsWith(line, "MemTotal:")) m.total_bytes = kib(line.substr(9));
    if (startsWith(line, "MemAvailable:")) m.available_bytes = kib(line.substr(13));
  }
  return m;
}

CpuInfo parseCpuinfo(std::string_view text) {
  CpuInfo info;
  std::string fallback;
  for (auto line : splitLines(text)) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const auto key = trim(line.substr(0, colon));
    const auto value = trim(line.substr(colon + 1));
    if (key == "processor" && parseUnsigned(value)) ++info.logical_cpus;
    if (key == "model name" && info.model.empty()) info.model = std::string(value);
    if ((key == "Hardware" || key == "cpu model" || key == "Processor") && fallback.empty()) {
      fallback = std::string(value);
    }
  }
  if (info.model.empty()) info.model = fallback;
  return info;
}

Result<AgentSelfStats> readProcessStats(const std::string& procRoot, const std::string& pid) {
  auto stat = files::readFile(procRoot + "/" + pid + "/stat");
  if (!stat) return stat.error();
  // The command name (field 2) may contain spaces and parentheses: fields resume after the last
  // ')'.
  const auto close = stat->rfind(')');
  if (close == std::string::npos) return invalidArgument("stat: no command name");
  std::vector<std::string_view> f;
  for (auto tok : split(trim(std::string_view(*stat).substr(close + 1)), ' ')) {
    if (!tok.empty()) f.push_back(tok);
  }
  // f[0] is field 3 (state); utime is field 14, stime 15, rss (pages) 24.
  if (f.size() < 22) return invalidArgument("stat: too few fields");
  const auto utime = parseUnsigned(f[11]);
  const auto stime = parseUnsigned(f[12]);
  const auto rss = parseUnsigned(f[21]);
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  AgentSelfStats s;
  if (utime && stime && ticks > 0) {
    s.cpu_seconds_total = static_cast<double>(*utime + *stime) / static_cast<double>(ticks);
  }
  if (rss && page > 0) s.resident_memory_bytes = *rss * static_cast<std::uint64_t>(page);
  return s;
}

Result<Sample> ProcHostProbe::sample() {
  Sample s;
  s.time_ms = unixNowMs();
  if (!cpu_info_) {
    if (auto text = files::readFile(proc_root_ + "/cpuinfo")) cpu_info_ = parseCpuinfo(*text);
  }
  if (cpu_info_) {
    s.host.cpu_model = cpu_info_->model;
    if (cpu_info_->logical_cpus > 0) s.host.cpu_cores = cpu_info_->logical_cpus;
  }
  if (!s.host.cpu_cores) {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0) s.host.cpu_cores = static_cast<std::uint32_t>(n);
  }
  auto meminfo = files::readFile(proc_root_ + "/meminfo");
  if (!meminfo) return meminfo.error();
  const auto mem = parseMeminfo(*meminfo);
  s.host.memory_total_bytes = mem.total_bytes;
  s.host.memory_available_bytes = mem.available_bytes;
  auto stat = files::readFile(proc_root_ + "/stat");
  if (!stat) return stat.error();
  auto times = parseProcStat(*stat);
  if (!times) return times.error();
  if (last_) s.host.cpu_util_pct = cpuUtilizationPct(*last_, *times);
  last_ = *times;
  return s;
}

}  // namespace hwl::probes
