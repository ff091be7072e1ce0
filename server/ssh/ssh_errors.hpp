// The specific reasons an SSH call fails, carried in Error::reason next to a canonical code, so
// that a caller can tell a changed host key (which the ledger records as ssh.hostkey_mismatch)
// from an unknown one, from a refused key, from an unreachable host.
#pragma once

#include <string_view>

#include "hwl/result.hpp"

namespace hwl::ssh::reason {

// Code::kPermissionDenied: the host key differs from the pin or from known_hosts, is revoked
// there, or known_hosts holds a key of another type for this host. Error::details holds
// {"presented_fingerprint": "SHA256:…"}, the key the host showed.
inline constexpr std::string_view kHostKeyMismatch = "ssh_hostkey_mismatch";
// Code::kFailedPrecondition: known_hosts has no key for the host and trust on first use is off.
// The message carries the key's SHA256 fingerprint, for an operator to compare and pin, and
// Error::details holds it as {"fingerprint": "SHA256:…"}.
inline constexpr std::string_view kHostKeyUnknown = "ssh_hostkey_unknown";
// Code::kUnauthenticated: the server refused our key(s), or offers no public-key method at all.
inline constexpr std::string_view kAuthFailed = "ssh_auth_failed";
inline constexpr std::string_view kNoPublicKeyAuth = "ssh_no_publickey_auth";
// Code::kUnauthenticated: our private key cannot be used (wrong passphrase, unreadable file, a
// format or type libssh2 cannot load), or the agent holds no usable key.
inline constexpr std::string_view kKeyUnusable = "ssh_key_unusable";
// Code::kUnavailable: the TCP connection, the key exchange or the transport failed.
inline constexpr std::string_view kConnect = "ssh_connect";
inline constexpr std::string_view kTransport = "ssh_transport";
// Code::kDeadlineExceeded / kResourceExhausted for exec.
inline constexpr std::string_view kTimeout = "ssh_timeout";
inline constexpr std::string_view kOutputLimit = "ssh_output_limit";
// Code::kFailedPrecondition for upload: the host's scp refused the file (its message follows).
inline constexpr std::string_view kUpload = "ssh_upload";

inline bool is(const Error& e, std::string_view r) { return e.reason == r; }

}  // namespace hwl::ssh::reason
