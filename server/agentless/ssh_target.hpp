// How the server reaches an agentless host: what `host.enrolled_ssh` records under "ssh" and the
// hosts projection keeps. The host key fingerprints recorded at enrollment are pinned from then
// on: a host that later shows another key is refused (ssh.hostkey_mismatch), whatever
// known_hosts says.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "hwl/result.hpp"
#include "ssh/ssh_settings.hpp"

namespace hwl::agentless {

// Where the private key comes from when the server connects again.
enum class KeyKind {
  kFile,    // a key file on the server (path recorded; the file stays the operator's)
  kStored,  // a PEM the enrollment request carried, kept in the server's key store (0600)
  kAgent,   // the server's own ssh-agent
};

struct SshTarget {
  std::string user;
  std::string host;
  uint16_t port = 22;
  std::string host_key;      // "SHA256:…", as seen and accepted at enrollment
  std::string host_key_alg;  // its algorithm ("ssh-ed25519"…), the only one asked for later
  std::string jump;          // "user@bastion[:port]" or empty
  std::string jump_host_key;
  std::string jump_host_key_alg;
  KeyKind key = KeyKind::kAgent;
  std::string key_file;      // kFile: absolute path on the server
  std::string agent_socket;  // kAgent: empty for the server's SSH_AUTH_SOCK

  // "host:port" ("[v6]:port"), the hosts projection's address.
  [[nodiscard]] std::string address() const;
};

// A user name as OpenSSH accepts it and no shell or config parser misreads: letters, digits,
// '.', '_', '-' (not first), at most 64 characters.
[[nodiscard]] Status validateUser(std::string_view user);
// A DNS name or an IPv4/IPv6 literal (no brackets, no scope id), at most 253 characters.
[[nodiscard]] Status validateHost(std::string_view host);
// The one spelling a host is recorded and looked up under (known_hosts compares names exactly):
// DNS names in lower case without a trailing dot, IP literals as Asio prints them.
[[nodiscard]] Result<std::string> canonicalHost(std::string_view host);
// "host", "host:port", "[v6]" or "[v6]:port"; the host in its canonical spelling.
[[nodiscard]] Result<std::pair<std::string, uint16_t>> parseAddress(std::string_view address);

[[nodiscard]] boost::json::object toJson(const SshTarget& t);
// Checks every field as validate* does (a projection row is input too).
[[nodiscard]] Result<SshTarget> sshTargetFromJson(const boost::json::object& o);

// The settings to reach `t` again: both host keys pinned; the key from its source (`stored_key`
// is the key store's file for kStored).
[[nodiscard]] Result<ssh::SshSettings> settingsFor(const SshTarget& t,
                                                   const std::filesystem::path& stored_key);

}  // namespace hwl::agentless
