// Loading the server's JSON config file.
#include "config.hpp"

#include <boost/url/parse.hpp>
#include <cstdlib>

#include "agentless/ssh_job_scripts.hpp"
#include "hwl/files.hpp"
#include "hwl/json.hpp"

namespace hwl::server {

Result<std::string> normalisePublicUrl(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("\"public_url\" must be https://HOST[:PORT] (" + why +
                           "): " + std::string(url.substr(0, 200)));
  };
  auto u = boost::urls::parse_uri(url);
  if (!u) return bad("not a URL");
  if (u->scheme() != "https") return bad("the scheme must be https");
  if (u->has_userinfo()) return bad("no user or password");
  if (u->host().empty()) return bad("no host");
  if (!(u->encoded_path().empty() || u->encoded_path() == "/")) return bad("no path");
  if (u->has_query() || u->has_fragment()) return bad("no query or fragment");
  std::string host(u->encoded_host_and_port());
  if (u->has_port()) {
    if (u->port().empty() || u->port_number() == 0) return bad("the port must be 1-65535");
  }
  if (u->host_type() == boost::urls::host_type::name) {
    // RFC 1123 labels only: the name ends up in a command an operator pastes into a shell.
    const std::string name(u->encoded_host());
    if (name.size() > 253) return bad("the host name is too long");
    std::size_t label = 0;
    for (char c : name) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.';
      if (!ok) return bad("the host name may hold only letters, digits, '-' and '.'");
      label = c == '.' ? 0 : label + 1;
      if (label > 63) return bad("a host name label is longer than 63");
    }
  } else if (u->host_type() != boost::urls::host_type::ipv4 &&
             u->host_type() != boost::urls::host_type::ipv6) {
    return bad("the host must be a name or an IP address");
  }
  return "https://" + host;
}

Result<ServerConfig> loadConfigFile(const std::filesystem::path& path, ServerConfig c) {
  auto text = files::readFile(path, 1 << 20);
  if (!text) return text.error();
  auto obj = json::parseObject(*text);
  if (!obj) return invalidArgument("config " + path.string() + ": " + obj.error().message);
  if (auto s = json::checkKeys(*obj,
                               {"data_dir",
                                "listen",
                                "public_url",
                                "checkpoint_every",
                                "body_limit_bytes",
                                "header_limit_bytes",
                                "header_timeout_ms",
                                "idle_timeout_ms",
                                "worker_threads",
                                "log_level",
                                "agent_cert_lifetime_s",
                                "telemetry_interval_ms",
                                "outbox_interval_ms",
                                "scrape_timeout_ms",
                                "raw_retention_s",
                                "minute_retention_s",
                                "usage_interval_ms",
                                "usage_settle_ms",
                                "job_idle_after_ms",
                                "unaccounted_after_ms",
                                "max_streams",
                                "max_streams_per_principal",
                                "admin_stream_reserve",
                                "auth_fail_burst",
                                "auth_fail_refill_per_minute",
                                "ssh_poll_interval_ms",
                                "ssh_job_interval_ms",
                                "ssh_poll_threads",
                                "ssh_connect_timeout_ms",
                                "ssh_command_timeout_ms",
                                "agent_binary",
                                "ssh_key_dir",
                                "ssh_job_root",
                                "model_dir",
                                "providers"},
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
  std::string dir, public_url;
  for (const auto& s :
       {str("data_dir", dir), str("listen", c.listen), str("public_url", public_url),
        str("log_level", c.log_level),
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
        num("usage_interval_ms", c.usage_interval_ms, 100, 3'600'000),
        // Below a minute the last minute bucket of a window may still be filling: its samples
        // up to the sum are counted (the default waits for it to close).
        num("usage_settle_ms", c.usage_settle_ms, 1'000, 3'600'000),
        num("job_idle_after_ms", c.job_idle_after_ms, 60'000, 7LL * 24 * 3'600'000),
        num("unaccounted_after_ms", c.unaccounted_after_ms, 0, 24LL * 3'600'000),
        num("max_streams", c.max_streams, 1, 100'000),
        num("max_streams_per_principal", c.max_streams_per_principal, 1, 100'000),
        num("admin_stream_reserve", c.admin_stream_reserve, 0, 100'000),
        num("auth_fail_burst", c.auth_fail_burst, 1, 1'000'000),
        num("auth_fail_refill_per_minute", c.auth_fail_refill_per_minute, 1, 6'000'000),
        num("ssh_poll_interval_ms", c.ssh_poll_interval_ms, 1000, 86'400'000),
        num("ssh_job_interval_ms", c.ssh_job_interval_ms, 100, 3'600'000),
        num("ssh_poll_threads", c.ssh_poll_threads, 1, 256),
        num("ssh_connect_timeout_ms", c.ssh_connect_timeout_ms, 100, 600'000),
        num("ssh_command_timeout_ms", c.ssh_command_timeout_ms, 100, 3'600'000),
        str("agent_binary", c.agent_binary), str("ssh_key_dir", c.ssh_key_dir),
        str("ssh_job_root", c.ssh_job_root), str("model_dir", c.model_dir)}) {
    if (!s) return s.error();
  }
  if (!c.model_dir.empty() && (!std::filesystem::path(c.model_dir).is_absolute() ||
                               !std::filesystem::is_directory(c.model_dir))) {
    return invalidArgument("config " + path.string() +
                           ": \"model_dir\" must be an absolute path to a directory");
  }
  if (auto s = agentless::validateJobRoot(c.ssh_job_root); !s)
    return invalidArgument("config " + path.string() + ": " + s.error().message);
  if (c.max_streams_per_principal > c.max_streams || c.admin_stream_reserve >= c.max_streams)
    return invalidArgument("config " + path.string() +
                           ": \"max_streams_per_principal\" may not exceed \"max_streams\", and "
                           "\"admin_stream_reserve\" must be below it");
  if (const auto* p = obj->if_contains("providers")) {
    if (!p->is_object())
      return invalidArgument("config " + path.string() + ": \"providers\" must be an object");
    auto r = rentals::parseRentalsConfig(p->as_object(),
                                         [](const char* name) { return std::getenv(name); });
    if (!r) return invalidArgument("config " + path.string() + ": " + r.error().message);
    c.rentals = std::move(*r);
  }
  if (!dir.empty()) c.data_dir = dir;
  if (!public_url.empty()) {
    auto u = normalisePublicUrl(public_url);
    if (!u) return invalidArgument("config " + path.string() + ": " + u.error().message);
    c.public_url = *u;
  }
  return c;
}

}  // namespace hwl::server
