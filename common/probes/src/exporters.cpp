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
#include "hwl/proto/job_spec.hpp"

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
  putText(o, "driver_version", g.driver_version);
  putText(o, "pci_bus_id", g.pci_bus_id);
  put(o, "memory_total_bytes", g.memory_total_bytes);
  put(o, "memory_used_bytes", g.memory_used_bytes);
  put(o, "memory_free_bytes", g.memory_free_bytes);
  put(o, "utilization_gpu_pct", g.utilization_gpu_pct);
  put(o, "utilization_memory_pct", g.utilization_memory_pct);
  put(o, "temperature_c", g.temperature_c);
  put(o, "power_w", g.power_w);
  put(o, "power_limit_w", g.power_limit_w);
  put(o, "clock_sm_mhz", g.clock_sm_mhz);
  put(o, "clock_mem_mhz", g.clock_mem_mhz);
  put(o, "energy_mj", g.energy_mj);
  boost::json::array procs;
  for (const auto& p : g.processes) {
    boost::json::object po;
    po["pid"] = p.pid;
    po["name"] = hwl::json::validUtf8(p.name);
    put(po, "memory_bytes", p.memory_bytes);
    if (!p.job_id.empty()) po["job"] = p.job_id;
    procs.push_back(std::move(po));
  }
  o["processes"] = std::move(procs);
  if (g.processes_matched) o["processes_matched"] = true;
  if (!g.mig_devices.empty()) {
    boost::json::array migs;
    for (const auto& m : g.mig_devices) {
      boost::json::object mo;
      mo["index"] = m.index;
      putText(mo, "uuid", m.uuid);
      putText(mo, "profile", m.profile);
      put(mo, "gpu_instance_id", m.gpu_instance_id);
      put(mo, "compute_instance_id", m.compute_instance_id);
      put(mo, "memory_total_bytes", m.memory_total_bytes);
      put(mo, "memory_used_bytes", m.memory_used_bytes);
      put(mo, "memory_free_bytes", m.memory_free_bytes);
      migs.push_back(std::move(mo));
    }
    o["mig_devices"] = std::move(migs);
  }
  return o;
}

boost::json::object toJson(const HostSample& h) {
  boost::json::object o;
  putText(o, "cpu_model", h.cpu_model);
  put(o, "cpu_cores", h.cpu_cores);
  put(o, "cpu_util_pct", h.cpu_util_pct);
  put(o, "memory_total_bytes", h.memory_total_bytes);
  put(o, "memory_available_bytes", h.memory_available_bytes);
  put(o, "package_power_w", h.package_power_w);
  return o;
}

boost::json::object toJson(const Sample& s) {
  boost::json::object o;
  o["time_ms"] = s.time_ms;
  o["host"] = toJson(s.host);
  boost::json::array gpus;
  for (const auto& g : s.gpus) gpus.push_back(toJson(g));
  o["gpus"] = std::move(gpus);
  return o;
}

void addGpuSeries(PromExposition& e, const GpuSample& g,
                  const std::vector<std::pair<std::string, std::string>>& extra,
                  const PrometheusOptions& options) {
  const std::string modelLabel = options.dcgm_exact_labels ? "modelName" : "model_name";

  std::vector<std::pair<std::string, std::string>> labels = {
      {"gpu", std::to_string(g.index)}, {"UUID", g.uuid}, {modelLabel, g.name}};
  labels.insert(labels.end(), extra.begin(), extra.end());
  const std::string l = promLabels(labels);
  e.add("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", l, g.utilization_gpu_pct);
  e.add("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", l,
        g.utilization_memory_pct);
  e.add("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", l,
        mib(g.memory_used_bytes));
  e.add("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", l,
        mib(g.memory_free_bytes));
  e.add("DCGM_FI_DEV_FB_TOTAL", "gauge", "Framebuffer memory total (in MiB).", l,
        mib(g.memory_total_bytes));
  e.add("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", l, g.temperature_c);
  e.add("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", l, g.power_w);
  e.add("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Power management limit (in W).", l,
        g.power_limit_w);
  e.add("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", l, g.clock_sm_mhz);
  e.add("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", l, g.clock_mem_mhz);
  e.add("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", options.dcgm_exact_labels ? "counter" : "gauge",
        "Total energy consumption since the driver was last reloaded (in mJ).", l, g.energy_mj);
  e.add("hwledger_gpu_memory_used_bytes", "gauge", "GPU memory used in bytes.", l,
        g.memory_used_bytes);
  e.add("hwledger_gpu_memory_total_bytes", "gauge", "GPU memory total in bytes.", l,
        g.memory_total_bytes);
  e.add("hwledger_gpu_processes", "gauge", "Processes holding a compute context on the GPU.", l,
        std::optional<double>(static_cast<double>(g.processes.size())));
}

