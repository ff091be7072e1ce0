// JSON and Prometheus renderings of a Sample.
#include "hwl/probes/exporters.hpp"

#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "hwl/json.hpp"

namespace hwl::probes {
namespace {

template <typename T>
void put(boost::json::object& o, const char* key, const std::optional<T>& v) {
  if (v) o[key] = *v;
}
// Boost.JSON 1.81 writes every double in exponent form ("3.6E1"); whole values go out as
// integers so that operators reading the API see 36.
void put(boost::json::object& o, const char* key, const std::optional<double>& v) {
  if (!v) return;
  if (*v == std::floor(*v) && std::fabs(*v) < 9.0e15) {
    o[key] = static_cast<std::int64_t>(*v);
  } else {
    o[key] = *v;
  }
}
// Tool output is bytes, not UTF-8: a stray byte would make the whole document invalid JSON.
void putText(boost::json::object& o, const char* key, const std::string& v) {
  if (!v.empty()) o[key] = hwl::json::validUtf8(v);
}

// Shortest text that reads back to the same double; integers without a fraction.
std::string formatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));  // NOLINT(google-runtime-int)
  }
  std::array<char, 32> buf{};
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf.data(), buf.size(), "%.*g", precision, v);
    if (std::strtod(buf.data(), nullptr) == v) break;
  }
  return buf.data();
}

std::optional<double> mib(const std::optional<std::uint64_t>& bytes) {
  if (!bytes) return std::nullopt;
  return std::floor(static_cast<double>(*bytes) / (1024.0 * 1024.0));
}

}  // namespace

void PromExposition::add(const std::string& name, const std::string& type, const std::string& help,
                         const std::string& labels, const std::string& value) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    order_.push_back(name);
    it->second.help = help;
    it->second.type = type;
  }
  it->second.series.emplace_back(labels, value);
}

void PromExposition::add(const std::string& name, const std::string& type, const std::string& help,
                         const std::string& labels, std::optional<double> value) {
  if (value) add(name, type, help, labels, formatNumber(*value));
}

std::string PromExposition::render() const {
  std::string out;
  for (const auto& name : order_) {
    const auto& f = families_.at(name);
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, value] : f.series) out += name + labels + " " + value + "\n";
  }
  return out;
}

std::string promLabels(const std::vector<std::pair<std::string, std::string>>& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first + "=\"" + escapeLabelValue(labels[i].second) + "\"";
  }
  return out + "}";
}

std::string escapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

boost::json::object toJson(const GpuSample& g) {
  boost::json::object o;
  o["index"] = g.index;
  o["uuid"] = hwl::json::validUtf8(g.uuid);
  putText(o, "name", g.name);
  putText(o, "vendor", g.vendor);
  putText(o, "driver_version", g.driverVersion);
  putText(o, "pci_bus_id", g.pciBusId);
  put(o, "memory_total_bytes", g.memoryTotalBytes);
  put(o, "memory_used_bytes", g.memoryUsedBytes);
  put(o, "memory_free_bytes", g.memoryFreeBytes);
  put(o, "utilization_gpu_pct", g.utilizationGpuPct);
  put(o, "utilization_memory_pct", g.utilizationMemoryPct);
  put(o, "temperature_c", g.temperatureC);
  put(o, "power_w", g.powerW);
  put(o, "power_limit_w", g.powerLimitW);
  put(o, "clock_sm_mhz", g.clockSmMhz);
  put(o, "clock_mem_mhz", g.clockMemMhz);
  put(o, "energy_mj", g.energyMj);
  boost::json::array procs;
  for (const auto& p : g.processes) {
    boost::json::object po;
    po["pid"] = p.pid;
    po["name"] = hwl::json::validUtf8(p.name);
    put(po, "memory_bytes", p.memoryBytes);
    procs.push_back(std::move(po));
  }
  o["processes"] = std::move(procs);
  if (!g.migDevices.empty()) {
    boost::json::array migs;
    for (const auto& m : g.migDevices) {
      boost::json::object mo;
      mo["index"] = m.index;
      putText(mo, "uuid", m.uuid);
      putText(mo, "profile", m.profile);
      put(mo, "gpu_instance_id", m.gpuInstanceId);
      put(mo, "compute_instance_id", m.computeInstanceId);
      put(mo, "memory_total_bytes", m.memoryTotalBytes);
      put(mo, "memory_used_bytes", m.memoryUsedBytes);
      put(mo, "memory_free_bytes", m.memoryFreeBytes);
      migs.push_back(std::move(mo));
    }
    o["mig_devices"] = std::move(migs);
  }
  return o;
}

