// `hwledger hosts` and `hwledger gpus`: the enrolled hosts, their GPUs with the latest sample,
// enrolling a host over SSH, and revoking a host.
#include <cstdlib>
#include <string>

#include "client.hpp"
#include "commands.hpp"
#include "hwl/files.hpp"
#include "output.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct HostRevokeOptions {
  std::string id;
};

struct AddSshOptions {
  std::string destination;  // user@host[:port]
  std::string key;          // a private key file here, sent to the server (kept 0600 there)
  std::string server_key;   // a private key file on the server
  bool use_agent = false;   // the server's own ssh-agent
  std::string passphrase_file;
  std::string fingerprint;
  bool trust_on_first_use = false;
  std::string jump;
  std::string name;
  bool install_agent = false;
  std::string install_root;  // install-agent only, like the three below
  std::string job_user;
  std::string agent_listen;
  bool no_enable = false;
};

// "user@host[:port]" → user and address (the server checks both).
Result<std::pair<std::string, std::string>> splitDestination(const std::string& d) {
  const size_t at = d.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == d.size())
    return invalidArgument("the destination must be user@host[:port], got '" + d + "'");
  return std::make_pair(d.substr(0, at), d.substr(at + 1));
}

int hostsAddSsh(const AddSshOptions& o, const Context& ctx) {
  auto dest = splitDestination(o.destination);
  if (!dest) return fail(ctx.err, dest.error());
  bj::object body{{"user", dest->first}, {"address", dest->second}};
  const int sources =
      (o.key.empty() ? 0 : 1) + (o.server_key.empty() ? 0 : 1) + (o.use_agent ? 1 : 0);
  if (sources != 1)
    return fail(ctx.err, invalidArgument("give exactly one of --key FILE, --server-key PATH and "
                                         "--use-agent (public-key authentication only)"));
  if (!o.key.empty()) {
    auto pem = files::readFile(o.key, 64 * 1024);
    if (!pem) return fail(ctx.err, pem.error());
    body["key_pem"] = *pem;
  }
  if (!o.server_key.empty()) body["key_file"] = o.server_key;
  if (o.use_agent) body["use_agent"] = true;
  if (!o.passphrase_file.empty()) {
    auto pass = files::readFile(o.passphrase_file, 4096);
    if (!pass) return fail(ctx.err, pass.error());
    std::string p = std::move(*pass);
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    body["passphrase"] = p;
  }
  if (!o.fingerprint.empty()) body["fingerprint"] = o.fingerprint;
  if (o.trust_on_first_use) body["trust_on_first_use"] = true;
  if (!o.jump.empty()) body["jump"] = o.jump;
  if (!o.name.empty()) body["name"] = o.name;
  if (o.install_agent) body["mode"] = "install-agent";
  if (!o.install_agent &&
      (!o.install_root.empty() || !o.job_user.empty() || !o.agent_listen.empty() || o.no_enable))
    return fail(ctx.err, invalidArgument("--install-root, --job-user, --agent-listen and "
                                         "--no-enable go with --install-agent"));
  if (!o.install_root.empty()) body["install_root"] = o.install_root;
  if (!o.job_user.empty()) body["job_user"] = o.job_user;
  if (!o.agent_listen.empty()) body["agent_listen"] = o.agent_listen;
  if (o.no_enable) body["enable_unit"] = false;
  Api api(ctx.conn);
  return show(ctx, api.call("POST", "/v1/hosts/ssh", bj::serialize(body)), [&](const bj::value& v) {
    const auto& h = v.as_object();
    ctx.out << "enrolled " << str(h.at("host_id")) << " (" << str(h.at("name")) << ", "
            << str(h.at("kind")) << ") at " << str(h.at("address"));
    if (h.contains("host_key_fingerprint"))
      ctx.out << ", host key " << str(h.at("host_key_fingerprint"));
    if (h.contains("gpus") && h.at("gpus").is_array())
      ctx.out << ", " << h.at("gpus").as_array().size() << " GPU(s)";
    ctx.out << "\n";
    if (h.contains("install") && h.at("install").is_object()) {
      const auto& i = h.at("install").as_object();
      ctx.out << "installed " << str(i.at("binary")) << " (" << str(i.at("arch")) << "), unit "
              << str(i.at("unit"))
              << (i.at("unit_enabled").as_bool() ? " enabled and started\n"
                                                 : " not enabled (start the agent yourself)\n");
    }
    return 0;
  });
}

int hostsList(const NoOptions&, const Context& ctx) {
  Api api(ctx.conn);
  auto all = allHosts(api);
  if (!all) return fail(ctx.err, all.error());
  // All pages as one answer, so -o json reads like a single GET /v1/hosts.
  return show(ctx, bj::value(bj::object{{"hosts", std::move(*all)}}), [&](const bj::value& v) {
    Table t({"ID", "NAME", "KIND", "STATE", "ADDRESS", "GPUS", "LAST SEEN", "CERT EXPIRES"});
    for (const auto& e : v.as_object().at("hosts").as_array()) {
      const auto& o = e.as_object();
      std::string seen =
          o.at("last_seen_ms").is_int64() ? fmtTime(o.at("last_seen_ms").as_int64()) : "-";
      // Agentless hosts have no certificate.
      const int64_t expires = o.at("cert_not_after_ms").as_int64();
      t.add({str(o.at("id")), str(o.at("name")), str(o.at("kind")), str(o.at("state")),
             str(o.at("address")), std::to_string(o.at("gpus").as_array().size()), seen,
             expires > 0 ? fmtTime(expires) : "-"});
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
  auto* add = hosts->add_subcommand(
      "add-ssh", "enroll a host over SSH: agentless, or with the agent installed over SSH");
  auto& a = commands.add(add, hostsAddSsh);
  add->add_option("destination", a.destination, "user@host[:port]")->required();
  add->add_option("--key", a.key,
                  "private key file here; sent to the server, which keeps it (0600) to poll an "
                  "agentless host");
  add->add_option("--server-key", a.server_key, "private key file on the server");
  add->add_flag("--use-agent", a.use_agent, "authenticate with the server's ssh-agent");
  add->add_option("--passphrase-file", a.passphrase_file,
                  "file holding the key's passphrase (install-agent only: used once, never "
                  "stored)");
  add->add_option("--fingerprint", a.fingerprint,
                  "the host key's SHA256:… fingerprint (ssh-keygen -lf on the host)");
  add->add_flag("--trust-on-first-use", a.trust_on_first_use,
                "accept and record an unknown host key (the server's known_hosts)");
  add->add_option("--jump", a.jump, "reach the host through user@bastion[:port]");
  add->add_option("--name", a.name, "the host's name in the fleet (default: its address)");
  add->add_flag("--install-agent", a.install_agent,
                "install hwledger-agent over SSH and enroll it; no SSH credential is kept");
  add->add_option("--install-root", a.install_root,
                  "install-agent: an existing directory on the host to install under (default /)");
  add->add_option("--job-user", a.job_user, "install-agent: the user jobs run as (hwledger-job)");
  add->add_option("--agent-listen", a.agent_listen,
                  "install-agent: the agent's IP:PORT (default 0.0.0.0:9443)");
  add->add_flag("--no-enable", a.no_enable,
                "install-agent: install and enroll, but do not systemctl enable --now");

  commands.add(app.add_subcommand("gpus", "GPUs of the fleet with their latest sample"), gpus);
}

}  // namespace hwl::cli
