// Host key identity: SHA256 fingerprints as OpenSSH prints them, pins, and the known_hosts
// policy (libssh2_knownhost_* over an OpenSSH-format file, trust on first use appended
// atomically). The policy runs right after the key exchange, before the user name or any
// credential is sent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

// libssh2's own tag name, declared here so that this header does not include libssh2.h.
using LIBSSH2_SESSION = struct _LIBSSH2_SESSION;  // NOLINT(bugprone-reserved-identifier)

namespace hwl::ssh {

// "SHA256:" + base64 without padding of SHA-256 over the key blob, as `ssh-keygen -l` prints.
[[nodiscard]] std::string fingerprintSha256(std::string_view key_blob);

// Checks and normalizes a pin: "SHA256:" followed by the base64 (padding tolerated and removed)
// of 32 bytes. MD5 fingerprints and anything else are refused.
[[nodiscard]] Result<std::string> parsePinnedFingerprint(std::string_view text);

// The SSH name of a host key type (LIBSSH2_HOSTKEY_TYPE_*): "ssh-ed25519",
// "ecdsa-sha2-nistp256"…; empty for a type we do not accept.
[[nodiscard]] std::string hostKeyAlgorithmName(int hostkey_type);
// Whether `name` is one of those names.
[[nodiscard]] bool isHostKeyAlgorithm(std::string_view name);

// The name OpenSSH records a host under: "host" for port 22, "[host]:port" otherwise.
[[nodiscard]] std::string knownHostsName(std::string_view host, uint16_t port);

struct HostKeyPolicy {
  std::string pinned_fingerprint;  // normalized, or empty
  std::filesystem::path known_hosts;
  bool trust_on_first_use = false;
};

// What known_hosts says of a key for a name.
enum class KnownHostsVerdict {
  kMatch,      // recorded for this name
  kNotFound,   // nothing recorded for this name
  kMismatch,   // another key of the same type is recorded: the key changed
  kOtherType,  // only keys of other types are recorded (OpenSSH warns; we refuse)
  kRevoked,    // listed under @revoked
};

// Reads `path` (a missing file is empty) and checks the key. A line libssh2 cannot parse fails
// the check (fail closed) with its line number. `hostkey_type` is LIBSSH2_HOSTKEY_TYPE_*.
[[nodiscard]] Result<KnownHostsVerdict> checkKnownHosts(LIBSSH2_SESSION* session,
                                                        const std::filesystem::path& path,
                                                        const std::string& name,
                                                        std::string_view key_blob,
                                                        int hostkey_type);

// Appends `name keytype base64` to known_hosts under an exclusive lock, as one atomic replace
// (temp file, fsync, rename) with mode 0600. Checks again under the lock: a key another process
// recorded meanwhile wins, and a different one is refused as a mismatch.
[[nodiscard]] Status appendKnownHost(LIBSSH2_SESSION* session, const std::filesystem::path& path,
                                     const std::string& name, std::string_view key_blob,
                                     int hostkey_type);

// Host key algorithms for the key exchange, the types known_hosts holds for `name` first (as
// OpenSSH orders them), so that a host recorded with its ecdsa key is not asked for ed25519.
[[nodiscard]] std::string hostKeyAlgorithmPreference(LIBSSH2_SESSION* session,
                                                     const std::filesystem::path& path,
                                                     const std::string& name);

// The whole policy on the key of an established (key-exchanged) session. Returns the key's
// fingerprint when it is trusted; see ssh_errors.hpp for the refusals.
[[nodiscard]] Result<std::string> verifyHostKey(LIBSSH2_SESSION* session, std::string_view host,
                                                uint16_t port, const HostKeyPolicy& policy);

}  // namespace hwl::ssh