boost::json::object toJson(const HostSample& h) {
  boost::json::object o;
  putText(o, "cpu_model", h.cpuModel);
  put(o, "cpu_cores", h.cpuCores);
  put(o, "cpu_util_pct", h.cpuUtilPct);
  put(o, "memory_total_bytes", h.memoryTotalBytes);
  put(o, "memory_available_bytes", h.memoryAvailableBytes);
  put(o, "package_power_w", h.packagePowerW);
  return o;
}

boost::json::object toJson(const Sample& s) {
  boost::json::object o;
  o["time_ms"] = s.timeMs;
  o["host"] = toJson(s.host);
  boost::json::array gpus;
  for (const auto& g : s.gpus) gpus.push_back(toJson(g));
  o["gpus"] = std::move(gpus);
  return o;
}

void addGpuSeries(PromExposition& e, const GpuSample& g,
                  const std::vector<std::pair<std::string, std::string>>& extra,
                  const PrometheusOptions& options) {
  const std::string modelLabel = options.dcgmExactLabels ? "modelName" : "model_name";

    std::vector<std::pair<std::string, std::string>> labels = {
        {"gpu", std::to_string(g.index)}, {"UUID", g.uuid}, {modelLabel, g.name}};
    labels.insert(labels.end(), extra.begin(), extra.end());
    const std::string l = promLabels(labels);
    e.add("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", l, g.utilizationGpuPct);
    e.add("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", l,
          g.utilizationMemoryPct);
    e.add("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", l,
          mib(g.memoryUsedBytes));
    e.add("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", l,
          mib(g.memoryFreeBytes));
    e.add("DCGM_FI_DEV_FB_TOTAL", "gauge", "Framebuffer memory total (in MiB).", l,
          mib(g.memoryTotalBytes));
    e.add("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", l, g.temperatureC);
    e.add("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", l, g.powerW);
    e.add("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Power management limit (in W).", l,
          g.powerLimitW);
    e.add("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", l, g.clockSmMhz);
    e.add("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", l, g.clockMemMhz);
    e.add("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", options.dcgmExactLabels ? "counter" : "gauge",
          "Total energy consumption since the driver was last reloaded (in mJ).", l, g.energyMj);
    e.add("hwledger_gpu_memory_used_bytes", "gauge", "GPU memory used in bytes.", l,
          g.memoryUsedBytes);
    e.add("hwledger_gpu_memory_total_bytes", "gauge", "GPU memory total in bytes.", l,
          g.memoryTotalBytes);
    e.add("hwledger_gpu_processes", "gauge", "Processes holding a compute context on the GPU.", l,
          std::optional<double>(static_cast<double>(g.processes.size())));
  }

GpuSample gpuFromJson(const boost::json::object& o) {
  GpuSample g;
  auto text = [&](const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->value().is_string() ? std::string(it->value().get_string())
                                                    : std::string();
  };
  auto number = [&](const char* k) -> std::optional<double> {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_number()) return std::nullopt;
    boost::system::error_code ec;
    const double v = it->value().to_number<double>(ec);
    if (ec) return std::nullopt;
    return v;
  };
  auto whole = [&](const char* k) -> std::optional<std::uint64_t> {
    auto v = number(k);
    if (!v || *v < 0 || *v >= 1.8e19) return std::nullopt;
    return static_cast<std::uint64_t>(*v);
  };
  if (auto i = whole("index"); i && *i <= 0xffffffffu) g.index = static_cast<std::uint32_t>(*i);
  g.uuid = text("uuid");
  g.name = text("name");
  g.vendor = text("vendor");
  g.driverVersion = text("driver_version");
  g.pciBusId = text("pci_bus_id");
  g.memoryTotalBytes = whole("memory_total_bytes");
  g.memoryUsedBytes = whole("memory_used_bytes");
  g.memoryFreeBytes = whole("memory_free_bytes");
  g.utilizationGpuPct = number("utilization_gpu_pct");
  g.utilizationMemoryPct = number("utilization_memory_pct");
  g.temperatureC = number("temperature_c");
  g.powerW = number("power_w");
  g.powerLimitW = number("power_limit_w");
  if (auto c = whole("clock_sm_mhz"); c && *c <= 0xffffffffu) g.clockSmMhz = static_cast<std::uint32_t>(*c);
  if (auto c = whole("clock_mem_mhz"); c && *c <= 0xffffffffu) g.clockMemMhz = static_cast<std::uint32_t>(*c);
  g.energyMj = whole("energy_mj");
  if (auto it = o.find("processes"); it != o.end() && it->value().is_array())
    for (const auto& pv : it->value().get_array()) {
      if (!pv.is_object()) continue;
      const auto& po = pv.get_object();
      ProcessSample p;
      boost::system::error_code ec;
      if (auto pid = po.find("pid"); pid != po.end() && pid->value().is_number()) {
        const auto v = pid->value().to_number<std::uint32_t>(ec);
        if (!ec) p.pid = v;
      }
      if (auto n = po.find("name"); n != po.end() && n->value().is_string())
        p.name = std::string(n->value().get_string());
      if (auto m = po.find("memory_bytes"); m != po.end() && m->value().is_number()) {
        const auto v = m->value().to_number<std::uint64_t>(ec);
        if (!ec) p.memoryBytes = v;
      }
      g.processes.push_back(std::move(p));
    }
  return g;
}

