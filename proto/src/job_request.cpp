// Validation of job submissions (see job_request.hpp).
#include "hwl/proto/job_request.hpp"

#include <algorithm>

#include "hwl/json.hpp"
#include "hwl/proto/job_spec.hpp"

namespace hwl::proto {
namespace bj = boost::json;

namespace {
bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}
}  // namespace

bj::object JobRequest::hostSpec(const std::string& id,
                                const std::vector<std::string>& gpu_uuids) const {
  bj::object spec{{"id", id}};
  if (!command.is_null()) spec["command"] = command;
  spec["env"] = env.is_null() ? bj::value(bj::object{}) : env;
  bj::array gpu_arr;
  for (const auto& g : gpu_uuids) gpu_arr.push_back(bj::string(g));
  spec["gpus"] = std::move(gpu_arr);
  if (port && ready_path)
    spec["ready_url"] = "http://127.0.0.1:" + std::to_string(*port) + *ready_path;
  if (max_runtime_s) spec["max_runtime_s"] = *max_runtime_s;
  return spec;
}

bj::object JobRequest::requested() const {
  bj::object r{{"gpus", gpus}};
  if (gpu_memory_bytes) r["gpu_memory_bytes"] = *gpu_memory_bytes;
  return r;
}

Status checkHostSpec(const bj::object& spec, const std::vector<std::string>& gpu_uuids) {
  auto parsed = parseJobSpec(spec, gpu_uuids, "/");
  if (parsed) return {};
  std::string m = parsed.error().message;
  // The host's ready_url is built from "port" and "ready_path".
  if (m.rfind("ready_url", 0) == 0) m = "ready_path" + m.substr(9);
  return invalidArgument(std::move(m));
}

Result<JobRequest> parseJobRequest(const bj::value& v) {
  if (!v.is_object()) return invalidArgument("the body must be a JSON object");
  const auto& body = v.get_object();
  if (auto s = json::checkKeys(body, {"name", "command", "env", "gpus", "gpu_memory_bytes", "host",
                                      "ready_path", "port", "max_runtime_s", "model"});
      !s)
    return s.error();
  auto name = json::optionalString(body, "name");
  auto host = json::optionalString(body, "host");
  auto ready_path = json::optionalString(body, "ready_path");
  auto ngpus = json::optionalInt(body, "gpus");
  auto mem = json::optionalInt(body, "gpu_memory_bytes");
  auto port = json::optionalInt(body, "port");
  auto max_rt = json::optionalInt(body, "max_runtime_s");
  for (const auto* r : {&name, &host, &ready_path})
    if (!*r) return r->error();
  for (const auto* r : {&ngpus, &mem, &port, &max_rt})
    if (!*r) return r->error();
  // Every field that is stored is bounded; the name is also shown in tables, so it is text.
  if (*name && ((*name)->size() > kMaxJobNameBytes || (*name)->empty() || hasControl(**name)))
    return invalidArgument("field \"name\" must be 1 to " + std::to_string(kMaxJobNameBytes) +
                           " bytes without control characters");
  if (*host && ((*host)->size() > kMaxHostFieldBytes || hasControl(**host)))
    return invalidArgument("field \"host\" must be a host id or name of at most " +
                           std::to_string(kMaxHostFieldBytes) + " bytes");
  if (*ready_path && (*ready_path)->size() > kMaxReadyPathBytes)
    return invalidArgument("field \"ready_path\" is longer than " +
                           std::to_string(kMaxReadyPathBytes) + " bytes");
  JobRequest r;
  r.gpus = ngpus->value_or(mem->has_value() ? 1 : 0);
  if (r.gpus < 0 || r.gpus > static_cast<int64_t>(kMaxGpus))
    return invalidArgument("field \"gpus\" must be between 0 and " + std::to_string(kMaxGpus));
  if (*mem && **mem <= 0) return invalidArgument("field \"gpu_memory_bytes\" must be positive");
  if (*port && (**port < 1 || **port > 65535))
    return invalidArgument("field \"port\" must be between 1 and 65535");
  if (*max_rt && **max_rt < 0)
    return invalidArgument("field \"max_runtime_s\" must not be negative");
  if (*ready_path && (!*port || (*ready_path)->empty() || (*ready_path)->front() != '/'))
    return invalidArgument("field \"ready_path\" must start with / and needs \"port\"");
  r.name = *name;
  r.host = *host;
  r.gpu_memory_bytes = *mem;
  r.port = *port;
  r.ready_path = *ready_path;
  r.max_runtime_s = *max_rt;
  if (auto c = body.find("command"); c != body.end()) r.command = c->value();
  if (auto e = body.find("env"); e != body.end()) r.env = e->value();
  if (auto m = body.find("model"); m != body.end()) {
    if (!m->value().is_object()) return invalidArgument("field \"model\" must be an object");
    r.model = m->value().get_object();
  }
  // What the host will be given, checked now by the host's own parser.
  if (auto s = checkHostSpec(r.hostSpec("job-000000000000", {}), {}); !s) return s.error();
  return r;
}

}  // namespace hwl::proto
