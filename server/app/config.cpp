// Loading the server's JSON config file.
#include "config.hpp"

#include "hwl/crypto.hpp"
#include "hwl/json.hpp"

namespace hwl::server {

Result<ServerConfig> loadConfigFile(const std::filesystem::path& path, ServerConfig c) {
  auto text = crypto::readFile(path, 1 << 20);
  if (!text) return text.error();
  auto obj = json::parseObject(*text);
  if (!obj) return invalidArgument("config " + path.string() + ": " + obj.error().message);
  if (auto s = json::checkKeys(*obj,
                               {"data_dir", "listen", "checkpoint_every", "body_limit_bytes",
                                "header_limit_bytes", "header_timeout_ms", "idle_timeout_ms",
                                "worker_threads", "log_level", "agent_cert_lifetime_s",
                                "telemetry_interval_ms", "outbox_interval_ms", "scrape_timeout_ms",
                                "raw_retention_s", "minute_retention_s", "max_streams",
                                "max_streams_per_principal", "admin_stream_reserve", "auth_fail_burst",
                                "auth_fail_refill_per_minute"},
                               "config " + path.string());
      !s)
    return s.error();
  auto str = [&](const char* key, auto& field) -> Status {
    auto v = json::optionalString(*obj, key);
    if (!v) return invalidArgument("config " + path.string() + ": " + v.error().message);
    if (*v) field = **v;
    return {};
  };
  auto num = [&](const char* key, int64_t& field, int64_t min, int64_t max) -> Status {
    auto v = json::optionalInt(*obj, key);
    if (!v) return invalidArgument("config " + path.string() + ": " + v.error().message);
    if (*v) {
      if (**v < min || **v > max)
        return invalidArgument("config " + path.string() + ": \"" + key + "\" must be between " +
                               std::to_string(min) + " and " + std::to_string(max));
      field = **v;
    }
    return {};
  };
  std::string dir;
  for (auto s : {str("data_dir", dir), str("listen", c.listen), str("log_level", c.log_level),
                 num("checkpoint_every", c.checkpoint_every, 1, 1'000'000'000),
                 num("body_limit_bytes", c.body_limit_bytes, 1024, 1LL << 30),
                 num("header_limit_bytes", c.header_limit_bytes, 1024, 1 << 20),
                 num("header_timeout_ms", c.header_timeout_ms, 100, 3'600'000),
                 num("idle_timeout_ms", c.idle_timeout_ms, 100, 3'600'000),
                 num("worker_threads", c.worker_threads, 1, 1024),
                 num("agent_cert_lifetime_s", c.agent_cert_lifetime_s, 60, 90LL * 24 * 3600),
                 num("telemetry_interval_ms", c.telemetry_interval_ms, 100, 3'600'000),
                 num("outbox_interval_ms", c.outbox_interval_ms, 100, 3'600'000),
                 num("scrape_timeout_ms", c.scrape_timeout_ms, 100, 600'000),
                 num("raw_retention_s", c.raw_retention_s, 60, 366LL * 24 * 3600),
                 num("minute_retention_s", c.minute_retention_s, 3600, 10LL * 366 * 24 * 3600),
                 num("max_streams", c.max_streams, 1, 100'000),
                 num("max_streams_per_principal", c.max_streams_per_principal, 1, 100'000),
                 num("admin_stream_reserve", c.admin_stream_reserve, 0, 100'000),
                 num("auth_fail_burst", c.auth_fail_burst, 1, 1'000'000),
                 num("auth_fail_refill_per_minute", c.auth_fail_refill_per_minute, 1,
                     6'000'000)}) {
    if (!s) return s.error();
  }
  if (c.max_streams_per_principal > c.max_streams || c.admin_stream_reserve >= c.max_streams)
    return invalidArgument("config " + path.string() +
                           ": \"max_streams_per_principal\" may not exceed \"max_streams\", and "
                           "\"admin_stream_reserve\" must be below it");
  if (!dir.empty()) c.data_dir = dir;
  return c;
}

}  // namespace hwl::server
