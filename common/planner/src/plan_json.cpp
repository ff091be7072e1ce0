// Plan requests from JSON, plans to JSON and to a human-readable table.
#include "hwl/planner/plan_json.hpp"

#include <boost/json.hpp>
#include <cstdio>
#include <sstream>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/gpus.hpp"
#include "hwl/planner/hf_config.hpp"

namespace hwl::planner {
namespace json = boost::json;
namespace {

Result<std::uint64_t> uintField(const json::value& v, const std::string& key) {
  if (v.is_uint64()) return v.as_uint64();
  if (v.is_int64() && v.as_int64() >= 0) return static_cast<std::uint64_t>(v.as_int64());
  if (v.is_double() && v.as_double() >= 0 && v.as_double() < 1.8e19 &&
      static_cast<double>(static_cast<std::uint64_t>(v.as_double())) == v.as_double()) {
    return static_cast<std::uint64_t>(v.as_double());
  }
  return invalidArgument("'" + key + "' must be a non-negative integer");
}

Result<std::string> stringField(const json::value& v, const std::string& key) {
  if (!v.is_string()) return invalidArgument("'" + key + "' must be a string");
  return std::string(v.as_string());
}

json::value optU(const std::optional<std::uint64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

}  // namespace

Result<PlanRequest> planRequestFromJson(const json::value& body) {
  if (!body.is_object()) return invalidArgument("plan request must be a JSON object");
  const json::object& o = body.as_object();
  PlanRequest req;
  bool have_model = false, have_context = false, have_mem = false;
  for (const auto& [k, v] : o) {
    const std::string key(k);
    if (key == "model") {
      if (!v.is_object()) return invalidArgument("'model' must be a config.json object");
      auto spec = hfConfigToSpec(v.as_object());
      if (!spec) return Error{spec.error().code, "model: " + spec.error().message};
      req.model = std::move(*spec);
      if (req.model.name.empty()) req.model.name = req.model.architecture;
      have_model = true;
    } else if (key == "context") {
      auto n = uintField(v, key);
      if (!n) return n.error();
      req.context = *n;
      have_context = true;
    } else if (key == "batch") {
      auto n = uintField(v, key);
      if (!n) return n.error();
      if (*n == 0) return invalidArgument("'batch' must be at least 1");
      req.batch = *n;
    } else if (key == "tp") {
      auto n = uintField(v, key);
      if (!n) return n.error();
      if (*n == 0 || *n > 1024) return invalidArgument("'tp' must be between 1 and 1024");
      req.tp = static_cast<std::uint32_t>(*n);
    } else if (key == "weights") {
      auto s = stringField(v, key);
      if (!s) return s.error();
      if (auto f = weightFormat(*s); !f)
        return Error{f.error().code, "'weights': " + f.error().message};
      req.weights = *s;
    } else if (key == "kv") {
      auto s = stringField(v, key);
      if (!s) return s.error();
      if (*s != "auto") {
        if (auto f = kvFormat(*s); !f) return Error{f.error().code, "'kv': " + f.error().message};
      }
      req.kv = *s;
    } else if (key == "state_dtype") {
      auto s = stringField(v, key);
      if (!s) return s.error();
      if (*s != "auto") {
        if (auto f = plainDtypeBytes(*s); !f)
          return Error{f.error().code, "'state_dtype': " + f.error().message};
      }
      req.state_dtype = *s;
    } else if (key == "gpu_mem_bytes" || key == "gpu_mem") {
      if (have_mem) return invalidArgument("give either 'gpu_mem_bytes' or 'gpu_mem', not both");
      have_mem = true;
      if (v.is_string()) {
        auto n = parseByteSize(v.as_string());
        if (!n) return Error{n.error().code, "'" + key + "': " + n.error().message};
        req.gpu_mem_bytes = *n;
      } else {
        auto n = uintField(v, key);
        if (!n) return n.error();
        req.gpu_mem_bytes = *n;
      }
    } else if (key == "gpu") {
      auto s = stringField(v, key);
      if (!s) return s.error();
      auto g = gpuPeak(*s);
      if (!g) return invalidArgument("'gpu': " + unknownGpuMessage(*s));
      req.gpu = *g;
    } else if (key == "per_layer") {
      if (!v.is_bool()) return invalidArgument("'per_layer' must be a boolean");
      req.per_layer = v.as_bool();
    } else if (key == "prefill_chunk_tokens") {
      auto n = uintField(v, key);
      if (!n) return n.error();
      if (*n == 0) return invalidArgument("'prefill_chunk_tokens' must be at least 1");
      req.prefill_chunk_tokens = *n;
    } else if (key == "activation_bytes" || key == "overhead_bytes") {
      auto n = v.is_string() ? parseByteSize(v.as_string()) : uintField(v, key);
      if (!n) return Error{n.error().code, "'" + key + "': " + n.error().message};
      (key == "activation_bytes" ? req.activation_bytes : req.overhead_bytes) = *n;
    } else {
      return invalidArgument("unknown key '" + key + "' in plan request");
    }
  }
  if (!have_model) return invalidArgument("'model' is required");
  if (!have_context) return invalidArgument("'context' is required");
  return req;
}

json::object planToJson(const Plan& p) {
  json::object o;
  o["model"] = p.model_name;
  o["architecture"] = p.architecture;
  o["context"] = p.context;
  o["batch"] = p.batch;
  o["tp"] = p.tp;
  o["weights_format"] = p.weights_format;
  o["kv_format"] = p.kv_format;
  o["state_dtype"] = p.state_dtype;
  o["params_total"] = p.params_total;
  o["params_active"] = p.params_active;
  o["params_active_including_input_embedding"] = p.params_active_including_input_embedding;
  o["params_active_excluding_input_embedding"] = p.params_active_excluding_input_embedding;
  o["params_active_convention"] = p.params_active_convention;
  o["params_vision"] = p.params_vision;
  o["params_mtp"] = p.params_mtp;
  o["kv_bytes_per_token"] = p.kv_bytes_per_token;
  o["kv_bytes_per_token_all_layers"] = p.kv_bytes_per_token_all_layers;
  o["state_bytes_per_sequence"] = p.state_bytes_per_sequence;
  o["weights_bytes"] = p.weights_bytes;
  o["kv_bytes"] = p.kv_bytes;
  o["state_bytes"] = p.state_bytes;
  o["activations_bytes"] = p.activations_bytes;
  o["overhead_bytes"] = p.overhead_bytes;
  o["total_bytes"] = p.total_bytes;
  o["per_gpu"] = true;
  o["gpu_mem_bytes"] = optU(p.gpu_mem_bytes);
  o["fits"] = p.fits ? json::value(*p.fits) : json::value(nullptr);
  o["headroom_bytes"] = p.headroom_bytes ? json::value(*p.headroom_bytes) : json::value(nullptr);
  o["max_context"] = optU(p.max_context);
  o["max_batch"] = optU(p.max_batch);
  if (p.max_context) o["max_context_limited_by"] = p.max_context_limited_by;
  if (!p.layers.empty()) {
    json::array layers;
    for (const auto& l : p.layers) {
      layers.push_back(json::object{
          {"index", l.index},
          {"kind", std::string(layerKindName(l.kind))},
          {"sliding_window", l.sliding_window},
          {"weights_bytes", l.weights_bytes},
          {"kv_bytes_per_token", l.kv_bytes_per_token},
          {"kv_bytes", l.kv_bytes},
          {"state_bytes", l.state_bytes},
      });
    }
    o["layers"] = std::move(layers);
  }
  json::array notes;
  for (const auto& n : p.notes) notes.emplace_back(n);
  o["notes"] = std::move(notes);
  // Keys the model file left out and the values used, each with where the value came from.
  json::array defaults;
  for (const auto& d : p.defaults) {
    boost::system::error_code ec;
    json::value v = json::parse(d.value, ec);
    defaults.push_back(json::object{
        {"key", d.key}, {"value", ec ? json::value(d.value) : std::move(v)}, {"from", d.from}});
  }
  o["defaults_applied"] = std::move(defaults);
  if (p.throughput) {
    const ThroughputEstimate& t = *p.throughput;
    o["throughput"] = json::object{
        {"upper_bound", true},
        {"basis", "roofline of one GPU at its datasheet peaks; no engine reaches it"},
        {"gpu", t.gpu},
        {"mem_bandwidth_bytes_per_s", t.mem_bandwidth},
        {"peak_flops", t.peak_flops},
        {"flops_dtype", t.flops_dtype},
        {"weights_read_bytes_per_step", t.weights_read_bytes},
        {"kv_read_bytes_per_step", t.kv_read_bytes},
        {"state_rw_bytes_per_step", t.state_rw_bytes},
        {"decode_tokens_per_s_per_sequence_max", t.decode_tokens_per_s_per_sequence},
        {"decode_tokens_per_s_max", t.decode_tokens_per_s},
        {"prefill_flops_per_token", t.prefill_flops_per_token},
        {"prefill_tokens_per_s_max", t.prefill_tokens_per_s},
    };
  }
  return o;
}

std::string planToTable(const Plan& p) {
  std::ostringstream out;
  auto row = [&](const char* label, std::uint64_t bytes) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "  %-14s %14s  %20llu B\n", label, formatBytes(bytes).c_str(),
                  static_cast<unsigned long long>(bytes));
    out << buf;
  };
  out << "model        " << p.model_name << " (" << p.architecture << ")\n";
  out << "request      context " << p.context << ", batch " << p.batch << ", tp " << p.tp
      << ", weights " << p.weights_format << ", kv " << p.kv_format << ", state " << p.state_dtype
      << "\n";
  out << "parameters   total " << p.params_total << ", active " << p.params_active;
  if (p.params_mtp > 0) out << ", mtp (not resident) " << p.params_mtp;
  out << "\n";
  out << "kv per token " << p.kv_bytes_per_token << " B (all layers "
      << p.kv_bytes_per_token_all_layers << " B)";
  if (p.state_bytes_per_sequence > 0)
    out << ", state per sequence " << p.state_bytes_per_sequence << " B";
  out << "\n\nper GPU\n";
  row("weights", p.weights_bytes);
  row("kv cache", p.kv_bytes);
  row("state", p.state_bytes);
  row("activations", p.activations_bytes);
  row("overhead", p.overhead_bytes);
  row("total", p.total_bytes);
  if (p.gpu_mem_bytes) {
    out << "\nGPU memory   " << formatBytes(*p.gpu_mem_bytes) << ": "
        << (p.fits.value_or(false) ? "fits" : "does NOT fit");
    if (p.headroom_bytes) {
      const std::int64_t h = *p.headroom_bytes;
      out << " (" << (h >= 0 ? "headroom " : "short by ")
          << formatBytes(static_cast<std::uint64_t>(h >= 0 ? h : -h)) << ")";
    }
    out << "\n";
    if (p.max_context) {
      out << "max context  " << *p.max_context << " tokens at batch " << p.batch << " (limited by "
          << p.max_context_limited_by << ")\n";
    }
    if (p.max_batch)
      out << "max batch    " << *p.max_batch << " sequences at context " << p.context << "\n";
  }
  if (!p.layers.empty()) {
    out << "\nlayer  kind              window     weights        kv/token      kv            "
           "state\n";
    for (const auto& l : p.layers) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%5u  %-16s %7llu %12s %12llu B %12s %12s\n", l.index,
                    std::string(layerKindName(l.kind)).c_str(),
                    static_cast<unsigned long long>(l.sliding_window),
                    formatBytes(l.weights_bytes).c_str(),
                    static_cast<unsigned long long>(l.kv_bytes_per_token),
                    formatBytes(l.kv_bytes).c_str(), formatBytes(l.state_bytes).c_str());
      out << buf;
    }
  }
  if (p.throughput) {
    const ThroughputEstimate& t = *p.throughput;
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "\nthroughput   upper bounds on %s (%.2f TB/s, %.0f %s TFLOPS), not predictions\n"
                  "  decode     %.1f tokens/s per sequence, %.1f tokens/s for the batch of %llu\n"
                  "  prefill    %.0f tokens/s\n",
                  t.gpu.c_str(), t.mem_bandwidth / 1e12, t.peak_flops / 1e12, t.flops_dtype.c_str(),
                  t.decode_tokens_per_s_per_sequence, t.decode_tokens_per_s,
                  static_cast<unsigned long long>(p.batch), t.prefill_tokens_per_s);
    out << buf;
  }
  for (const auto& n : p.notes) out << "note: " << n << "\n";
  return out.str();
}

}  // namespace hwl::planner
