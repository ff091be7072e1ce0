// Validation of submitted job specs (see job_spec.hpp).
#include "hwl/proto/job_spec.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace hwl::proto {
namespace {

constexpr double kMaxSeconds = 30.0 * 24 * 3600;
constexpr int64_t kMaxPids = 4'194'304;
constexpr int64_t kMinMemory = 1LL << 20;
constexpr int64_t kMaxMemory = 1LL << 50;

std::string tooLong(const std::string& field, size_t max) {
  return field + ": longer than " + std::to_string(max) + " bytes";
}

bool validEnvName(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool hasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

Result<int64_t> seconds(const boost::json::object& o, std::string_view key, int64_t fallback_ms) {
  const auto* v = o.if_contains(key);
  if (!v) return fallback_ms;
  if (!v->is_number()) return invalidArgument(std::string(key) + ": must be a number of seconds");
  const double s = v->to_number<double>();
  if (!std::isfinite(s) || s < 0 || s > kMaxSeconds) {
    return invalidArgument(std::string(key) + ": must be between 0 and " +
                           std::to_string(static_cast<int64_t>(kMaxSeconds)));
  }
  return static_cast<int64_t>(std::llround(s * 1000.0));
}

// An optional integer limit in [min, max]; 0 when absent.
Result<int64_t> limit(const boost::json::object& o, std::string_view key, int64_t min,
                      int64_t max) {
  const auto* v = o.if_contains(key);
  if (!v) return int64_t{0};
  boost::system::error_code ec;
  const auto n = v->is_number() ? v->to_number<int64_t>(ec) : int64_t{0};
  if (!v->is_number() || ec || n < min || n > max) {
    return invalidArgument(std::string(key) + ": must be an integer between " +
                           std::to_string(min) + " and " + std::to_string(max));
  }
  return n;
}

}  // namespace

bool validJobId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength || id.front() == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Result<ReadyUrl> parseReadyUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() > kMaxReadyUrlBytes)
    return invalidArgument(tooLong("ready_url", kMaxReadyUrlBytes));
  if (url.substr(0, kScheme.size()) != kScheme) {
    return invalidArgument("ready_url: must start with http://");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ReadyUrl out;
  out.text = std::string(url);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (out.target.find_first_of(" \r\n#") != std::string::npos || hasNul(out.target)) {
    return invalidArgument("ready_url: bad path");
  }
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalidArgument("ready_url: bad IPv6 host");
    host = authority.substr(1, close - 1);
    if (authority.size() <= close + 1 || authority[close + 1] != ':') {
      return invalidArgument("ready_url: port required");
    }
    port = authority.substr(close + 2);
  } else {
    const size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) return invalidArgument("ready_url: port required");
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host != "127.0.0.1" && host != "::1" && host != "localhost") {
    return invalidArgument("ready_url: host must be loopback (127.0.0.1, ::1 or localhost)");
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return invalidArgument("ready_url: bad port");
  }
  const int p = std::stoi(std::string(port));
  if (p < 1 || p > 65535) return invalidArgument("ready_url: port out of range");
  out.host = host == "localhost" ? "127.0.0.1" : std::string(host);
  out.port = static_cast<uint16_t>(p);
  return out;
}

