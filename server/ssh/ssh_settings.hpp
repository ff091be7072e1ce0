// What an SSH connection to an agentless host is built from: the host, the user, how to
// authenticate (a key file, a PEM in memory, or the server's own ssh-agent) and how to trust the
// host key (a pinned fingerprint, else known_hosts, optionally trust on first use).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "hwl/result.hpp"
#include "ssh/secret.hpp"

namespace hwl::ssh {

// A private key file in OpenSSH or PEM format. With libssh2 1.10, ed25519 and ecdsa keys work
// against a current OpenSSH; RSA keys do not (libssh2 1.10 signs only with ssh-rsa, SHA-1, which
// OpenSSH 8.8 and later refuse).
struct KeyFile {
  std::filesystem::path path;
};

// A private key held in memory (e.g. read from the server's secret store). Wiped after use.
struct KeyPem {
  Secret pem;
};

// Keys held by an ssh-agent: the server's own agent socket, named explicitly. Empty means the
// SSH_AUTH_SOCK of the server process. Agent forwarding to the remote is never requested.
struct KeyAgent {
  std::filesystem::path socket;
};

using KeySource = std::variant<KeyFile, KeyPem, KeyAgent>;

// A bastion to reach the target through (`user@bastion[:port]`, OpenSSH's ProxyJump). The
// bastion's host key goes through the same policy as the target's (known_hosts, trust on first
// use), or must match its own pin; authentication uses the target's key source.
struct JumpHost {
  std::string user;
  std::string host;
  uint16_t port = 22;
  std::string pinned_fingerprint;  // optional, "SHA256:…"
  std::string host_key_algorithm;  // with the pin: the only algorithm asked for (optional)
};

// Parses `user@host`, `user@host:port` or `user@[v6addr]:port`.
[[nodiscard]] Result<JumpHost> parseJumpHost(std::string_view spec);

struct SshSettings {
  std::string host;  // name or address, also the name looked up in known_hosts
  uint16_t port = 22;
  std::string user;
  KeySource key = KeyAgent{};
  // Passphrase of an encrypted KeyFile or KeyPem: used for one authentication, then wiped.
  Secret passphrase;

  // Host key policy, in this order: the pin must match when set; else known_hosts decides; a key
  // it does not have is refused unless trust_on_first_use, which appends it (mode 0600). A key
  // that differs from the recorded one is always refused.
  std::string pinned_fingerprint;  // "SHA256:<base64 without padding>", as ssh-keygen -l prints
  // With the pin: the pinned key's algorithm ("ssh-ed25519"…), the only one the key exchange
  // then asks for, so that a host with keys of several types shows the pinned one.
  std::string host_key_algorithm;
  std::filesystem::path known_hosts;
  bool trust_on_first_use = false;

  std::optional<JumpHost> jump;

  std::chrono::milliseconds connect_timeout{10'000};  // TCP, key exchange and authentication
  std::chrono::milliseconds command_timeout{60'000};  // default for exec()
  std::chrono::seconds keepalive_interval{30};        // 0 disables keepalives
};

// Checks what can be checked without a network: host, user, port, the pin's form, a key source,
// a known_hosts path when no pin is given.
[[nodiscard]] Status validate(const SshSettings& settings);

}  // namespace hwl::ssh
