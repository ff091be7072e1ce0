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
    s.driverVersion = driver;
    if (const auto* id = g.attribute("id")) s.pciBusId = *id;
    if (s.pciBusId.empty()) s.pciBusId = plainText(g, "pci/pci_bus_id");
    s.memoryTotalBytes = mibAt(g, "fb_memory_usage/total");
    s.memoryUsedBytes = mibAt(g, "fb_memory_usage/used");
    s.memoryFreeBytes = mibAt(g, "fb_memory_usage/free");
    s.utilizationGpuPct = metricAt(g, {"utilization/gpu_util"});
    s.utilizationMemoryPct = metricAt(g, {"utilization/memory_util"});
    s.temperatureC = metricAt(g, {"temperature/gpu_temp"});
    s.powerW =
        metricAt(g, {"gpu_power_readings/power_draw", "gpu_power_readings/instant_power_draw",
                     "gpu_power_readings/average_power_draw", "power_readings/power_draw",
                     "power_readings/instant_power_draw"});
    s.powerLimitW = metricAt(
        g, {"gpu_power_readings/current_power_limit", "gpu_power_readings/enforced_power_limit",
            "power_readings/enforced_power_limit", "power_readings/current_power_limit",
            "power_readings/power_limit"});
    s.clockSmMhz = mhzAt(g, "clocks/sm_clock");
    s.clockMemMhz = mhzAt(g, "clocks/mem_clock");
    if (const auto* procs = g.child("processes")) {
      for (const XmlElement* p : procs->childrenNamed("process_info")) {
        const auto pid = u32At(*p, "pid");
        if (!pid) return invalidArgument("xml: process without a pid on " + s.uuid);
        ProcessSample ps;
        ps.pid = *pid;
        ps.name = plainText(*p, "process_name");
        ps.memoryBytes = mibAt(*p, "used_memory");
        s.processes.push_back(std::move(ps));
      }
    }
    if (const auto* migs = g.child("mig_devices")) {
      for (const XmlElement* m : migs->childrenNamed("mig_device")) {
        MigDeviceSample md;
        const auto idx = u32At(*m, "index");
        if (!idx) return invalidArgument("xml: MIG device without an index on " + s.uuid);
        md.index = *idx;
        md.gpuInstanceId = u32At(*m, "gpu_instance_id");
        md.computeInstanceId = u32At(*m, "compute_instance_id");
        md.uuid = plainText(*m, "uuid");
        md.memoryTotalBytes = mibAt(*m, "fb_memory_usage/total");
        md.memoryUsedBytes = mibAt(*m, "fb_memory_usage/used");
        md.memoryFreeBytes = mibAt(*m, "fb_memory_usage/free");
        s.migDevices.push_back(std::move(md));
      }
    }
    gpus.push_back(std::move(s));
  }
  return gpus;
}

}  // namespace hwl::probes