std::vector<ProcessSample> processesFromJson(const boost::json::object& o) {
  std::vector<ProcessSample> out;
  if (auto it = o.find("processes"); it != o.end() && it->value().is_array()) {
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
        if (!ec) p.memory_bytes = v;
      }
      if (auto j = po.find("job");
          j != po.end() && j->value().is_string() && proto::validJobId(j->value().get_string())) {
        p.job_id = std::string(j->value().get_string());
      }
      out.push_back(std::move(p));
    }
  }
  return out;
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
  g.driver_version = text("driver_version");
  g.pci_bus_id = text("pci_bus_id");
  g.memory_total_bytes = whole("memory_total_bytes");
  g.memory_used_bytes = whole("memory_used_bytes");
  g.memory_free_bytes = whole("memory_free_bytes");
  g.utilization_gpu_pct = number("utilization_gpu_pct");
  g.utilization_memory_pct = number("utilization_memory_pct");
  g.temperature_c = number("temperature_c");
  g.power_w = number("power_w");
  g.power_limit_w = number("power_limit_w");
  if (auto c = whole("clock_sm_mhz"); c && *c <= 0xffffffffu)
    g.clock_sm_mhz = static_cast<std::uint32_t>(*c);
  if (auto c = whole("clock_mem_mhz"); c && *c <= 0xffffffffu)
    g.clock_mem_mhz = static_cast<std::uint32_t>(*c);
  g.energy_mj = whole("energy_mj");
  g.processes = processesFromJson(o);
  if (auto m = o.find("processes_matched"); m != o.end() && m->value().is_bool())
    g.processes_matched = m->value().get_bool();
  return g;
}

std::string renderPrometheus(const Sample& sample, const std::string& hostname,
                             const AgentSelfStats& self, const PrometheusOptions& options) {
  PromExposition e;
  for (const auto& g : sample.gpus) addGpuSeries(e, g, {{"Hostname", hostname}}, options);
  const std::string hl = promLabels({{"Hostname", hostname}});
  const auto& h = sample.host;
  e.add("hwledger_host_cpu_cores", "gauge", "Logical CPUs of the host.", hl, h.cpu_cores);
  e.add("hwledger_host_cpu_utilization_percent", "gauge",
        "Host CPU busy share between the last two samples, in percent.", hl, h.cpu_util_pct);
  e.add("hwledger_host_memory_total_bytes", "gauge", "Host memory total in bytes.", hl,
        h.memory_total_bytes);
  e.add("hwledger_host_memory_available_bytes", "gauge", "Host memory available in bytes.", hl,
        h.memory_available_bytes);
  e.add("hwledger_host_cpu_package_power_watts", "gauge",
        "CPU package power from RAPL between the last two samples, in watts.", hl,
        h.package_power_w);
  e.add("hwledger_host_gpus", "gauge", "GPUs reported by the probes.", hl,
        std::optional<double>(static_cast<double>(sample.gpus.size())));
  if (sample.time_ms != 0) {
    e.add("hwledger_telemetry_sample_timestamp_seconds", "gauge",
          "Unix time of the latest telemetry sample, in seconds.", hl,
          std::optional<double>(static_cast<double>(sample.time_ms) / 1000.0));
  }

  e.add("hwledger_agent_resident_memory_bytes", "gauge", "Resident memory of the agent in bytes.",
        "", self.resident_memory_bytes);
  e.add("hwledger_agent_cpu_seconds_total", "counter",
        "User and system CPU time consumed by the agent, in seconds.", "", self.cpu_seconds_total);
  e.add("hwledger_agent_samples_total", "counter", "Telemetry samples taken by the agent.", "",
        std::optional<double>(static_cast<double>(self.samples_total)));
  e.add("hwledger_agent_sample_errors_total", "counter", "Telemetry samples that failed.", "",
        std::optional<double>(static_cast<double>(self.sample_errors_total)));
  e.add("hwledger_outbox_entries", "gauge", "Entries in the agent's event outbox.", "",
        self.outbox_entries);
  e.add("hwledger_outbox_capacity_entries", "gauge", "Capacity of the agent's event outbox.", "",
        self.outbox_capacity_entries);
  e.add("hwledger_agent_start_time_seconds", "gauge", "Unix time the agent started, in seconds.",
        "", self.start_time_seconds);
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
