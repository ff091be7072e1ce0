// `nvidia-smi -q -x` to GpuSamples. Element names moved between DTD versions (v11 power_readings
// with power_draw/enforced_power_limit; v12 gpu_power_readings with current_power_limit;
// v13 instant_power_draw/average_power_draw), so each field tries the known spellings in turn.
#include <cmath>
#include <initializer_list>

#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/text.hpp"
#include "hwl/probes/xml.hpp"

namespace hwl::probes {
namespace {

std::string plainText(const XmlElement& e, std::string_view path) {
  std::string t = e.textAt(path);
  if (t == "N/A" || (!t.empty() && t.front() == '[')) return {};
  return t;
}

std::optional<double> metricAt(const XmlElement& e, std::initializer_list<std::string_view> paths) {
  for (auto p : paths) {
    if (e.find(p) == nullptr) continue;
    if (auto v = parseMetric(e.textAt(p))) return v;
  }
  return std::nullopt;
}

std::optional<std::uint32_t> u32At(const XmlElement& e, std::string_view path) {
  const auto v = parseUnsigned(e.textAt(path));
  if (!v || *v > 0xFFFFFFFFULL) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

std::optional<std::uint32_t> mhzAt(const XmlElement& e, std::string_view path) {
  const auto v = metricAt(e, {path});
  if (!v || *v < 0) return std::nullopt;
  return static_cast<std::uint32_t>(std::lround(*v));
}

std::optional<std::uint64_t> mibAt(const XmlElement& e, std::string_view path) {
  return parseMibAsBytes(e.textAt(path));
}

}  // namespace

Result<std::vector<GpuSample>> parseNvidiaSmiXml(std::string_view xml) {
  auto doc = parseXml(xml);
  if (!doc) return doc.error();
  if (doc->name != "nvidia_smi_log") {
    return invalidArgument("xml: root is <" + doc->name + ">, expected <nvidia_smi_log>");
  }
  const std::string driver = plainText(*doc, "driver_version");
  std::vector<GpuSample> gpus;
  std::uint32_t index = 0;
  // nvidia-smi lists GPUs in its own index order (PCI bus order), which is not minor_number.
  for (const XmlElement* gx : doc->childrenNamed("gpu")) {
    const XmlElement& g = *gx;
    GpuSample s;
    s.index = index++;
    s.vendor = "nvidia";
    s.uuid = plainText(g, "uuid");
    if (s.uuid.empty()) return invalidArgument("xml: <gpu> without <uuid>");
    s.name = plainText(g, "product_name");
    s.driver_version = driver;
    if (const auto* id = g.attribute("id")) s.pci_bus_id = *id;
    if (s.pci_bus_id.empty()) s.pci_bus_id = plainText(g, "pci/pci_bus_id");
    s.memory_total_bytes = mibAt(g, "fb_memory_usage/total");
    s.memory_used_bytes = mibAt(g, "fb_memory_usage/used");
    s.memory_free_bytes = mibAt(g, "fb_memory_usage/free");
    s.utilization_gpu_pct = metricAt(g, {"utilization/gpu_util"});
    s.utilization_memory_pct = metricAt(g, {"utilization/memory_util"});
    s.temperature_c = metricAt(g, {"temperature/gpu_temp"});
    s.power_w =
        metricAt(g, {"gpu_power_readings/power_draw", "gpu_power_readings/instant_power_draw",
                     "gpu_power_readings/average_power_draw", "power_readings/power_draw",
                     "power_readings/instant_power_draw"});
    s.power_limit_w = metricAt(
        g, {"gpu_power_readings/current_power_limit", "gpu_power_readings/enforced_power_limit",
            "power_readings/enforced_power_limit", "power_readings/current_power_limit",
            "power_readings/power_limit"});
    s.clock_sm_mhz = mhzAt(g, "clocks/sm_clock");
    s.clock_mem_mhz = mhzAt(g, "clocks/mem_clock");
    if (const auto* procs = g.child("processes")) {
      for (const XmlElement* p : procs->childrenNamed("process_info")) {
        const auto pid = u32At(*p, "pid");
        if (!pid) return invalidArgument("xml: process without a pid on " + s.uuid);
        ProcessSample ps;
        ps.pid = *pid;
        ps.name = plainText(*p, "process_name");
        ps.memory_bytes = mibAt(*p, "used_memory");
        s.processes.push_back(std::move(ps));
      }
    }
    if (const auto* migs = g.child("mig_devices")) {
      for (const XmlElement* m : migs->childrenNamed("mig_device")) {
        MigDeviceSample md;
        const auto idx = u32At(*m, "index");
        if (!idx) return invalidArgument("xml: MIG device without an index on " + s.uuid);
        md.index = *idx;
        md.gpu_instance_id = u32At(*m, "gpu_instance_id");
        md.compute_instance_id = u32At(*m, "compute_instance_id");
        md.uuid = plainText(*m, "uuid");
        md.memory_total_bytes = mibAt(*m, "fb_memory_usage/total");
        md.memory_used_bytes = mibAt(*m, "fb_memory_usage/used");
        md.memory_free_bytes = mibAt(*m, "fb_memory_usage/free");
        s.mig_devices.push_back(std::move(md));
      }
    }
    gpus.push_back(std::move(s));
  }
  return gpus;
}

}  // namespace hwl::probes
