// hwledger-server: parses flags and runs a subcommand (init, run, rebuild, routes, issue-cert).
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/server_app.hpp"

int main(int argc, char** argv) {
  using namespace hwl::server;
  CLI::App app{"hwledger-server: the hwLedger fleet ledger server"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kVersion);

  InitOptions init;
  std::string token_file;
  auto* init_cmd = app.add_subcommand("init", "create a data directory and the first admin token");
  init_cmd->add_option("--data-dir", init.data_dir, "data directory to create")->required();
  init_cmd->add_option("--admin-token-file", token_file, "also write the admin token here (0600)");
  init_cmd->add_option("--server-name", init.server_name, "DNS name for the server certificate");

  ServerConfig cfg;
  std::string config_file, data_dir, listen, log_level, public_url;
  int64_t checkpoint_every = 0;
  auto* run_cmd = app.add_subcommand("run", "serve the API until SIGINT/SIGTERM");
  run_cmd->add_option("--config", config_file, "JSON config file");
  run_cmd->add_option("--data-dir", data_dir, "data directory");
  run_cmd->add_option("--listen", listen, "HOST:PORT (default 127.0.0.1:8443; port 0 = any)");
  run_cmd->add_option("--public-url", public_url,
                      "https://HOST[:PORT] where GPU hosts reach this server (for enrollment)");
  run_cmd->add_option("--checkpoint-every", checkpoint_every, "sign a checkpoint every N events");
  run_cmd->add_option("--log-level", log_level, "trace|debug|info|warn|error");

  int64_t cert_lifetime = 0, telemetry_ms = 0, outbox_ms = 0;
  run_cmd->add_option("--telemetry-interval-ms", telemetry_ms, "telemetry scrape period (10000)");
  run_cmd->add_option("--outbox-interval-ms", outbox_ms, "agent outbox drain period (2000)");
  run_cmd->add_option("--agent-cert-lifetime", cert_lifetime,
                      "lifetime of issued agent certificates in seconds (60 to 90 days)");

  // issue-cert --role admin|metrics, and issue-admin-cert (the same with --role admin).
  std::string admin_dir, admin_name = "admin", p12_out, cert_out, key_out, role_name = "admin";
  int64_t admin_days = 90;
  auto* admin_cmd =
      app.add_subcommand("issue-admin-cert", "issue an admin client certificate from the fleet CA");
  auto* cert_cmd = app.add_subcommand(
      "issue-cert",
      "issue a client certificate from the fleet CA: admin (every operator route) "
      "or metrics (GET /metrics only, on the server and on every agent)");
  cert_cmd->add_option("--role", role_name, "admin|metrics")
      ->required()
      ->check(CLI::IsMember({"admin", "metrics"}));
  for (auto* c : {admin_cmd, cert_cmd}) {
    c->add_option("--data-dir", admin_dir, "data directory")->required();
    c->add_option("--name", admin_name, "who the certificate is for");
    c->add_option("--days", admin_days, "lifetime in days")->check(CLI::Range(1, 825));
    auto* p12_opt = c->add_option("--out", p12_out, "write a PKCS#12 file (no password)");
    auto* cert_opt = c->add_option("--cert-out", cert_out, "write the PEM certificate here");
    auto* key_opt = c->add_option("--key-out", key_out, "write the PEM key here (0600)");
    cert_opt->needs(key_opt);
    key_opt->needs(cert_opt);
    p12_opt->excludes(cert_opt);
  }

  std::string rebuild_dir;
  auto* rebuild_cmd = app.add_subcommand("rebuild", "replay the events into the projections");
  rebuild_cmd->add_option("--data-dir", rebuild_dir, "data directory")->required();

  auto* routes_cmd = app.add_subcommand(
      "routes", "print the HTTP routes as JSON: method, path, role needed, body limit");
  bool routes_json = true;
  routes_cmd->add_flag("--json", routes_json, "JSON output (the only format)");

  CLI11_PARSE(app, argc, argv);

  if (*routes_cmd) {
    std::cout << routesJson() << "\n";
    return 0;
  }

  if (*init_cmd) {
    if (!token_file.empty()) init.admin_token_file = token_file;
    auto token = initDataDir(init);
    if (!token) {
      std::cerr << "error: " << token.error().message << "\n";
      return token.error().code == hwl::Code::kAlreadyExists ? 3 : 1;
    }
    std::cout << "initialised " << init.data_dir.string() << "\n"
              << "admin token (shown once, stored only as a hash):\n"
              << *token << "\n";
    return 0;
  }
  if (*run_cmd) {
    if (!config_file.empty()) {
      auto c = loadConfigFile(config_file, cfg);
      if (!c) {
        std::cerr << "error: " << c.error().message << "\n";
        return 2;
      }
      cfg = *c;
    }
    if (!data_dir.empty()) cfg.data_dir = data_dir;
    if (!listen.empty()) cfg.listen = listen;
    if (!public_url.empty()) {
      auto u = normalisePublicUrl(public_url);
      if (!u) {
        std::cerr << "error: " << u.error().message << "\n";
        return 2;
      }
      cfg.public_url = *u;
    }
    if (checkpoint_every > 0) cfg.checkpoint_every = checkpoint_every;
    if (!log_level.empty()) cfg.log_level = log_level;
    if (telemetry_ms > 0) cfg.telemetry_interval_ms = telemetry_ms;
    if (outbox_ms > 0) cfg.outbox_interval_ms = outbox_ms;
    if (cert_lifetime != 0) {
      if (cert_lifetime < 60 || cert_lifetime > 90LL * 24 * 3600) {
        std::cerr << "error: --agent-cert-lifetime must be between 60 and 7776000 seconds\n";
        return 2;
      }
      cfg.agent_cert_lifetime_s = cert_lifetime;
    }
    if (cfg.data_dir.empty()) {
      std::cerr << "error: --data-dir (or data_dir in --config) is required\n";
      return 2;
    }
    return runServer(cfg, std::cout);
  }
  if (*rebuild_cmd) return rebuild(DataDir{rebuild_dir}, std::cout);
  if (*admin_cmd || *cert_cmd) {
    if (p12_out.empty() && cert_out.empty()) {
      std::cerr << "error: give --out FILE.p12 or --cert-out FILE --key-out FILE\n";
      return 2;
    }
    const ClientRole role = role_name == "metrics" ? ClientRole::kMetrics : ClientRole::kAdmin;
    auto s = issueClientCert(DataDir{admin_dir}, role, admin_name, admin_days, p12_out, cert_out,
                             key_out);
    if (!s) {
      std::cerr << "error: " << s.error().message << "\n";
      return 1;
    }
    std::cout << "issued a" << (role == ClientRole::kAdmin ? "n admin" : " metrics")
              << " certificate for \"" << admin_name << "\"\n";
    return 0;
  }
  return 0;
}
