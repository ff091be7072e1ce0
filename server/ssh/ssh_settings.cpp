// Parsing of jump host specs and the offline checks of SshSettings.
#include "ssh/ssh_settings.hpp"

#include <charconv>

#include "ssh/host_key.hpp"

namespace hwl::ssh {

namespace {

Result<uint16_t> parsePort(std::string_view text) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v == 0 || v > 65535)
    return invalidArgument("bad port '" + std::string(text) + "'");
  return static_cast<uint16_t>(v);
}

bool hasControlOrSpace(std::string_view s) {
  for (unsigned char c : s)
    if (c <= 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace

Result<JumpHost> parseJumpHost(std::string_view spec) {
  JumpHost j;
  const size_t at = spec.rfind('@');
  if (at == std::string_view::npos || at == 0)
    return invalidArgument("jump host must be user@host[:port], got '" + std::string(spec) + "'");
  j.user = std::string(spec.substr(0, at));
  std::string_view rest = spec.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return invalidArgument("unclosed '[' in jump host");
    j.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalidArgument("expected ':port' after ']' in jump host");
      auto port = parsePort(rest.substr(1));
      if (!port) return port.error();
      j.port = *port;
    }
  } else {
    const size_t colon = rest.find(':');
    j.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      auto port = parsePort(rest.substr(colon + 1));
      if (!port) return port.error();
      j.port = *port;
    }
  }
  if (j.host.empty() || hasControlOrSpace(j.host) || hasControlOrSpace(j.user))
    return invalidArgument("jump host must be user@host[:port], got '" + std::string(spec) + "'");
  return j;
}

Status validate(const SshSettings& s) {
  if (s.host.empty() || hasControlOrSpace(s.host)) return invalidArgument("ssh: bad host name");
  if (s.user.empty() || hasControlOrSpace(s.user)) return invalidArgument("ssh: bad user name");
  if (s.port == 0) return invalidArgument("ssh: port 0");
  if (!s.pinned_fingerprint.empty()) {
    auto pin = parsePinnedFingerprint(s.pinned_fingerprint);
    if (!pin) return pin.error();
  } else if (s.known_hosts.empty()) {
    return invalidArgument("ssh: a pinned fingerprint or a known_hosts file is required");
  }
  if (const auto* f = std::get_if<KeyFile>(&s.key); f != nullptr && f->path.empty())
    return invalidArgument("ssh: empty key file path");
  if (const auto* p = std::get_if<KeyPem>(&s.key); p != nullptr && p->pem.empty())
    return invalidArgument("ssh: empty private key PEM");
  if (s.connect_timeout.count() <= 0 || s.command_timeout.count() <= 0)
    return invalidArgument("ssh: timeouts must be positive");
  if (s.jump) {
    if (s.jump->host.empty() || s.jump->user.empty() || s.jump->port == 0)
      return invalidArgument("ssh: incomplete jump host");
    if (!s.jump->pinned_fingerprint.empty()) {
      auto pin = parsePinnedFingerprint(s.jump->pinned_fingerprint);
      if (!pin) return pin.error();
    } else if (s.known_hosts.empty()) {
      return invalidArgument("ssh: the jump host needs a pin or a known_hosts file");
    }
  }
  return {};
}

}  // namespace hwl::ssh
