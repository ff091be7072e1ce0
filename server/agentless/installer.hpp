// install-agent mode of enrollment over SSH (POST /v1/hosts/ssh, "mode": "install-agent"): over
// the verified session that enrollSsh opened, the server installs hwledger-agent the way
// deploy/install-agent.sh does and has the agent enroll itself with a fresh single-use token.
// Afterwards the host is an agent host like any other (host.enrolled from the agent's own
// POST /v1/enroll, scraped over mutual TLS); the server keeps no SSH credential for it.
//
// The steps, each named in an error: "arch" (uname -m against the agent binary's ELF machine),
// "server url" (where the agent reaches this server), "sudo" (a user other than root runs the
// privileged steps with `sudo -n`; a password is never sent), "preflight" (the install root is
// a directory, nothing of an agent is there yet, the tools and the job user exist), "users"
// (system users hwledger-agent and the job user, only when installing into /), "stage" (a private
// temp dir of the SSH user), "upload binary", "upload config", "upload unit" (SCP; the binary's
// SHA-256 checked on the host), "install" (directories and files with install-agent.sh's
// modes and owners), "systemctl" (systemd must be PID 1; daemon-reload), "token", "enroll"
// (`hwledger-agent enroll` on the host, as the agent user), "enable" (`systemctl enable --now`),
// "record" (host.agent_installed).
//
// A failure at any step undoes what the steps before it did: files and directories that were
// made are removed, users that were added are deleted, the unit is disabled, an unused token is
// revoked, and a host that had enrolled already is revoked (host.revoked). The error names the
// step and says what was undone (and what could not be, when the connection itself was lost).
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "agentless/enroll_ssh.hpp"
#include "agentless/remote_probe.hpp"
#include "hwl/result.hpp"
#include "ledger/store.hpp"
#include "ssh/ssh_session.hpp"

namespace hwl::agentless {

struct IssuedEnrollToken {
  std::string id;
  std::string token;  // "ID.SECRET"
};

struct InstallerSettings {
  // The hwledger-agent binary copied to hosts; its ELF header says which hosts it runs on.
  std::filesystem::path agent_binary;
  // systemd/hwledger-agent.service and deploy/agent.example.json (agentInstallFiles() below).
  std::string unit_template;
  std::string config_template;
  // Where agents reach this server ("https://HOST:PORT"), asked at each installation.
  std::function<Result<std::string>()> server_url;
  std::string ca_pin;  // "sha256:…" of the fleet CA
  // A single-use enrollment token (token.created kind enroll) for a host named `name`.
  std::function<Result<IssuedEnrollToken>(const std::string& name, const std::string& actor)>
      issue_token;
  // Revokes a token that no host used (kConflict when one did).
  std::function<Status(const std::string& token_id, const std::string& actor)> revoke_token;
  // Revokes a host that enrolled during an installation that then failed.
  std::function<Status(const std::string& host_id, const std::string& reason,
                       const std::string& actor)>
      revoke_host;
  std::chrono::milliseconds command_timeout{60'000};
  std::chrono::milliseconds upload_timeout{10 * 60'000};
};

class AgentInstaller {
 public:
  AgentInstaller(ledger::Ledger& ledger, InstallerSettings settings);

  // Runs every step on `session` (connected and probed by enrollSsh) and returns the answer of
  // POST /v1/hosts/ssh (201), or the error of the step that failed after undoing the others.
  [[nodiscard]] Result<boost::json::object> install(ssh::SshSession& session,
                                                    const SshEnrollRequest& request,
                                                    const Probed& probed,
                                                    const std::string& actor) const;

  [[nodiscard]] const InstallerSettings& settings() const { return settings_; }

 private:
  ledger::Ledger& ledger_;
  InstallerSettings settings_;
};

// The machine of an ELF executable as `uname -m` names it ("x86_64", "aarch64", …); an error for
// a file that is not an ELF executable or a machine this does not know.
[[nodiscard]] Result<std::string> elfArch(const std::filesystem::path& binary);
// `uname -m` output in the names elfArch uses (amd64 → x86_64, arm64 → aarch64, i386..i686 →
// i686, armv7* → armv7l).
[[nodiscard]] std::string normaliseArch(std::string_view uname_m);

// The unit and the agent config that the agent installer writes, as built into the server from
// systemd/hwledger-agent.service and deploy/agent.example.json.
struct AgentInstallFiles {
  std::string_view unit;
  std::string_view config;
};
[[nodiscard]] AgentInstallFiles agentInstallFiles();

// The paths of an installation under `root` ("/" or an absolute directory).
struct AgentPaths {
  std::string root;  // "" for "/", else the directory without a trailing '/'
  std::string binary, config_dir, config, unit_dir, unit, state_dir, jobs_dir;
};
[[nodiscard]] AgentPaths agentPaths(const std::string& install_root);
// The unit with its paths moved under paths.root (unchanged for "/"). An error when the template
// no longer holds a path this rewrites (each must appear exactly as expected).
[[nodiscard]] Result<std::string> unitFor(std::string_view unit_template, const AgentPaths& paths);
// agent.json: the template with state_dir, jobs_root, listen and job_user set.
[[nodiscard]] Result<std::string> configFor(std::string_view config_template,
                                            const AgentPaths& paths, const InstallOptions& o);

}  // namespace hwl::agentless
