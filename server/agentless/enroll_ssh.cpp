#include "agentless/enroll_ssh.hpp"

#include <spdlog/spdlog.h>

#include "agentless/remote_probe.hpp"
#include "agentless/ssh_source.hpp"
#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"
#include "ssh/host_key.hpp"
#include "ssh/ssh_errors.hpp"

namespace hwl::agentless {

namespace bj = boost::json;

Result<SshEnrollRequest> parseSshEnrollRequest(const bj::object& body) {
  if (auto st = json::checkKeys(
          body, {"address", "user", "key_file", "key_pem", "passphrase", "use_agent", "fingerprint",
                 "jump", "jump_fingerprint", "trust_on_first_use", "name", "mode", "install_root",
                 "job_user", "agent_listen", "enable_unit"});
      !st)
    return st.error();
  SshEnrollRequest r;
  auto address = json::requiredString(body, "address");
  if (!address) return address.error();
  auto hp = parseAddress(*address);
  if (!hp) return invalidArgument("\"address\": " + hp.error().message);
  r.target.host = hp->first;
  r.target.port = hp->second;
  auto user = json::requiredString(body, "user");
  if (!user) return user.error();
  if (auto st = validateUser(*user); !st) return invalidArgument("\"user\": " + st.error().message);
  r.target.user = *user;

  auto key_file = json::optionalString(body, "key_file");
  if (!key_file) return key_file.error();
  auto key_pem = json::optionalString(body, "key_pem");
  if (!key_pem) return key_pem.error();
  auto use_agent = json::optionalBool(body, "use_agent");
  if (!use_agent) return use_agent.error();
  const int sources = (key_file->has_value() ? 1 : 0) + (key_pem->has_value() ? 1 : 0) +
                      (use_agent->value_or(false) ? 1 : 0);
  if (sources != 1)
    return invalidArgument(
        "exactly one of \"key_file\", \"key_pem\" and \"use_agent\": true is required (public-key "
        "authentication only)");
  if (key_file->has_value()) {
    const std::string& f = **key_file;
    if (f.empty() || f.front() != '/' || f.size() > 4096 || f.find('\0') != std::string::npos)
      return invalidArgument("\"key_file\" must be an absolute path on the server");
    r.target.key = KeyKind::kFile;
    r.target.key_file = f;  // checked against the server's key directory by checkKeyFile
  } else if (key_pem->has_value()) {
    if ((*key_pem)->size() > 64 * 1024 || (*key_pem)->find("PRIVATE KEY-----") == std::string::npos)
      return invalidArgument("\"key_pem\" must be a PEM or OpenSSH private key");
    r.target.key = KeyKind::kStored;
    r.key_pem = ssh::Secret(std::move(**key_pem));
  } else {
    r.target.key = KeyKind::kAgent;  // the server's own SSH_AUTH_SOCK, never a path from a request
  }

  auto pass = json::optionalString(body, "passphrase");
  if (!pass) return pass.error();
  if (pass->has_value()) {
    if (r.target.key == KeyKind::kAgent)
      return invalidArgument("\"passphrase\" is for \"key_file\" or \"key_pem\"");
    r.passphrase = ssh::Secret(std::move(**pass));
  }

  auto fp = json::optionalString(body, "fingerprint");
  if (!fp) return fp.error();
  if (fp->has_value()) {
    auto pin = ssh::parsePinnedFingerprint(**fp);
    if (!pin) return invalidArgument("\"fingerprint\": " + pin.error().message);
    r.fingerprint = *pin;
  }
  auto jump = json::optionalString(body, "jump");
  if (!jump) return jump.error();
  if (jump->has_value()) {
    auto j = ssh::parseJumpHost(**jump);
    if (!j) return invalidArgument("\"jump\": " + j.error().message);
    if (auto st = validateUser(j->user); !st)
      return invalidArgument("\"jump\": " + st.error().message);
    auto jh = canonicalHost(j->host);
    if (!jh) return invalidArgument("\"jump\": " + jh.error().message);
    r.target.jump = j->user + "@" + (jh->find(':') != std::string::npos ? "[" + *jh + "]" : *jh) +
                    ":" + std::to_string(j->port);
  }
  auto jfp = json::optionalString(body, "jump_fingerprint");
  if (!jfp) return jfp.error();
  if (jfp->has_value()) {
    if (r.target.jump.empty()) return invalidArgument("\"jump_fingerprint\" needs \"jump\"");
    auto pin = ssh::parsePinnedFingerprint(**jfp);
    if (!pin) return invalidArgument("\"jump_fingerprint\": " + pin.error().message);
    r.jump_fingerprint = *pin;
  }
  auto tofu = json::optionalBool(body, "trust_on_first_use");
  if (!tofu) return tofu.error();
  r.trust_on_first_use = tofu->value_or(false);

  auto name = json::optionalString(body, "name");
  if (!name) return name.error();
  r.name = name->value_or(r.target.host);
  if (r.name.empty() || r.name.size() > 128)
    return invalidArgument("\"name\" must be 1-128 characters");
  for (unsigned char c : r.name)
    if (c < 0x20 || c == 0x7f) return invalidArgument("\"name\" must not hold control characters");

  auto mode = json::optionalString(body, "mode");
  if (!mode) return mode.error();
  const std::string m = mode->value_or("agentless");
  if (m == "agentless")
    r.mode = EnrollMode::kAgentless;
  else if (m == "install-agent")
    r.mode = EnrollMode::kInstallAgent;
  else
    return invalidArgument("\"mode\" must be \"agentless\" or \"install-agent\"");
  if (r.mode == EnrollMode::kInstallAgent) {
    auto o = parseInstallOptions(body);
    if (!o) return o.error();
    r.install = std::move(*o);
  } else {
    for (std::string_view k : kInstallKeys)
      if (body.contains(k))
        return invalidArgument("\"" + std::string(k) + "\" goes with \"mode\": \"install-agent\"");
  }
  if (r.mode == EnrollMode::kAgentless && !r.passphrase.empty())
    return invalidArgument(
        "an agentless host needs a key the server can use unattended (a key without passphrase, "
        "or use_agent): a passphrase is used for one connection and never stored");
  return r;
}

Status checkKeyFile(const std::string& key_file, const std::filesystem::path& key_dir,
                    const std::filesystem::path& data_dir) {
  namespace fs = std::filesystem;
  if (key_dir.empty())
    return invalidArgument("\"key_file\": this server has no ssh_key_dir for operators' keys");
  // The directory the file is in, with every symlink resolved; the file itself must not be a
  // symlink (it is opened with O_NOFOLLOW).
  std::error_code ec1, ec2, ec3;
  const fs::path parent = fs::canonical(fs::path(key_file).parent_path(), ec1);
  const fs::path allowed = fs::canonical(key_dir, ec2);
  auto inside = [](const fs::path& p, const fs::path& dir) {
    if (p == dir) return true;
    auto rel = p.lexically_relative(dir);
    return !rel.empty() && rel.native().rfind("..", 0) != 0;
  };
  if (ec1 || ec2 || !inside(parent, allowed))
    return invalidArgument("\"key_file\" must be a file in the server's ssh_key_dir (" +
                           key_dir.string() + ")");
  const fs::path data = fs::weakly_canonical(data_dir, ec3);
  if (!ec3 && !data.empty() && inside(parent, data))
    return invalidArgument("\"key_file\" must not be one of the server's own files");
  return {};
}

Result<ssh::SshSettings> enrollSettings(const SshEnrollRequest& req,
                                        const std::filesystem::path& known_hosts,
                                        const PoolSettings& timeouts) {
  ssh::SshSettings s;
  s.host = req.target.host;
  s.port = req.target.port;
  s.user = req.target.user;
  switch (req.target.key) {
    case KeyKind::kFile:
      s.key = ssh::KeyFile{req.target.key_file};
      break;
    case KeyKind::kStored:
      s.key = ssh::KeyPem{req.key_pem};
      break;
    case KeyKind::kAgent:
      s.key = ssh::KeyAgent{req.target.agent_socket};
      break;
  }
  s.passphrase = req.passphrase;
  s.pinned_fingerprint = req.fingerprint;
  s.known_hosts = known_hosts;
  s.trust_on_first_use = req.trust_on_first_use;
  if (!req.target.jump.empty()) {
    auto j = ssh::parseJumpHost(req.target.jump);
    if (!j) return j.error();
    j->pinned_fingerprint = req.jump_fingerprint;
    s.jump = *j;
  }
  s.connect_timeout = timeouts.connect_timeout;
  s.command_timeout = timeouts.command_timeout;
  s.keepalive_interval = timeouts.keepalive_interval;
  if (auto st = ssh::validate(s); !st) return st.error();
  return s;
}

Error asGatewayError(const Error& e, std::string_view step) {
  Error out = e;
  out.message = std::string(step) + ": " + e.message;
  if (e.code == Code::kInvalidArgument || e.code == Code::kInternal) return out;
  out.code = e.code == Code::kDeadlineExceeded ? Code::kDeadlineExceeded : Code::kBadGateway;
  return out;
}

Result<bj::object> enrollSsh(SshEnrollRequest req, const SshEnrollContext& ctx) {
  if (req.target.key == KeyKind::kFile) {
    if (auto st = checkKeyFile(req.target.key_file, ctx.key_dir, ctx.data_dir); !st)
      return st.error();
  }
  // One host, one record: an address already enrolled (and not revoked) is refused, so a retried
  // request cannot count a host's GPUs twice.
  auto hosts = ctx.ledger.withReader([](ledger::ReadView& v) { return v.listHosts(); });
  if (!hosts) return hosts.error();
  for (const auto& h : *hosts)
    if (h.address == req.target.address() && h.state != proto::HostState::kRevoked &&
        h.kind == proto::HostKind::kSsh)
      return Error{Code::kAlreadyExists,
                   req.target.address() + " is already enrolled as " + h.id + " (" + h.name +
                       "); revoke it first to enroll it again",
                   "host_exists", R"({"host_id":")" + h.id + R"("})"};
  auto settings = enrollSettings(req, ctx.known_hosts, ctx.timeouts);
  if (!settings) return settings.error();
  auto session = ssh::SshSession::connect(std::move(*settings));
  req.passphrase.wipe();  // used for this one connection, never kept
  if (req.mode == EnrollMode::kInstallAgent) req.key_pem.wipe();  // nor is the key
  if (!session) {
    if (ssh::reason::is(session.error(), ssh::reason::kHostKeyMismatch)) {
      // On the ledger's own stream: the host has no id yet.
      auto ev = hostKeyMismatchEvent("", req.target.address(), session.error());
      ev.actor = ctx.actor;
      if (auto r = ctx.ledger.append(std::move(ev)); !r)
        spdlog::warn("ssh enrollment of {}: {}", req.target.address(), r.error().message);
    }
    return asGatewayError(session.error(), "connect");
  }
  req.target.host_key = (*session)->hostKeyFingerprint();
  req.target.host_key_alg = (*session)->hostKeyAlgorithm();
  req.target.jump_host_key = (*session)->jumpHostKeyFingerprint();
  req.target.jump_host_key_alg = (*session)->jumpHostKeyAlgorithm();
  auto probed = probeHost(**session, ctx.timeouts.command_timeout);
  if (!probed) return asGatewayError(probed.error(), "probe");

  const std::string host_id = crypto::newId("host-", 6);
  if (req.mode == EnrollMode::kInstallAgent) {
    if (!ctx.install_agent)
      return Error{Code::kFailedPrecondition,
                   "this server cannot install agents (no agent "
                   "binary configured)",
                   "install_agent_unavailable",
                   {}};
    auto done = ctx.install_agent(**session, req, *probed, ctx.actor);
    if (!done) return done.error();
    return *done;
  }

  if (req.target.key == KeyKind::kStored) {
    if (auto st = ctx.keys.put(host_id, req.key_pem); !st) return st.error();
  }
  bj::object data{{"host_id", host_id},
                  {"name", req.name},
                  {"address", req.target.address()},
                  {"host_key_fingerprint", req.target.host_key},
                  {"ssh", toJson(req.target)},
                  {"platform", platformOf(*probed)},
                  {"gpus", inventoryOf(probed->sample)}};
  ledger::AppendRequest ar;
  ar.actor = ctx.actor;
  ar.parts.push_back(
      {"host/" + host_id, ledger::kNoStream, {{"", proto::event::kHostEnrolledSsh, data}}});
  if (auto r = ctx.ledger.append(std::move(ar)); !r) {
    ctx.keys.remove(host_id);
    return r.error();
  }
  data["kind"] = "ssh";
  data.erase("ssh");
  data["ssh"] = toJson(req.target);
  return data;
}

}  // namespace hwl::agentless