Result<JobSpec> parseJobSpec(const boost::json::value& body,
                             const std::vector<std::string>& known_gpu_uuids,
                             const std::filesystem::path& jobs_root) {
  if (!body.is_object()) return invalidArgument("job spec: must be a JSON object");
  const auto& o = body.as_object();
  static const std::set<std::string, std::less<>> kKeys = {"id",
                                                           "command",
                                                           "env",
                                                           "gpus",
                                                           "working_dir",
                                                           "ready_url",
                                                           "ready_timeout_s",
                                                           "max_runtime_s",
                                                           "grace_s",
                                                           "pids_max",
                                                           "memory_max_bytes"};
  for (const auto& kv : o) {
    if (!kKeys.contains(kv.key())) {
      return invalidArgument(std::string(kv.key()) + ": unknown key");
    }
  }
  JobSpec spec;

  const auto* id = o.if_contains("id");
  if (!id || !id->is_string()) return invalidArgument("id: required string");
  spec.id = std::string(id->as_string());
  if (!validJobId(spec.id)) {
    return invalidArgument("id: must be 1-128 of [A-Za-z0-9._-], not starting with '.'");
  }

  const auto* command = o.if_contains("command");
  if (!command || !command->is_array()) return invalidArgument("command: required array");
  const auto& args = command->as_array();
  if (args.empty()) return invalidArgument("command: must not be empty");
  if (args.size() > kMaxCommandArgs) {
    return invalidArgument("command: more than " + std::to_string(kMaxCommandArgs) + " arguments");
  }
  size_t command_bytes = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string field = "command[" + std::to_string(i) + "]";
    if (!args[i].is_string()) return invalidArgument(field + ": must be a string");
    if (args[i].as_string().size() > kMaxArgBytes) {
      return invalidArgument(tooLong(field, kMaxArgBytes));
    }
    std::string arg(args[i].as_string());
    command_bytes += arg.size();
    if (command_bytes > kMaxCommandBytes) {
      return invalidArgument(tooLong("command", kMaxCommandBytes) + " in all");
    }
    if (hasNul(arg)) return invalidArgument(field + ": must not contain NUL");
    if (i == 0 && arg.empty()) return invalidArgument(field + ": must not be empty");
    spec.command.push_back(std::move(arg));
  }

  if (const auto* env = o.if_contains("env")) {
    if (!env->is_object()) return invalidArgument("env: must be an object");
    if (env->as_object().size() > kMaxEnvVars) {
      return invalidArgument("env: more than " + std::to_string(kMaxEnvVars) + " variables");
    }
    size_t env_bytes = 0;
    for (const auto& kv : env->as_object()) {
      if (kv.key().size() > kMaxEnvNameBytes) {
        // The name itself is not echoed: it is too long to be useful in a message.
        return invalidArgument(tooLong("env: a variable name", kMaxEnvNameBytes));
      }
      const std::string field = "env." + std::string(kv.key());
      if (!validEnvName(kv.key())) return invalidArgument(field + ": bad variable name");
      if (!kv.value().is_string()) return invalidArgument(field + ": value must be a string");
      if (kv.value().as_string().size() > kMaxEnvValueBytes) {
        return invalidArgument(tooLong(field, kMaxEnvValueBytes));
      }
      env_bytes += kv.key().size() + kv.value().as_string().size();
      if (env_bytes > kMaxEnvBytes)
        return invalidArgument(tooLong("env", kMaxEnvBytes) + " in all");
      std::string value(kv.value().as_string());
      if (hasNul(value)) return invalidArgument(field + ": must not contain NUL");
      spec.env.emplace(std::string(kv.key()), std::move(value));
    }
  }

  if (const auto* gpus = o.if_contains("gpus")) {
    if (!gpus->is_array()) return invalidArgument("gpus: must be an array of GPU uuids");
    const auto& arr = gpus->as_array();
    if (arr.size() > kMaxGpus) {
      return invalidArgument("gpus: more than " + std::to_string(kMaxGpus) + " GPUs");
    }
    for (size_t i = 0; i < arr.size(); ++i) {
      const std::string field = "gpus[" + std::to_string(i) + "]";
      if (!arr[i].is_string()) return invalidArgument(field + ": must be a string");
      if (arr[i].as_string().size() > kMaxGpuUuidBytes) {
        return invalidArgument(tooLong(field, kMaxGpuUuidBytes));
      }
      std::string uuid(arr[i].as_string());
      if (std::find(known_gpu_uuids.begin(), known_gpu_uuids.end(), uuid) ==
          known_gpu_uuids.end()) {
        return invalidArgument(field + ": unknown GPU uuid " + uuid);
      }
      if (std::find(spec.gpus.begin(), spec.gpus.end(), uuid) != spec.gpus.end()) {
        return invalidArgument(field + ": duplicate GPU uuid " + uuid);
      }
      spec.gpus.push_back(std::move(uuid));
    }
  }

  const std::filesystem::path root = jobs_root.lexically_normal();
  if (const auto* wd = o.if_contains("working_dir")) {
    if (!wd->is_string()) return invalidArgument("working_dir: must be a string");
    if (wd->as_string().size() > kMaxWorkingDirBytes) {
      return invalidArgument(tooLong("working_dir", kMaxWorkingDirBytes));
    }
    const std::string text(wd->as_string());
    if (text.empty() || hasNul(text)) return invalidArgument("working_dir: must not be empty");
    const std::filesystem::path p(text);
    if (p.is_absolute()) {
      spec.working_dir = p.lexically_normal();
    } else {
      const std::filesystem::path rel = p.lexically_normal();
      if (rel.empty() || *rel.begin() == ".." || rel == ".") {
        return invalidArgument("working_dir: relative path must stay inside the jobs root");
      }
      spec.working_dir = (root / rel).lexically_normal();
      spec.create_working_dir = true;
    }
  } else {
    spec.working_dir = root / spec.id;
    spec.create_working_dir = true;
  }
  if (spec.working_dir.has_filename() == false && spec.working_dir != "/") {
    spec.working_dir = spec.working_dir.parent_path();
  }

  if (const auto* url = o.if_contains("ready_url")) {
    if (!url->is_string()) return invalidArgument("ready_url: must be a string");
    auto parsed = parseReadyUrl(url->as_string());
    if (!parsed) return parsed.error();
    spec.ready_url = std::move(*parsed);
  }

  auto ready = seconds(o, "ready_timeout_s", spec.ready_timeout_ms);
  if (!ready) return ready.error();
  spec.ready_timeout_ms = *ready;
  auto max_runtime = seconds(o, "max_runtime_s", spec.max_runtime_ms);
  if (!max_runtime) return max_runtime.error();
  spec.max_runtime_ms = *max_runtime;
  auto grace = seconds(o, "grace_s", spec.grace_ms);
  if (!grace) return grace.error();
  spec.grace_ms = *grace;
  auto pids = limit(o, "pids_max", 1, kMaxPids);
  if (!pids) return pids.error();
  spec.pids_max = *pids;
  auto memory = limit(o, "memory_max_bytes", kMinMemory, kMaxMemory);
  if (!memory) return memory.error();
  spec.memory_max_bytes = *memory;
  // Each field is bounded; this bounds the whole once JSON escaping is counted.
  if (const size_t n = boost::json::serialize(spec.toJson()).size(); n > kMaxSpecJsonBytes) {
    return invalidArgument("job spec: " + std::to_string(n) + " bytes as JSON, more than " +
                           std::to_string(kMaxSpecJsonBytes));
  }
  return spec;
}

boost::json::object JobSpec::toJson() const {
  boost::json::array cmd;
  for (const auto& a : command) cmd.emplace_back(a);
  boost::json::object env_obj;
  for (const auto& [k, v] : env) env_obj[k] = v;
  boost::json::array gpu_arr;
  for (const auto& g : gpus) gpu_arr.emplace_back(g);
  boost::json::object o{{"id", id},
                        {"command", std::move(cmd)},
                        {"env", std::move(env_obj)},
                        {"gpus", std::move(gpu_arr)},
                        {"working_dir", working_dir.string()},
                        {"ready_timeout_s", static_cast<double>(ready_timeout_ms) / 1000.0},
                        {"max_runtime_s", static_cast<double>(max_runtime_ms) / 1000.0},
                        {"grace_s", static_cast<double>(grace_ms) / 1000.0}};
  if (ready_url) o["ready_url"] = ready_url->text;
  if (pids_max > 0) o["pids_max"] = pids_max;
  if (memory_max_bytes > 0) o["memory_max_bytes"] = memory_max_bytes;
  return o;
}

}  // namespace hwl::proto
