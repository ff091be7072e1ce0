// hwledger-server configuration: defaults, a JSON file (--config), then command-line flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "hwl/result.hpp"
#include "rentals/rentals_config.hpp"

namespace hwl::server {

struct ServerConfig {
  std::filesystem::path data_dir;
  std::string listen = "127.0.0.1:8443";
  // How GPU hosts reach this server ("https://HOST[:PORT]"); printed in enrollment commands.
  // Empty: enrollment commands name the URL the operator's CLI used.
  std::string public_url;
  int64_t checkpoint_every = 1000;
  int64_t body_limit_bytes = 1 << 20;
  int64_t header_limit_bytes = 8 * 1024;
  int64_t header_timeout_ms = 10'000;
  int64_t idle_timeout_ms = 30'000;
  int64_t worker_threads = 16;
  std::string log_level = "info";
  int64_t agent_cert_lifetime_s = 7 * 24 * 3600;  // at most 90 days
  int64_t telemetry_interval_ms = 10'000;         // scrape of each agent's telemetry
  int64_t outbox_interval_ms = 2'000;             // drain of each agent's outbox
  int64_t scrape_timeout_ms = 5'000;
  int64_t raw_retention_s = 24 * 3600;
  int64_t minute_retention_s = 30LL * 24 * 3600;
  // job.usage: how often ended and long jobs are looked at, and how long after a window closes
  // its figures are summed (its last minute closed and flushed).
  int64_t usage_interval_ms = 30'000;
  int64_t usage_settle_ms = 90'000;
  // job.idle: a ready job whose GPUs sat at their idle power with no utilisation this long.
  int64_t job_idle_after_ms = 15 * 60'000;
  // gpu.unaccounted_use: processes on a GPU no job holds, once seen this long (a process that
  // comes and goes quicker is not recorded).
  int64_t unaccounted_after_ms = 5 * 60'000;
  // Live event streams and followed job logs open at once: in all, per principal (API token or
  // admin certificate), and the share of max_streams that only admins may take.
  int64_t max_streams = 64;
  int64_t max_streams_per_principal = 8;
  int64_t admin_stream_reserve = 8;
  // Failed authentications per source address: a bucket of auth_fail_burst failures refilled at
  // auth_fail_refill_per_minute; an empty bucket answers 429 with Retry-After.
  int64_t auth_fail_burst = 30;
  int64_t auth_fail_refill_per_minute = 60;
  // Agentless hosts over SSH: telemetry poll of each host, job state poll of a host with jobs,
  // the worker threads that run the SSH calls, and their timeouts.
  int64_t ssh_poll_interval_ms = 60'000;
  int64_t ssh_job_interval_ms = 2'000;
  int64_t ssh_poll_threads = 8;
  int64_t ssh_connect_timeout_ms = 10'000;
  int64_t ssh_command_timeout_ms = 60'000;
  // Private key files that POST /v1/hosts/ssh may name ("key_file") must be in this directory.
  std::string ssh_key_dir = "/etc/hwledger/ssh";
  // Where jobs on SSH hosts keep their directories (ROOT/<job-id>/): an absolute path on the
  // host, or one under the remote user's HOME ("~/...").
  std::string ssh_job_root = "~/.hwledger/jobs";
  // Model configs (config.json files) the planner may be asked for by name (GET /v1/models,
  // "model_name" in POST /v1/plan and /v1/placements): an absolute directory, or empty: none.
  std::string model_dir;
  // install-agent mode: the hwledger-agent binary copied to hosts (empty: the one beside the
  // server's own executable, if there is one).
  std::string agent_binary;
  // Cloud rentals: the "providers" section (empty: no provider, the rental routes answer 412).
  rentals::RentalsConfig rentals;
};

// Reads a JSON config file over `base`. An unknown key is an error naming the key.
Result<ServerConfig> loadConfigFile(const std::filesystem::path& path, ServerConfig base = {});

// `url` as "https://HOST[:PORT]" when it is an https URL with a host, an optional port and
// nothing else (no user, path, query or fragment); otherwise an error naming public_url.
Result<std::string> normalisePublicUrl(std::string_view url);

// The files of a data directory.
struct DataDir {
  std::filesystem::path root;
  [[nodiscard]] std::filesystem::path ledger() const { return root / "ledger.db"; }
  [[nodiscard]] std::filesystem::path caKey() const { return root / "ca.key"; }
  [[nodiscard]] std::filesystem::path caCert() const { return root / "ca.crt"; }
  [[nodiscard]] std::filesystem::path serverKey() const { return root / "server.key"; }
  [[nodiscard]] std::filesystem::path serverCert() const { return root / "server.crt"; }
  [[nodiscard]] std::filesystem::path checkpointKey() const { return root / "checkpoint.key"; }
  [[nodiscard]] std::filesystem::path checkpointPub() const { return root / "checkpoint.pub"; }
  [[nodiscard]] std::filesystem::path checkpointLog() const { return root / "checkpoints.log"; }
  [[nodiscard]] std::filesystem::path listenAddr() const { return root / "listen.addr"; }
  // Host keys of SSH hosts (OpenSSH format, `ssh-keygen -F HOST -f DATA/known_hosts`).
  [[nodiscard]] std::filesystem::path knownHosts() const { return root / "known_hosts"; }
  // Private keys sent with enrollments of agentless hosts (0700 directory, 0600 files).
  [[nodiscard]] std::filesystem::path sshKeys() const { return root / "ssh" / "keys"; }
};

}  // namespace hwl::server