std::string renderPrometheus(const Sample& sample, const std::string& hostname,
                             const AgentSelfStats& self, const PrometheusOptions& options) {
  PromExposition e;
  for (const auto& g : sample.gpus) addGpuSeries(e, g, {{"Hostname", hostname}}, options);
  const std::string hl = promLabels({{"Hostname", hostname}});
  const auto& h = sample.host;
  e.add("hwledger_host_cpu_cores", "gauge", "Logical CPUs of the host.", hl, h.cpuCores);
  e.add("hwledger_host_cpu_utilization_percent", "gauge",
        "Host CPU busy share between the last two samples, in percent.", hl, h.cpuUtilPct);
  e.add("hwledger_host_memory_total_bytes", "gauge", "Host memory total in bytes.", hl,
        h.memoryTotalBytes);
  e.add("hwledger_host_memory_available_bytes", "gauge", "Host memory available in bytes.", hl,
        h.memoryAvailableBytes);
  e.add("hwledger_host_cpu_package_power_watts", "gauge",
        "CPU package power from RAPL between the last two samples, in watts.", hl, h.packagePowerW);
  e.add("hwledger_host_gpus", "gauge", "GPUs reported by the probes.", hl,
        std::optional<double>(static_cast<double>(sample.gpus.size())));
  if (sample.timeMs != 0) {
    e.add("hwledger_telemetry_sample_timestamp_seconds", "gauge",
          "Unix time of the latest telemetry sample, in seconds.", hl,
          std::optional<double>(static_cast<double>(sample.timeMs) / 1000.0));
  }

  e.add("hwledger_agent_resident_memory_bytes", "gauge", "Resident memory of the agent in bytes.",
        "", self.residentMemoryBytes);
  e.add("hwledger_agent_cpu_seconds_total", "counter",
        "User and system CPU time consumed by the agent, in seconds.", "", self.cpuSecondsTotal);
  e.add("hwledger_agent_samples_total", "counter", "Telemetry samples taken by the agent.", "",
        std::optional<double>(static_cast<double>(self.samplesTotal)));
  e.add("hwledger_agent_sample_errors_total", "counter", "Telemetry samples that failed.", "",
        std::optional<double>(static_cast<double>(self.sampleErrorsTotal)));
  e.add("hwledger_outbox_entries", "gauge", "Entries in the agent's event outbox.", "",
        self.outboxEntries);
  e.add("hwledger_outbox_capacity_entries", "gauge", "Capacity of the agent's event outbox.", "",
        self.outboxCapacityEntries);
  e.add("hwledger_agent_start_time_seconds", "gauge", "Unix time the agent started, in seconds.",
        "", self.startTimeSeconds);
  for (const auto& b : self.backends) {
    e.add("hwledger_agent_probe_info", "gauge", "Telemetry backends in use (always 1).",
          promLabels({{"backend", b}}), std::string("1"));
  }
  if (!self.version.empty()) {
    e.add("hwledger_agent_build_info", "gauge", "Agent version (always 1).",
          promLabels({{"version", self.version}}), std::string("1"));
  }
  return e.render();
}

}  // namespace hwl::probes
