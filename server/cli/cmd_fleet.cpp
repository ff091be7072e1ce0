// `hwledger hosts` and `hwledger gpus`: the enrolled hosts, their GPUs with the latest sample,
// and revoking a host.
#include <string>

#include "client.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct HostRevokeOptions {
  std::string id;
};

int hostsList(const NoOptions&, const Context& ctx) {
  Api api(ctx.conn);
  auto all = allHosts(api);
  if (!all) return fail(ctx.err, all.error());
  // All pages as one answer, so -o json reads like a single GET /v1/hosts.
  return show(ctx, bj::value(bj::object{{"hosts", std::move(*all)}}), [&](const bj::value& v) {
    Table t({"ID", "NAME", "STATE", "ADDRESS", "GPUS", "LAST SEEN", "CERT EXPIRES"});
    for (const auto& e : v.as_object().at("hosts").as_array()) {
      const auto& o = e.as_object();
      std::string seen =
          o.at("last_seen_ms").is_int64() ? fmtTime(o.at("last_seen_ms").as_int64()) : "-";
      t.add({str(o.at("id")), str(o.at("name")), str(o.at("state")), str(o.at("address")),
             std::to_string(o.at("gpus").as_array().size()), seen,
             fmtTime(o.at("cert_not_after_ms").as_int64())});
    }
    t.print(ctx.out);
    return 0;
  });
}

int hostsRevoke(const HostRevokeOptions& o, const Context& ctx) {
  Api api(ctx.conn);
  return show(ctx, api.call("POST", "/v1/hosts/" + o.id + "/revoke", "{}"), [&](const bj::value&) {
    ctx.out << "revoked " << o.id << "\n";
    return 0;
  });
}

int gpus(const NoOptions&, const Context& ctx) {
  Api api(ctx.conn);
  return show(ctx, api.call("GET", "/v1/gpus"), [&](const bj::value& v) {
    Table t({"HOST", "IDX", "NAME", "UUID", "MEMORY", "USED", "UTIL%", "TEMP C", "POWER W"});
    for (const auto& e : v.as_object().at("gpus").as_array()) {
      const auto& o = e.as_object();
      bj::object s;
      if (o.contains("sample")) s = o.at("sample").as_object();
      t.add({str(o.at("host_name")), std::to_string(o.at("index").as_int64()), str(o.at("name")),
             str(o.at("uuid")), gib(o.at("memory_total_bytes")),
             s.contains("memory_used_bytes") ? gib(s.at("memory_used_bytes")) : "-",
             numStr(s, "utilization_gpu_pct", "%.0f"), numStr(s, "temperature_c", "%.0f"),
             numStr(s, "power_w", "%.0f")});
    }
    t.print(ctx.out);
    return 0;
  });
}

}  // namespace

void registerFleet(CLI::App& app, Commands& commands) {
  auto* hosts = app.add_subcommand("hosts", "enrolled hosts and their state");
  commands.add(hosts, hostsList);
  auto* revoke = hosts->add_subcommand("revoke", "revoke a host's certificates");
  auto& r = commands.add(revoke, hostsRevoke);
  revoke->add_option("id", r.id, "host id")->required();

  commands.add(app.add_subcommand("gpus", "GPUs of the fleet with their latest sample"), gpus);
}

}  // namespace hwl::cli
