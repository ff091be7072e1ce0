// Renders a Sample for the agent API: JSON for GET /v1/telemetry and the Prometheus text
// exposition format (version 0.0.4) for GET /metrics.
//
// JSON shape (absent metrics are OMITTED, never null and never 0):
//   {"time_ms":…,
//    "host":{"cpu_model","cpu_cores","cpu_util_pct","memory_total_bytes",
//            "memory_available_bytes","package_power_w"},
//    "gpus":[{"index","uuid","name","vendor","driver_version","pci_bus_id",
//             "memory_total_bytes","memory_used_bytes","memory_free_bytes",
//             "utilization_gpu_pct","utilization_memory_pct","temperature_c","power_w",
//             "power_limit_w","clock_sm_mhz","clock_mem_mhz","energy_mj",
//             "processes":[{"pid","name","memory_bytes"}],
//             "mig_devices":[{"index","uuid","profile","gpu_instance_id","compute_instance_id",
//                             "memory_total_bytes","memory_used_bytes","memory_free_bytes"}]}]}
// "processes" is always present (possibly empty); "mig_devices" only when the GPU has MIG
// devices; empty strings (unknown name, driver, bus id) are omitted. Whole-valued metrics are
// written as JSON integers, others as doubles: read them with to_number<double>().
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hwl/probes/sample.hpp"

namespace hwl::probes {

boost::json::object toJson(const GpuSample& gpu);
boost::json::object toJson(const HostSample& host);
boost::json::object toJson(const Sample& sample);

struct PrometheusOptions {
  // false (default): output that `promtool check metrics` accepts without a lint finding:
  //   GPU labels gpu, UUID, model_name, Hostname; DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION typed gauge
  //   (its value is the monotonic counter; rate() works on it).
  // true: dcgm-exporter's exact spelling, label modelName and the energy typed counter, for
  //   dashboards built on dcgm-exporter; promtool then reports two lint findings (camelCase
  //   label, counter without _total) but the output still parses.
  bool dcgm_exact_labels = false;
};

// dcgm-exporter names where one exists (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_MEM_COPY_UTIL,
// DCGM_FI_DEV_FB_USED/FREE/TOTAL in MiB, DCGM_FI_DEV_GPU_TEMP, DCGM_FI_DEV_POWER_USAGE,
// DCGM_FI_DEV_POWER_MGMT_LIMIT, DCGM_FI_DEV_SM_CLOCK, DCGM_FI_DEV_MEM_CLOCK,
// DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION in mJ), hwledger_gpu_* / hwledger_host_* for the rest,
// and hwledger_agent_* / hwledger_outbox_* from AgentSelfStats. Absent metrics produce no line.
std::string renderPrometheus(const Sample& sample, const std::string& hostname,
                             const AgentSelfStats& self, const PrometheusOptions& options = {});

// Escapes a label value for the text format: backslash, double quote and newline.
std::string escapeLabelValue(const std::string& value);
// {a="b",…} with every value escaped; "" for no labels.
std::string promLabels(const std::vector<std::pair<std::string, std::string>>& labels);

// A text exposition built family by family: each metric's HELP and TYPE once, then all its
// series together, whatever order they were added in (the format requires it).
class PromExposition {
 public:
  void add(const std::string& name, const std::string& type, const std::string& help,
           const std::string& labels, const std::string& value);
  void add(const std::string& name, const std::string& type, const std::string& help,
           const std::string& labels, std::optional<double> value);  // absent: no line
  template <typename T>
  void add(const std::string& name, const std::string& type, const std::string& help,
           const std::string& labels, const std::optional<T>& value) {
    add(name, type, help, labels,
        value ? std::optional<double>(static_cast<double>(*value)) : std::nullopt);
  }
  [[nodiscard]] std::string render() const;

 private:
  struct Family {
    std::string help, type;
    std::vector<std::pair<std::string, std::string>> series;  // labels, value
  };
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

// One GPU's series (the DCGM names above and hwledger_gpu_*), labelled gpu, UUID, model_name
// (modelName with dcgm_exact_labels) and then `extra`.
void addGpuSeries(PromExposition& e, const GpuSample& gpu,
                  const std::vector<std::pair<std::string, std::string>>& extra,
                  const PrometheusOptions& options = {});

// The GPU fields of one element of toJson(Sample)["gpus"] (what GET /v1/telemetry returns),
// for consumers of that JSON (the server's /metrics). Unknown or mistyped fields stay absent.
GpuSample gpuFromJson(const boost::json::object& gpu);
// Just its "processes": pid, name, memory, and the agent's job when it names a valid job id.
std::vector<ProcessSample> processesFromJson(const boost::json::object& gpu);

}  // namespace hwl::probes
