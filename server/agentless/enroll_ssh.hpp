// Enrollment of a host over SSH (POST /v1/hosts/ssh): the request, checked field by field; the
// connection under the host-key policy (a pin, else DATA/known_hosts, else trust on first use
// when asked; a changed key is refused and appends ssh.hostkey_mismatch); the remote probe; and
// host.enrolled_ssh with the inventory, the platform and how to reach the host again (its host
// key pinned from then on). A key sent as PEM is kept in the key store for an agentless host; an
// encrypted key's passphrase is used for this connection only, so an agentless host needs a key
// the server can use unattended (a file without passphrase, a PEM without one, or the server's
// ssh-agent).
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "agentless/install_options.hpp"
#include "agentless/remote_probe.hpp"
#include "agentless/session_pool.hpp"
#include "agentless/ssh_target.hpp"
#include "hwl/result.hpp"
#include "ledger/store.hpp"
#include "ssh/secret.hpp"
#include "ssh/ssh_session.hpp"

namespace hwl::agentless {

enum class EnrollMode { kAgentless, kInstallAgent };

struct SshEnrollRequest {
  SshTarget target;  // user, host, port, jump, key kind (+ key_file / agent socket)
  ssh::Secret key_pem;
  ssh::Secret passphrase;
  std::string fingerprint;       // pin for the target, normalized, or empty
  std::string jump_fingerprint;  // pin for the jump host, or empty
  bool trust_on_first_use = false;
  std::string name;
  EnrollMode mode = EnrollMode::kAgentless;
  InstallOptions install;  // install-agent mode only
};

// Checks every field: unknown keys, types, the address, the user, the key source (exactly one of
// key_file, key_pem, use_agent), pins, the jump host, the mode, and install-agent's own fields
// (install_options.hpp; refused in agentless mode).
[[nodiscard]] Result<SshEnrollRequest> parseSshEnrollRequest(const boost::json::object& body);

struct SshEnrollContext {
  ledger::Ledger& ledger;
  const KeyStore& keys;
  std::filesystem::path known_hosts;
  // key_file must name a file in this directory (never one of the data directory's own keys).
  std::filesystem::path key_dir;
  std::filesystem::path data_dir;
  PoolSettings timeouts;
  std::string actor;
  // install-agent mode: runs the installation over the verified, probed session (installer.hpp)
  // and returns the answer, or the error of the failed step.
  std::function<Result<boost::json::object>(ssh::SshSession&, const SshEnrollRequest&,
                                            const Probed&, const std::string& actor)>
      install_agent;
};

// Connects, probes, records. Returns the host as the API answers it (201).
[[nodiscard]] Result<boost::json::object> enrollSsh(SshEnrollRequest req,
                                                    const SshEnrollContext& ctx);

// Whether `key_file` may be used: a file in or below `key_dir` (symlinks of its directories
// resolved), outside the server's data directory.
[[nodiscard]] Status checkKeyFile(const std::string& key_file, const std::filesystem::path& key_dir,
                                  const std::filesystem::path& data_dir);

// The settings of the enrollment's one connection (the policy the request asks for).
[[nodiscard]] Result<ssh::SshSettings> enrollSettings(const SshEnrollRequest& req,
                                                      const std::filesystem::path& known_hosts,
                                                      const PoolSettings& timeouts);

// An SSH failure as the API reports it: 502 (504 for a timeout), with the SSH reason and details
// kept, so an operator sees "ssh_hostkey_unknown" and the fingerprint to compare.
[[nodiscard]] Error asGatewayError(const Error& e, std::string_view step);

}  // namespace hwl::agentless
