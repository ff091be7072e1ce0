// hwledger-server: parses flags and runs a subcommand (init, run, rebuild, version).
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
  std::string config_file, data_dir, listen, log_level;
  int64_t checkpoint_every = 0;
  auto* run_cmd = app.add_subcommand("run", "serve the API until SIGINT/SIGTERM");
  run_cmd->add_option("--config", config_file, "JSON config file");
  run_cmd->add_option("--data-dir", data_dir, "data directory");
  run_cmd->add_option("--listen", listen, "HOST:PORT (default 127.0.0.1:8443; port 0 = any)");
  run_cmd->add_option("--checkpoint-every", checkpoint_every, "sign a checkpoint every N events");
  run_cmd->add_option("--log-level", log_level, "trace|debug|info|warn|error");

  std::string rebuild_dir;
  auto* rebuild_cmd = app.add_subcommand("rebuild", "replay the events into the projections");
  rebuild_cmd->add_option("--data-dir", rebuild_dir, "data directory")->required();

  CLI11_PARSE(app, argc, argv);

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
    if (checkpoint_every > 0) cfg.checkpoint_every = checkpoint_every;
    if (!log_level.empty()) cfg.log_level = log_level;
    if (cfg.data_dir.empty()) {
      std::cerr << "error: --data-dir (or data_dir in --config) is required\n";
      return 2;
    }
    return runServer(cfg, std::cout);
  }
  if (*rebuild_cmd) return rebuild(DataDir{rebuild_dir}, std::cout);
  return 0;
}
