// Reading the agent's JSON config.
#include "agent_config.hpp"

#include "hwl/files.hpp"
#include "hwl/jobs/containment.hpp"
#include "hwl/json.hpp"

namespace hwl::agent {

Result<AgentConfig> loadAgentConfig(const std::filesystem::path& path, AgentConfig c) {
  auto text = files::readFile(path, 1 << 20);
  if (!text) return text.error();
  auto obj = json::parseObject(*text);
  if (!obj) return invalidArgument("config " + path.string() + ": " + obj.error().message);
  const std::string where = "config " + path.string();
  if (auto s =
          json::checkKeys(*obj,
                          {"state_dir", "jobs_root", "listen", "probe", "job_user",
                           "sample_interval_ms", "outbox_max_entries", "log_max_bytes", "log_keep",
                           "dev", "metrics_dcgm_labels", "job_containment", "job_pids_max"},
                          where);
      !s)
    return s.error();
  auto str = [&](const char* key, std::string& field) -> Status {
    auto v = json::optionalString(*obj, key);
    if (!v) return invalidArgument(where + ": " + v.error().message);
    if (*v) field = **v;
    return {};
  };
  auto num = [&](const char* key, int64_t& field, int64_t min, int64_t max) -> Status {
    auto v = json::optionalInt(*obj, key);
    if (!v) return invalidArgument(where + ": " + v.error().message);
    if (*v) {
      if (**v < min || **v > max)
        return invalidArgument(where + ": \"" + key + "\" must be between " + std::to_string(min) +
                               " and " + std::to_string(max));
      field = **v;
    }
    return {};
  };
  auto flag = [&](const char* key, bool& field) -> Status {
    auto v = json::optionalBool(*obj, key);
    if (!v) return invalidArgument(where + ": " + v.error().message);
    if (*v) field = **v;
    return {};
  };
  std::string state_dir, jobs_root;
  for (const auto& s :
       {str("state_dir", state_dir), str("jobs_root", jobs_root), str("listen", c.listen),
        str("probe", c.probe), str("job_user", c.job_user),
        num("sample_interval_ms", c.sample_interval_ms, 100, 3'600'000),
        num("outbox_max_entries", c.outbox_max_entries, 100, 100'000'000),
        num("log_max_bytes", c.log_max_bytes, 4096, 1LL << 40), num("log_keep", c.log_keep, 0, 100),
        flag("dev", c.dev), str("job_containment", c.job_containment),
        num("job_pids_max", c.job_pids_max, 0, 4'194'304),
        flag("metrics_dcgm_labels", c.metrics_dcgm_labels)}) {
    if (!s) return s.error();
  }
  if (!jobs::parseContainmentChoice(c.job_containment))
    return invalidArgument(where +
                           ": \"job_containment\" must be auto, cgroup-v2, cgroup-v1 or "
                           "subreaper");
  if (!state_dir.empty()) c.state_dir = state_dir;
  if (!jobs_root.empty()) c.jobs_root = jobs_root;
  return c;
}

}  // namespace hwl::agent
