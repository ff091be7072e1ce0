#include "rentals/rentals_config.hpp"

#include <cctype>
#include <cmath>

#include "hwl/json.hpp"

namespace hwl::rentals {

namespace bj = boost::json;

std::string_view defaultBaseUrl(std::string_view provider) {
  if (provider == kVast) return kVastBaseUrl;
  if (provider == kRunpod) return kRunpodBaseUrl;
  if (provider == kLambda) return kLambdaBaseUrl;
  return {};
}

std::string apiKeyVariable(std::string_view provider) {
  std::string v = "HWLEDGER_";
  for (char c : provider)
    v.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return v + "_API_KEY";
}

namespace {

Error bad(const std::string& where, const std::string& why) {
  return invalidArgument("\"providers\"" + where + ": " + why);
}

Result<int64_t> intIn(const bj::object& o, const char* key, int64_t def, int64_t min, int64_t max,
                      const std::string& where) {
  auto v = json::optionalInt(o, key);
  if (!v) return bad(where, v.error().message);
  if (!*v) return def;
  if (**v < min || **v > max)
    return bad(where, std::string("\"") + key + "\" must be between " + std::to_string(min) +
                          " and " + std::to_string(max));
  return **v;
}

Result<std::optional<double>> usd(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<double>{};
  double d = 0;
  if (v->is_double()) {
    d = v->as_double();
  } else if (v->is_int64()) {
    d = static_cast<double>(v->as_int64());
  } else {
    return bad("", std::string("\"") + key + "\" must be a number of US dollars");
  }
  if (!std::isfinite(d) || d <= 0 || d > 1e9)
    return bad("", std::string("\"") + key + "\" must be above 0");
  return std::optional<double>(d);
}

}  // namespace

Result<RentalsConfig> parseRentalsConfig(const bj::object& section,
                                         const std::function<const char*(const char*)>& env) {
  if (auto s = json::checkKeys(
          section,
          {"vast", "runpod", "lambda", "reconcile_interval_s", "max_hourly_usd", "max_total_usd",
           "terminate_on_budget", "terminate_orphans", "provision_timeout_s", "offers_ttl_s",
           "terminate_confirm_timeout_s", "enroll", "agent_install", "poll_interval_ms"},
          "\"providers\"");
      !s)
    return s.error();
  RentalsConfig c;
  auto ri = intIn(section, "reconcile_interval_s", c.reconcile_interval_s, 1, 86'400, "");
  auto pt = intIn(section, "provision_timeout_s", c.provision_timeout_s, 1, 7 * 86'400, "");
  auto ot = intIn(section, "offers_ttl_s", c.offers_ttl_s, 0, 86'400, "");
  auto tc = intIn(section, "terminate_confirm_timeout_s", c.terminate_confirm_timeout_s, 1,
                  7 * 86'400, "");
  auto pi = intIn(section, "poll_interval_ms", c.poll_interval_ms, 50, 3'600'000, "");
  for (const auto* r : {&ri, &pt, &ot, &tc, &pi})
    if (!*r) return r->error();
  c.reconcile_interval_s = *ri;
  c.provision_timeout_s = *pt;
  c.offers_ttl_s = *ot;
  c.terminate_confirm_timeout_s = *tc;
  c.poll_interval_ms = *pi;
  auto hourly = usd(section, "max_hourly_usd");
  if (!hourly) return hourly.error();
  c.max_hourly_usd = *hourly;
  auto total = usd(section, "max_total_usd");
  if (!total) return total.error();
  c.max_total_usd = *total;
  if (const auto* e = section.if_contains("enroll")) {
    if (e->is_bool()) {
      c.enroll = e->as_bool() ? "agentless" : "none";
    } else if (e->is_string() && (e->as_string() == "agentless" || e->as_string() == "agent" ||
                                  e->as_string() == "none")) {
      c.enroll = std::string(e->as_string());
    } else {
      return bad("", "\"enroll\" must be \"agentless\", \"agent\" or \"none\"");
    }
  }
  if (const auto* a = section.if_contains("agent_install")) {
    if (!a->is_object()) return bad("", "\"agent_install\" must be an object");
    c.agent_install = a->as_object();
  }
  for (const char* k : {"terminate_on_budget", "terminate_orphans"}) {
    auto b = json::optionalBool(section, k);
    if (!b) return bad("", b.error().message);
    if (!*b) continue;
    if (std::string_view(k) == "terminate_on_budget") c.terminate_on_budget = **b;
    if (std::string_view(k) == "terminate_orphans") c.terminate_orphans = **b;
  }
  for (std::string_view name : {kVast, kRunpod, kLambda}) {
    const auto* v = section.if_contains(name);
    if (v == nullptr) continue;
    std::string where = "." + std::string(name);
    if (!v->is_object()) return bad(where, "must be an object");
    const auto& o = v->as_object();
    if (auto s = json::checkKeys(o,
                                 {"base_url", "api_key", "ca_file", "image", "timeout_ms",
                                  "max_attempts", "backoff_initial_ms", "ssh_user", "ssh_port"},
                                 "\"providers\"" + where);
        !s)
      return s.error();
    ProviderConfig p;
    for (auto [key, field] : {std::pair{"base_url", &p.base_url}, std::pair{"api_key", &p.api_key},
                              std::pair{"ca_file", &p.ca_file}, std::pair{"image", &p.image},
                              std::pair{"ssh_user", &p.ssh_user}}) {
      auto s = json::optionalString(o, key);
      if (!s) return bad(where, s.error().message);
      if (*s) *field = **s;
    }
    auto to = intIn(o, "timeout_ms", p.timeout_ms, 100, 600'000, where);
    auto ma = intIn(o, "max_attempts", p.max_attempts, 1, 20, where);
    auto bi = intIn(o, "backoff_initial_ms", p.backoff_initial_ms, 1, 600'000, where);
    auto sp = intIn(o, "ssh_port", p.ssh_port, 0, 65535, where);
    for (const auto* r : {&to, &ma, &bi, &sp})
      if (!*r) return r->error();
    p.timeout_ms = *to;
    p.max_attempts = *ma;
    p.backoff_initial_ms = *bi;
    p.ssh_port = *sp;
    if (!p.ssh_user.empty()) {
      bool ok = p.ssh_user.size() <= 64 && p.ssh_user.front() != '-';
      for (char ch : p.ssh_user)
        ok = ok &&
             (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-');
      if (!ok) return bad(where, "\"ssh_user\" may hold only letters, digits, '.', '_', '-'");
    }
    if (p.base_url.empty()) p.base_url = std::string(defaultBaseUrl(name));
    if (auto u = parseBaseUrl(p.base_url); !u) return bad(where, u.error().message);
    // The key must be there at start-up (a rental that cannot be ended is the worst outcome).
    if (auto e = endpointOf(std::string(name), p, env); !e) return e.error();
    c.providers[std::string(name)] = std::move(p);
  }
  return c;
}

Result<Endpoint> endpointOf(const std::string& provider, const ProviderConfig& c,
                            const std::function<const char*(const char*)>& env) {
  Endpoint e;
  e.base_url = c.base_url.empty() ? std::string(defaultBaseUrl(provider)) : c.base_url;
  e.api_key = c.api_key;
  if (e.api_key.empty() && env) {
    const char* v = env(apiKeyVariable(provider).c_str());
    if (v != nullptr) e.api_key = v;
  }
  if (e.api_key.empty())
    return invalidArgument("\"providers\"." + provider + ": no API key (set \"api_key\" or " +
                           apiKeyVariable(provider) + ")");
  if (auto s = checkApiKey(e.api_key); !s)
    return invalidArgument("\"providers\"." + provider + ": " + s.error().message);
  e.ca_file = c.ca_file;
  e.timeout = std::chrono::milliseconds(c.timeout_ms);
  e.max_attempts = static_cast<int>(c.max_attempts);
  e.backoff_initial = std::chrono::milliseconds(c.backoff_initial_ms);
  return e;
}

}  // namespace hwl::rentals
