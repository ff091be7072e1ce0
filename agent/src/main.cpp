// hwledger-agent: parses flags and runs a subcommand (run, enroll).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "agent_api.hpp"
#include "agent_app.hpp"
#include "simulate.hpp"

int main(int argc, char** argv) {
  using namespace hwl::agent;
  CLI::App app{"hwledger-agent: GPU telemetry and jobs for the hwLedger fleet"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kAgentVersion);

  AgentConfig flags;
  std::string config_file, state_dir, jobs_root, listen, probe, job_user, containment;
  int64_t interval = 0, outbox_max = 0, log_max = 0, log_keep = -1, pids_max = -1;
  bool dev = false, dcgm = false;
  auto* run = app.add_subcommand("run", "run the agent in the foreground");
  run->add_option("--config", config_file, "JSON config file");
  run->add_option("--state-dir", state_dir, "state directory (default /var/lib/hwledger-agent)");
  run->add_option("--jobs-root", jobs_root, "where job working directories go");
  run->add_option("--listen", listen, "HOST:PORT (default 0.0.0.0:9443; port 0 = any)");
  run->add_option("--probe", probe, "auto|nvml|nvidia-smi|rocm-smi|sysfs|none|replay:PATH");
  run->add_option("--job-user", job_user, "unprivileged user jobs run as");
  run->add_option("--sample-interval-ms", interval, "telemetry sampling period");
  run->add_option("--outbox-max-entries", outbox_max, "outbox capacity");
  run->add_option("--log-max-bytes", log_max, "job log size before rotation");
  run->add_option("--log-keep", log_keep, "rotated job logs kept");
  run->add_option("--job-containment", containment, "auto|cgroup-v2|cgroup-v1|subreaper")
      ->check(CLI::IsMember({"auto", "cgroup-v2", "cgroup-v1", "subreaper"}));
  run->add_option("--job-pids-max", pids_max, "pids limit of a job that sets none (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{4'194'304}));
  run->add_flag("--dev", dev, "plain HTTP on a loopback address, without mTLS");
  run->add_flag("--metrics-dcgm-labels", dcgm, "dcgm-exporter's exact label names");

  SimulateOptions so;
  auto* sim = app.add_subcommand("simulate", "serve many simulated hosts (for benchmarks)");
  sim->add_option("--hosts", so.count, "how many hosts")->required();
  sim->add_option("--state-dir", so.state_dir, "where their identities live")->required();
  sim->add_option("--probe", so.probe, "replay:PATH of the captures")->required();
  sim->add_option("--port", so.port, "port of every host (on 127.0.x.y)");
  sim->add_option("--sample-interval-ms", so.sample_interval_ms, "sampling period");
  sim->add_option("--server", so.server, "server URL for hosts not yet enrolled");
  sim->add_option("--ca-pin", so.ca_pin, "CA pin for enrollment");
  sim->add_option("--tokens-file", so.tokens_file, "enrollment tokens, one per line");
  std::string slow_dispatch;
  sim->add_option("--slow-dispatch", slow_dispatch,
                  "HOST_INDEX:MS: that host answers POST /v1/jobs only after MS milliseconds");

  EnrollOptions eo;
  std::string enroll_state = "/var/lib/hwledger-agent";
  auto* enroll_cmd = app.add_subcommand("enroll", "join the fleet with a one-time token");
  enroll_cmd->add_option("--server", eo.server, "https://HOST:PORT of hwledger-server")->required();
  enroll_cmd->add_option("--token", eo.token, "enrollment token ID.SECRET")->required();
  enroll_cmd->add_option("--ca-pin", eo.ca_pin, "sha256:HEX of the fleet CA's public key")
      ->required();
  enroll_cmd->add_option("--state-dir", enroll_state, "state directory");
  enroll_cmd->add_option("--name", eo.name, "host name shown in the fleet");
  enroll_cmd->add_option("--advertise", eo.advertise,
                         "HOST:PORT where the server reaches this agent (default: this host's "
                         "address on the route to the server, port --advertise-port)");
  std::uint16_t advertise_port = 9443;
  enroll_cmd
      ->add_option("--advertise-port", advertise_port,
                   "the agent's port when --advertise is not given (9443)")
      ->check(CLI::Range(1, 65535));

  auto* routes_cmd = app.add_subcommand(
      "routes", "print the HTTP routes as JSON: method, path, role needed, body limit");
  bool routes_json = true;
  routes_cmd->add_flag("--json", routes_json, "JSON output (the only format)");

  CLI11_PARSE(app, argc, argv);

  if (*routes_cmd) {
    std::cout << boost::json::serialize(AgentApi::allRoutes().toJson()) << "\n";
    return 0;
  }

  if (*run) {
    AgentConfig cfg;
    if (!config_file.empty()) {
      auto c = loadAgentConfig(config_file);
      if (!c) {
        std::cerr << "error: " << c.error().message << "\n";
        return 2;
      }
      cfg = *c;
    }
    if (!state_dir.empty()) cfg.state_dir = state_dir;
    if (!jobs_root.empty()) cfg.jobs_root = jobs_root;
    if (!listen.empty()) cfg.listen = listen;
    if (!probe.empty()) cfg.probe = probe;
    if (!job_user.empty()) cfg.job_user = job_user;
    if (interval > 0) cfg.sample_interval_ms = interval;
    if (outbox_max > 0) cfg.outbox_max_entries = outbox_max;
    if (log_max > 0) cfg.log_max_bytes = log_max;
    if (log_keep >= 0) cfg.log_keep = log_keep;
    if (!containment.empty()) cfg.job_containment = containment;
    if (pids_max >= 0) cfg.job_pids_max = pids_max;
    if (dev) cfg.dev = true;
    if (dcgm) cfg.metrics_dcgm_labels = true;
    return runAgent(cfg, std::cout);
  }
  if (*sim) {
    if (!slow_dispatch.empty() && !parseSlowDispatch(slow_dispatch, so)) {
      std::cerr << "error: --slow-dispatch takes HOST_INDEX:MS\n";
      return 2;
    }
    return runSimulation(so, std::cout);
  }
  if (*enroll_cmd) {
    eo.state_dir = enroll_state;
    eo.platform = platformFacts();
    if (eo.advertise.empty()) {
      auto detected = detectAdvertise(eo.server, advertise_port);
      if (!detected) {
        std::cerr << "error: " << detected.error().message << "\n";
        return 1;
      }
      eo.advertise = *detected;
      std::cout << "advertising " << eo.advertise
                << " (this host's address on the route to the server; --advertise to change)\n";
    }
    auto id = enroll(eo);
    if (!id) {
      std::cerr << "error: " << id.error().message << "\n";
      return 1;
    }
    std::cout << "enrolled as " << id->host_id << " (" << id->name << ")\n"
              << "identity stored in " << eo.state_dir.string() << "\n";
    return 0;
  }
  return 0;
}
