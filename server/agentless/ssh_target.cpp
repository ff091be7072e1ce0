#include "agentless/ssh_target.hpp"

#include <boost/asio/ip/address.hpp>
#include <charconv>

#include "hwl/json.hpp"
#include "ssh/host_key.hpp"

namespace hwl::agentless {

namespace bj = boost::json;

namespace {

bool isDnsChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

Result<uint16_t> parsePort(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535)
    return invalidArgument("port must be 1-65535, got '" + std::string(s) + "'");
  return static_cast<uint16_t>(v);
}

std::string str(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string()) : "";
}

}  // namespace

Status validateUser(std::string_view user) {
  if (user.empty() || user.size() > 64 || user.front() == '-')
    return invalidArgument("user must be 1-64 characters and not start with '-'");
  for (char c : user)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return invalidArgument("user may hold only letters, digits, '.', '_' and '-'");
  return {};
}

Status validateHost(std::string_view host) {
  if (host.empty() || host.size() > 253) return invalidArgument("host must be 1-253 characters");
  boost::system::error_code ec;
  const std::string h(host);
  // A scope id ("fe80::1%eth0") would carry any bytes into names and known_hosts lines.
  if (h.find('%') != std::string::npos)
    return invalidArgument("host must not carry a scope id ('%'), got '" + h + "'");
  (void)boost::asio::ip::make_address(h, ec);
  if (!ec) return {};
  if (host.front() == '-' || host.front() == '.')
    return invalidArgument("host must be a DNS name or an IP address, got '" + h + "'");
  for (char c : host)
    if (!isDnsChar(c))
      return invalidArgument("host must be a DNS name or an IP address, got '" + h + "'");
  return {};
}

Result<std::string> canonicalHost(std::string_view host) {
  if (auto st = validateHost(host); !st) return st.error();
  boost::system::error_code ec;
  const std::string h(host);
  auto ip = boost::asio::ip::make_address(h, ec);
  if (!ec) return ip.to_string();
  std::string out;
  for (char c : h) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  while (!out.empty() && out.back() == '.') out.pop_back();
  if (out.empty()) return invalidArgument("host must be a DNS name or an IP address");
  return out;
}

Result<std::pair<std::string, uint16_t>> parseAddress(std::string_view address) {
  std::string host;
  uint16_t port = 22;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string_view::npos) return invalidArgument("unclosed '[' in address");
    host = std::string(address.substr(1, close - 1));
    auto rest = address.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalidArgument("expected ':port' after ']' in address");
      auto p = parsePort(rest.substr(1));
      if (!p) return p.error();
      port = *p;
    }
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address_v6(host, ec);
    if (ec) return invalidArgument("'[" + host + "]' is not an IPv6 address");
  } else {
    const size_t colon = address.find(':');
    if (colon != std::string_view::npos && address.find(':', colon + 1) != std::string_view::npos) {
      host = std::string(address);  // a bare IPv6 address, no port
    } else {
      host = std::string(address.substr(0, colon));
      if (colon != std::string_view::npos) {
        auto p = parsePort(address.substr(colon + 1));
        if (!p) return p.error();
        port = *p;
      }
    }
  }
  auto canonical = canonicalHost(host);
  if (!canonical) return canonical.error();
  return std::make_pair(*canonical, port);
}

std::string SshTarget::address() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

namespace {
std::string_view keyName(KeyKind k) {
  switch (k) {
    case KeyKind::kFile:
      return "file";
    case KeyKind::kStored:
      return "stored";
    case KeyKind::kAgent:
      return "agent";
  }
  return "agent";
}
}  // namespace

bj::object toJson(const SshTarget& t) {
  bj::object o{{"user", t.user},
               {"host", t.host},
               {"port", t.port},
               {"host_key", t.host_key},
               {"key", keyName(t.key)}};
  if (!t.host_key_alg.empty()) o["host_key_alg"] = t.host_key_alg;
  if (!t.jump.empty()) {
    o["jump"] = t.jump;
    o["jump_host_key"] = t.jump_host_key;
    if (!t.jump_host_key_alg.empty()) o["jump_host_key_alg"] = t.jump_host_key_alg;
  }
  if (t.key == KeyKind::kFile) o["key_file"] = t.key_file;
  if (t.key == KeyKind::kAgent && !t.agent_socket.empty()) o["agent_socket"] = t.agent_socket;
  return o;
}

Result<SshTarget> sshTargetFromJson(const bj::object& o) {
  SshTarget t;
  t.user = str(o, "user");
  t.host = str(o, "host");
  if (auto st = validateUser(t.user); !st) return st.error();
  if (auto st = validateHost(t.host); !st) return st.error();
  auto port = o.find("port");
  boost::system::error_code ec;
  const int64_t p = port == o.end() ? 0 : port->value().to_number<int64_t>(ec);
  if (ec || p < 1 || p > 65535) return invalidArgument("ssh: port must be 1-65535");
  t.port = static_cast<uint16_t>(p);
  t.host_key = str(o, "host_key");
  if (t.host_key.rfind("SHA256:", 0) != 0) return invalidArgument("ssh: no recorded host key");
  t.host_key_alg = str(o, "host_key_alg");
  t.jump = str(o, "jump");
  t.jump_host_key = str(o, "jump_host_key");
  t.jump_host_key_alg = str(o, "jump_host_key_alg");
  for (const std::string* alg : {&t.host_key_alg, &t.jump_host_key_alg})
    if (!alg->empty() && !ssh::isHostKeyAlgorithm(*alg))
      return invalidArgument("ssh: unknown host key algorithm '" + *alg + "'");
  if (!t.jump.empty()) {
    auto j = ssh::parseJumpHost(t.jump);
    if (!j) return j.error();
    if (t.jump_host_key.rfind("SHA256:", 0) != 0)
      return invalidArgument("ssh: no recorded host key for the jump host");
  }
  const std::string key = str(o, "key");
  if (key == "file") {
    t.key = KeyKind::kFile;
    t.key_file = str(o, "key_file");
    if (t.key_file.empty() || t.key_file.front() != '/')
      return invalidArgument("ssh: key_file must be an absolute path");
  } else if (key == "stored") {
    t.key = KeyKind::kStored;
  } else if (key == "agent") {
    t.key = KeyKind::kAgent;
    t.agent_socket = str(o, "agent_socket");
  } else {
    return invalidArgument("ssh: key must be file, stored or agent");
  }
  return t;
}

Result<ssh::SshSettings> settingsFor(const SshTarget& t, const std::filesystem::path& stored_key) {
  ssh::SshSettings s;
  s.host = t.host;
  s.port = t.port;
  s.user = t.user;
  s.pinned_fingerprint = t.host_key;
  s.host_key_algorithm = t.host_key_alg;
  switch (t.key) {
    case KeyKind::kFile:
      s.key = ssh::KeyFile{t.key_file};
      break;
    case KeyKind::kStored:
      s.key = ssh::KeyFile{stored_key};
      break;
    case KeyKind::kAgent:
      s.key = ssh::KeyAgent{t.agent_socket};
      break;
  }
  if (!t.jump.empty()) {
    auto j = ssh::parseJumpHost(t.jump);
    if (!j) return j.error();
    j->pinned_fingerprint = t.jump_host_key;
    j->host_key_algorithm = t.jump_host_key_alg;
    s.jump = *j;
  }
  if (auto st = ssh::validate(s); !st) return st.error();
  return s;
}

}  // namespace hwl::agentless
