// The agent installer of install-agent enrollment (see installer.hpp for the steps).
#include "agentless/installer.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"
#include "ssh/shell_quote.hpp"

namespace hwl::agentless {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kAgentUser = "hwledger-agent";
constexpr const char* kUnitName = "hwledger-agent.service";

bool rootPathChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
         c == '.' || c == '_' || c == '-' || c == '+' || c == '@';
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

// At most `max` bytes of a command's message, for an error.
std::string excerpt(const std::string& s, size_t max = 2048) {
  std::string t = trimmed(s);
  if (t.size() > max) t = t.substr(0, max) + "…";
  for (auto& c : t)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') c = ' ';
  return t;
}

Result<std::string> sha256File(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return notFound("cannot read " + p.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return internal("EVP_DigestInit_ex failed");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.bad()) return internal("reading " + p.string() + " failed");
    if (in.gcount() > 0 &&
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount())) != 1)
      return internal("EVP_DigestUpdate failed");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md.data(), &len) != 1)
    return internal("EVP_DigestFinal_ex failed");
  return crypto::hex(std::string_view(reinterpret_cast<const char*>(md.data()), len));
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

bool isWildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// "IP:PORT" or "[IPv6]:PORT" → host (without brackets) and port.
Result<std::pair<std::string, uint16_t>> splitListen(std::string_view s) {
  std::string host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find("]:");
    if (close == std::string_view::npos) return invalidArgument("expected [IPv6]:PORT");
    host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address_v6(host, ec);
    if (ec) return invalidArgument("'" + host + "' is not an IPv6 address");
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return invalidArgument("expected IP:PORT");
    host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address_v4(host, ec);
    if (ec) return invalidArgument("'" + host + "' is not an IPv4 address (IPv6: [ADDR]:PORT)");
  }
  if (port.empty() || port.size() > 5) return invalidArgument("the port must be 1-65535");
  unsigned v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return invalidArgument("the port must be 1-65535");
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return invalidArgument("the port must be 1-65535");
  return std::make_pair(host, static_cast<uint16_t>(v));
}

// Replaces `from` by `to` where it occurs, requiring `count` occurrences.
Status replaceExactly(std::string& text, std::string_view from, std::string_view to, int count) {
  int seen = 0;
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos)) {
    text.replace(pos, from.size(), to);
    pos += to.size();
    ++seen;
  }
  if (seen != count)
    return internal("the agent unit template holds '" + std::string(from) + "' " +
                    std::to_string(seen) + " times, not " + std::to_string(count) +
                    ": the installer's rewriting must follow systemd/hwledger-agent.service");
  return {};
}

}  // namespace

// ---- options, paths, files ---------------------------------------------------------------------

Result<InstallOptions> parseInstallOptions(const bj::object& body) {
  InstallOptions o;
  auto root = json::optionalString(body, "install_root");
  if (!root) return root.error();
  if (root->has_value()) {
    std::string r = **root;
    if (r.empty() || r.front() != '/' || r.size() > 1024)
      return invalidArgument("\"install_root\" must be an absolute path of at most 1024 bytes");
    for (char c : r)
      if (!rootPathChar(c))
        return invalidArgument(
            "\"install_root\" may hold only letters, digits and '/', '.', '_', '-', '+', '@'");
    while (r.size() > 1 && r.back() == '/') r.pop_back();
    size_t pos = 1;
    while (pos <= r.size() && r != "/") {
      size_t end = r.find('/', pos);
      if (end == std::string::npos) end = r.size();
      const std::string_view part = std::string_view(r).substr(pos, end - pos);
      if (part.empty() || part == "." || part == "..")
        return invalidArgument("\"install_root\" must not hold empty, '.' or '..' components");
      pos = end + 1;
    }
    o.install_root = r;
  }
  auto job_user = json::optionalString(body, "job_user");
  if (!job_user) return job_user.error();
  if (job_user->has_value()) {
    const std::string& u = **job_user;
    bool ok = !u.empty() && u.size() <= 32 && ((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_');
    for (char c : u)
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
    if (!ok || u == "root" || u == kAgentUser)
      return invalidArgument(
          "\"job_user\" must be a plain user name ([a-z_][a-z0-9_-]*, at most 32) other than root "
          "and hwledger-agent");
    o.job_user = u;
  }
  auto listen = json::optionalString(body, "agent_listen");
  if (!listen) return listen.error();
  if (listen->has_value()) {
    if (auto hp = splitListen(**listen); !hp)
      return invalidArgument("\"agent_listen\": " + hp.error().message);
    o.agent_listen = **listen;
  }
  auto enable = json::optionalBool(body, "enable_unit");
  if (!enable) return enable.error();
  o.enable_unit = enable->value_or(true);
  return o;
}

AgentPaths agentPaths(const std::string& install_root) {
  AgentPaths p;
  p.root = install_root == "/" ? "" : install_root;
  p.binary = p.root + "/usr/local/bin/hwledger-agent";
  p.config_dir = p.root + "/etc/hwledger";
  p.config = p.config_dir + "/agent.json";
  p.unit_dir = p.root + "/etc/systemd/system";
  p.unit = p.unit_dir + "/" + kUnitName;
  p.state_dir = p.root + "/var/lib/hwledger-agent";
  p.jobs_dir = p.root + "/var/lib/hwledger-jobs";
  return p;
}

Result<std::string> unitFor(std::string_view unit_template, const AgentPaths& p) {
  std::string u(unit_template);
  // Every rewrite is checked even for "/", so a changed template fails for every install.
  const std::string r = p.root;
  for (const auto& [from, to, n] : std::vector<std::tuple<std::string, std::string, int>>{
           {"ConditionPathExists=/var/lib/hwledger-agent/enrollment.json",
            "ConditionPathExists=" + p.state_dir + "/enrollment.json", 1},
           {"ExecStart=/usr/local/bin/hwledger-agent run --config /etc/hwledger/agent.json",
            "ExecStart=" + p.binary + " run --config " + p.config, 1},
           {"ReadWritePaths=-/var/lib/hwledger-jobs\n", "ReadWritePaths=-" + p.jobs_dir + "\n", 1},
           // StateDirectory= is always under /var/lib: a relocated state dir is made writable
           // by path instead (the installer creates it with the same mode).
           {"StateDirectory=hwledger-agent\nStateDirectoryMode=0700\n",
            r.empty() ? std::string("StateDirectory=hwledger-agent\nStateDirectoryMode=0700\n")
                      : "ReadWritePaths=" + p.state_dir + "\n",
            1}}) {
    if (auto st = replaceExactly(u, from, to, n); !st) return st.error();
  }
  if (!r.empty())
    u = "# Installed by hwledger-server over SSH with every path under " + r + ".\n" + u;
  return u;
}

Result<std::string> configFor(std::string_view config_template, const AgentPaths& p,
                              const InstallOptions& o) {
  auto parsed = json::parseObject(config_template);
  if (!parsed) return internal("the agent config template is not a JSON object");
  bj::object c = std::move(*parsed);
  for (const char* k : {"state_dir", "jobs_root", "listen", "job_user"})
    if (!c.contains(k))
      return internal(std::string("the agent config template lacks \"") + k + "\"");
  c["state_dir"] = p.state_dir;
  c["jobs_root"] = p.jobs_dir;
  c["listen"] = o.agent_listen;
  c["job_user"] = o.job_user;
  // One key a line, as deploy/agent.example.json is written.
  std::string out = "{\n";
  bool first = true;
  for (const auto& kv : c) {
    if (!first) out += ",\n";
    first = false;
    out += "  " + bj::serialize(bj::value(kv.key())) + ": " + bj::serialize(kv.value());
  }
  out += "\n}\n";
  return out;
}

Result<std::string> elfArch(const fs::path& binary) {
  std::ifstream in(binary, std::ios::binary);
  if (!in) return notFound("no agent binary at " + binary.string());
  unsigned char h[20] = {};
  in.read(reinterpret_cast<char*>(h), sizeof h);
  if (in.gcount() != static_cast<std::streamsize>(sizeof h) || h[0] != 0x7f || h[1] != 'E' ||
      h[2] != 'L' || h[3] != 'F')
    return invalidArgument(binary.string() + " is not an ELF executable");
  const bool lsb = h[5] == 1;
  const unsigned machine = lsb ? (h[18] | (h[19] << 8)) : ((h[18] << 8) | h[19]);
  const bool is64 = h[4] == 2;
  switch (machine) {
    case 62:
      return std::string("x86_64");
    case 183:
      return std::string("aarch64");
    case 3:
      return std::string("i686");
    case 40:
      return std::string("armv7l");
    case 21:
      return std::string(lsb ? "ppc64le" : "ppc64");
    case 22:
      return std::string(is64 ? "s390x" : "s390");
    case 243:
      return std::string(is64 ? "riscv64" : "riscv32");
    default:
      return invalidArgument(binary.string() + " is for ELF machine " + std::to_string(machine) +
                             ", which the installer does not know");
  }
}

std::string normaliseArch(std::string_view uname_m) {
  std::string a = trimmed(std::string(uname_m));
  if (a == "amd64") return "x86_64";
  if (a == "arm64") return "aarch64";
  if (a == "i386" || a == "i486" || a == "i586") return "i686";
  if (a.rfind("armv7", 0) == 0) return "armv7l";
  return a;
}

// ---- the installation ---------------------------------------------------------------------------

namespace {

// One installation: the steps run in order, each recording what it made so that a failure can
// undo it.
class Installation {
 public:
  Installation(ledger::Ledger& ledger, const InstallerSettings& s, ssh::SshSession& session,
               const SshEnrollRequest& req, const Probed& probed, const std::string& actor)
      : ledger_(ledger),
        s_(s),
        session_(session),
        req_(req),
        probed_(probed),
        actor_(actor),
        paths_(agentPaths(req.install.install_root)) {}

  Result<bj::object> run() {
    auto r = steps();
    // The staging dir goes whatever happened.
    if (!stage_.empty()) {
      auto rm = exec({"rm", "-rf", "--", stage_}, false);
      if (!rm || rm->exit_status != 0) {
        spdlog::warn("install-agent on {}: could not remove {}", where(), stage_);
        stage_left_ = true;
      }
    }
    if (r) return r;
    Error e = r.error();
    const Undone u = rollback();
    auto joined = [](const std::vector<std::string>& v) {
      std::string out;
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
      return out;
    };
    e.message = "install-agent failed at step \"" + step_ + "\": " + e.message;
    if (!u.done.empty()) e.message += "; undone: " + joined(u.done);
    if (!u.left.empty()) e.message += "; NOT undone: " + joined(u.left);
    if (u.done.empty() && u.left.empty()) e.message += "; nothing had been changed";
    bj::array removed;
    for (const auto& p : u.removed) removed.emplace_back(p);
    bj::array left;
    for (const auto& l : u.left) left.emplace_back(l);
    bj::object details{{"step", step_},
                       {"steps_done", done_},
                       {"removed", std::move(removed)},
                       {"not_undone", std::move(left)}};
    e.details = bj::serialize(details);
    if (e.reason.empty()) e.reason = "install_agent_failed";
    spdlog::warn("install-agent on {}: {}", where(), e.message);
    return e;
  }

 private:
  std::string where() const { return req_.target.user + "@" + req_.target.address(); }

  void begin(std::string step) { step_ = std::move(step); }
  void finish() { done_.emplace_back(step_); }

  // A failure of the current step.
  Error fail(Code code, std::string message, std::string reason = {}) const {
    return Error{code, std::move(message), std::move(reason), {}};
  }
  // An SSH error, as enrollSsh reports them (502, 504 for a timeout).
  static Error remote(const Error& e) {
    Error out = e;
    if (e.code != Code::kInvalidArgument && e.code != Code::kInternal &&
        e.code != Code::kFailedPrecondition)
      out.code = e.code == Code::kDeadlineExceeded ? Code::kDeadlineExceeded : Code::kBadGateway;
    return out;
  }

  // Runs argv on the host; privileged: through `sudo -n` when the SSH user is not root.
  Result<ssh::ExecResult> exec(std::vector<std::string> argv, bool privileged) {
    if (privileged && !is_root_) argv.insert(argv.begin(), {"sudo", "-n", "--"});
    auto cmd = ssh::buildCommand(argv);
    if (!cmd) return cmd.error();
    auto r = session_.exec(*cmd, s_.command_timeout);
    // A command a signal ended reports exit status 0: it did not succeed.
    if (r && !r->exit_signal.empty() && r->exit_status == 0) r->exit_status = -1;
    return r;
  }
  // As exec, and an error (with what the command printed) unless it exits 0.
  Result<ssh::ExecResult> check(std::vector<std::string> argv, bool privileged,
                                const std::string& what) {
    auto r = exec(std::move(argv), privileged);
    if (!r) return remote(r.error());
    if (r->exit_status != 0) {
      std::string msg = excerpt(r->err.empty() ? r->out : r->err);
      return fail(Code::kBadGateway, what + " failed (exit " + std::to_string(r->exit_status) +
                                         (r->exit_signal.empty() ? "" : ", " + r->exit_signal) +
                                         ")" + (msg.empty() ? "" : ": " + msg));
    }
    return r;
  }

  Result<bj::object> steps();
  Status stepArch();
  Status stepServerUrl();
  Status stepSudo();
  Status stepPreflight();
  Status stepUsers();
  Status stepStage();
  Status stepUploads();
  Status stepInstall();
  Status stepSystemd();
  Status stepToken();
  Status stepEnroll();
  Status stepEnable();
  Result<bj::object> stepRecord();
  // Whether the token enrolled a host (the ledger says so, not the agent's output).
  Result<std::optional<std::string>> enrolledHost();
  struct Undone {
    std::vector<std::string> done;  // what was undone
    std::vector<std::string> left;  // what could not be
    std::vector<std::string> removed;
  };
  Undone rollback();

  ledger::Ledger& ledger_;
  const InstallerSettings& s_;
  ssh::SshSession& session_;
  const SshEnrollRequest& req_;
  const Probed& probed_;
  const std::string& actor_;
  AgentPaths paths_;

  std::string step_;
  bj::array done_;
  bool is_root_ = false;
  std::string arch_;
  std::string server_url_;
  std::string stage_;
  bool stage_left_ = false;
  std::vector<std::string> created_users_;
  std::vector<std::string> created_dirs_;  // in the order they were made
  std::vector<std::string> installed_files_;
  bool linked_unit_ = false;
  bool reloaded_ = false;
  bool enabled_ = false;
  std::string token_id_;
  std::string token_;
  std::string host_id_;
};

Result<bj::object> Installation::steps() {
  for (auto [name, fn] : std::vector<std::pair<const char*, Status (Installation::*)()>>{
           {"arch", &Installation::stepArch},
           {"server url", &Installation::stepServerUrl},
           {"sudo", &Installation::stepSudo},
           {"preflight", &Installation::stepPreflight},
           {"users", &Installation::stepUsers},
           {"stage", &Installation::stepStage},
           {"upload", &Installation::stepUploads},
           {"install", &Installation::stepInstall},
           {"systemctl", &Installation::stepSystemd},
           {"token", &Installation::stepToken},
           {"enroll", &Installation::stepEnroll},
           {"enable", &Installation::stepEnable}}) {
    begin(name);
    if (auto st = (this->*fn)(); !st) return st.error();
  }
  begin("record");
  return stepRecord();
}

Status Installation::stepArch() {
  auto ours = elfArch(s_.agent_binary);
  if (!ours)
    return fail(Code::kFailedPrecondition,
                "this server has no usable agent binary: " + ours.error().message +
                    " (set agent_binary in the server config)",
                "install_agent_unavailable");
  arch_ = normaliseArch(probed_.arch);
  if (arch_.empty())
    return fail(Code::kBadGateway, where() + " did not say its architecture (uname -m)");
  if (arch_ != *ours)
    return fail(Code::kFailedPrecondition,
                where() + " is " + arch_ + " and this server's agent binary (" +
                    s_.agent_binary.string() + ") is " + *ours + ": no matching agent binary",
                "install_agent_arch");
  finish();
  return {};
}

Status Installation::stepServerUrl() {
  if (!s_.server_url) return fail(Code::kFailedPrecondition, "the server's URL is not known");
  auto url = s_.server_url();
  if (!url) return fail(Code::kFailedPrecondition, url.error().message);
  server_url_ = *url;
  finish();
  return {};
}

Status Installation::stepSudo() {
  auto id = check({"id", "-u"}, false, "id -u");
  if (!id) return id.error();
  is_root_ = trimmed(id->out) == "0";
  if (!is_root_) {
    // -n: never a password prompt, so no password is ever asked for or sent.
    auto r = exec({"sudo", "-n", "true"}, false);
    if (!r) return remote(r.error());
    if (r->exit_status != 0)
      return fail(Code::kFailedPrecondition,
                  req_.target.user + " is not root and cannot use sudo without a password on " +
                      where() +
                      " (sudo -n true: " + excerpt(r->err.empty() ? r->out : r->err, 512) +
                      "); connect as root or give the user passwordless sudo",
                  "install_agent_sudo");
  }
  finish();
  return {};
}

Status Installation::stepPreflight() {
  // Reports the first problem on stdout and exits 3; nothing is changed.
  static constexpr const char* kScript = R"SH(set -u
root=$1; shift; under_root=$1; shift; job_user=$1; shift; unit=$1; shift
if [ ! -d "$root" ]; then echo "the install root $root is not a directory on the host"; exit 3; fi
for f in "$@"; do
  if [ -e "$f" ] || [ -L "$f" ]; then
    echo "$f already exists: an agent is installed there already (remove it, or choose another install_root)"; exit 3
  fi
done
for t in install mkdir rm chown chmod sha256sum mktemp scp id; do
  command -v "$t" >/dev/null 2>&1 || { echo "$t is not installed on the host"; exit 3; }
done
if [ "$under_root" = 1 ]; then
  for t in useradd userdel runuser; do
    command -v "$t" >/dev/null 2>&1 || { echo "$t is not installed on the host"; exit 3; }
  done
else
  id -u "$job_user" >/dev/null 2>&1 || { echo "the job user $job_user does not exist on the host (users are created only when installing into /)"; exit 3; }
  if [ -n "$unit" ] && { [ -e "/etc/systemd/system/$unit" ] || [ -L "/etc/systemd/system/$unit" ]; }; then
    echo "/etc/systemd/system/$unit exists: another hwledger-agent unit is installed on the host"; exit 3
  fi
fi
)SH";
  const bool under_root = paths_.root.empty();
  auto r = exec(
      {"sh", "-c", kScript, "sh", paths_.root.empty() ? "/" : paths_.root, under_root ? "1" : "0",
       req_.install.job_user, req_.install.enable_unit && !under_root ? kUnitName : "",
       paths_.binary, paths_.config, paths_.unit, paths_.state_dir + "/enrollment.json"},
      true);
  if (!r) return remote(r.error());
  if (r->exit_status == 3) return fail(Code::kFailedPrecondition, excerpt(r->out));
  if (r->exit_status != 0)
    return fail(Code::kBadGateway, "the checks failed (exit " + std::to_string(r->exit_status) +
                                       "): " + excerpt(r->err + r->out));
  finish();
  return {};
}

Status Installation::stepUsers() {
  if (!paths_.root.empty()) return {};  // relocated: no user is created
  const std::vector<std::pair<std::string, std::string>> users = {
      {kAgentUser, "/var/lib/hwledger-agent"}, {req_.install.job_user, "/var/lib/hwledger-jobs"}};
  for (const auto& [name, home] : users) {
    auto known = exec({"id", "-u", name}, false);
    if (!known) return remote(known.error());
    if (known->exit_status == 0) continue;
    auto added = check(
        {"useradd", "--system", "--user-group", "--no-create-home", "--home-dir", home, "--shell",
         "/usr/sbin/nologin", "--comment", "hwLedger " + name.substr(name.rfind('-') + 1), name},
        true, "useradd " + name);
    if (!added) return added.error();
    created_users_.push_back(name);
  }
  finish();
  return {};
}

Status Installation::stepStage() {
  auto r = check({"mktemp", "-d"}, false, "mktemp -d");
  if (!r) return r.error();
  const std::string dir = trimmed(r->out);
  if (dir.empty() || dir.front() != '/' || dir.size() > 512 ||
      dir.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") !=
          std::string::npos)
    return fail(Code::kBadGateway, "mktemp -d gave an unexpected path: " + excerpt(dir, 200));
  stage_ = dir;
  finish();
  return {};
}

Status Installation::stepUploads() {
  begin("upload binary");
  const std::string bin = stage_ + "/hwledger-agent";
  if (auto st = session_.uploadFile(s_.agent_binary, bin, 0755, s_.upload_timeout); !st)
    return remote(st.error());
  auto local = sha256File(s_.agent_binary);
  if (!local) return local.error();
  auto sum = check({"sha256sum", "--", bin}, false, "sha256sum");
  if (!sum) return sum.error();
  if (sum->out.substr(0, local->size()) != *local)
    return fail(Code::kBadGateway, "the binary on the host has another SHA-256 (" +
                                       excerpt(sum->out.substr(0, 64), 64) + ") than " +
                                       s_.agent_binary.string() + " (" + *local + ")");
  finish();

  begin("upload config");
  auto config = configFor(s_.config_template, paths_, req_.install);
  if (!config) return config.error();
  if (auto st = session_.upload(*config, stage_ + "/agent.json", 0640, s_.command_timeout); !st)
    return remote(st.error());
  finish();

  begin("upload unit");
  auto unit = unitFor(s_.unit_template, paths_);
  if (!unit) return unit.error();
  if (auto st = session_.upload(*unit, stage_ + "/" + kUnitName, 0644, s_.command_timeout); !st)
    return remote(st.error());
  finish();
  return {};
}

Status Installation::stepInstall() {
  // Operations from the top down: "d PATH MODE OWNER" makes a missing directory (and says so);
  // "D" the same, and an existing one gets MODE and OWNER too (the agent's own directories, as
  // install-agent.sh sets them); "f SRC DEST MODE OWNER" installs a file (and says so before its
  // owner is set). OWNER "" is the privileged user. Each line printed is something the rollback
  // removes.
  static constexpr const char* kScript = R"SH(set -u
while [ $# -gt 0 ]; do
  case $1 in
    d|D) op=$1; p=$2; m=$3; o=$4; shift 4
       if [ ! -d "$p" ]; then
         mkdir -m "$m" -- "$p" || exit 1
         echo "d $p"
       elif [ "$op" = d ]; then
         continue
       fi
       if [ -n "$o" ]; then chown -- "$o" "$p" || exit 1; fi
       chmod "$m" -- "$p" || exit 1 ;;
    f) s=$2; p=$3; m=$4; o=$5; shift 5
       if [ -e "$p" ]; then echo "$p exists" >&2; exit 1; fi
       install -m "$m" -- "$s" "$p" || exit 1
       echo "f $p"
       if [ -n "$o" ]; then chown -- "$o" "$p" || exit 1; fi ;;
    *) echo "unknown operation $1" >&2; exit 2 ;;
  esac
done
)SH";
  const bool under_root = paths_.root.empty();
  const std::string agent = under_root ? std::string(kAgentUser) + ":" + kAgentUser : "";
  const std::string agent_group = under_root ? std::string("root:") + kAgentUser : "";
  // The job user's own group, whatever its name.
  const std::string jobs = req_.install.job_user + ":";
  std::vector<std::string> argv = {"sh", "-c", kScript, "sh"};
  auto dir = [&](const std::string& p, const char* mode, const std::string& owner) {
    argv.insert(argv.end(), {"d", p, mode, owner});
  };
  const std::string& r = paths_.root;
  for (const char* d : {"/usr", "/usr/local", "/usr/local/bin", "/etc", "/etc/systemd",
                        "/etc/systemd/system", "/var", "/var/lib"})
    dir(r + d, "0755", "");
  auto own = [&](const std::string& p, const char* mode, const std::string& owner) {
    argv.insert(argv.end(), {"D", p, mode, owner});
  };
  own(paths_.config_dir, "0750", agent_group);
  own(paths_.state_dir, "0700", agent);
  own(paths_.jobs_dir, "0750", jobs);
  argv.insert(argv.end(), {"f", stage_ + "/hwledger-agent", paths_.binary, "0755", ""});
  argv.insert(argv.end(), {"f", stage_ + "/agent.json", paths_.config, "0640", agent_group});
  argv.insert(argv.end(), {"f", stage_ + "/" + kUnitName, paths_.unit, "0644", ""});
  auto res = exec(argv, true);
  if (!res) return remote(res.error());
  for (const auto& line : linesOf(res->out)) {
    if (line.rfind("d ", 0) == 0) created_dirs_.push_back(line.substr(2));
    if (line.rfind("f ", 0) == 0) installed_files_.push_back(line.substr(2));
  }
  if (res->exit_status != 0)
    return fail(Code::kBadGateway, "installing the files failed (exit " +
                                       std::to_string(res->exit_status) +
                                       "): " + excerpt(res->err.empty() ? res->out : res->err));
  finish();
  return {};
}

Status Installation::stepSystemd() {
  if (!req_.install.enable_unit) return {};
  // Before a token exists: a host that cannot run the unit is never enrolled.
  auto r = exec({"sh", "-c",
                 "if [ ! -d /run/systemd/system ]; then "
                 "echo \"systemd is not running on this host (PID 1 is $(cat /proc/1/comm "
                 "2>/dev/null || echo unknown), there is no /run/systemd/system): the unit "
                 "cannot be enabled here\"; exit 3; fi; "
                 "command -v systemctl >/dev/null 2>&1 || { echo 'systemctl is not installed'; "
                 "exit 3; }"},
                false);
  if (!r) return remote(r.error());
  if (r->exit_status == 3)
    return fail(
        Code::kFailedPrecondition,
        excerpt(r->out) + " (install with \"enable_unit\": false and start the agent another way)",
        "install_agent_no_systemd");
  if (r->exit_status != 0)
    return fail(Code::kBadGateway, "checking for systemd failed: " + excerpt(r->err + r->out));
  if (!paths_.root.empty()) {
    auto linked = check({"systemctl", "link", "--", paths_.unit}, true, "systemctl link");
    if (!linked) return linked.error();
    linked_unit_ = true;
  }
  auto reload = check({"systemctl", "daemon-reload"}, true, "systemctl daemon-reload");
  if (!reload) return reload.error();
  reloaded_ = true;
  finish();
  return {};
}

Status Installation::stepToken() {
  if (!s_.issue_token) return fail(Code::kFailedPrecondition, "no enrollment tokens here");
  auto t = s_.issue_token(req_.name, actor_);
  if (!t) return t.error();
  token_id_ = t->id;
  token_ = t->token;
  finish();
  return {};
}

Result<std::optional<std::string>> Installation::enrolledHost() {
  ledger::EventQuery q;
  q.stream = "token/" + token_id_;
  q.type = proto::event::kTokenUsed;
  q.limit = 10;
  auto evs = ledger_.read(q);
  if (!evs) return evs.error();
  for (const auto& e : *evs) {
    auto d = json::parseObject(e.data);
    if (!d) continue;
    auto h = json::optionalString(*d, "host_id");
    if (h && h->has_value()) return std::optional<std::string>(**h);
  }
  return std::optional<std::string>();
}

Status Installation::stepEnroll() {
  std::vector<std::string> argv;
  if (paths_.root.empty()) {
    // As the agent user, as the unit runs it: the identity files are its own.
    if (is_root_)
      argv = {"runuser", "-u", kAgentUser, "--"};
    else
      argv = {"sudo", "-n", "-u", kAgentUser, "--"};
  }
  argv.insert(argv.end(),
              {paths_.binary, "enroll", "--server", server_url_, "--token", token_, "--ca-pin",
               s_.ca_pin, "--state-dir", paths_.state_dir, "--name", req_.name});
  auto listen = splitListen(req_.install.agent_listen);
  if (!listen) return listen.error();
  if (isWildcard(listen->first))
    argv.insert(argv.end(), {"--advertise-port", std::to_string(listen->second)});
  else
    argv.insert(argv.end(), {"--advertise", req_.install.agent_listen});
  auto r = exec(argv, paths_.root.empty() ? false : true);
  // Whatever the command says, the ledger knows whether a host enrolled with the token.
  auto host = enrolledHost();
  if (!host) return host.error();
  if (host->has_value()) host_id_ = **host;
  if (!r) return remote(r.error());
  if (r->exit_status != 0)
    return fail(Code::kBadGateway, "hwledger-agent enroll failed (exit " +
                                       std::to_string(r->exit_status) +
                                       "): " + excerpt(r->err.empty() ? r->out : r->err));
  if (host_id_.empty())
    return fail(Code::kBadGateway,
                "hwledger-agent enroll exited 0 but the token was not used: " + excerpt(r->out));
  if (r->out.find("enrolled as " + host_id_ + " ") == std::string::npos)
    return fail(Code::kBadGateway, "hwledger-agent enroll reported another host than " + host_id_ +
                                       ": " + excerpt(r->out));
  finish();
  return {};
}

Status Installation::stepEnable() {
  if (!req_.install.enable_unit) return {};
  auto r = check({"systemctl", "enable", "--now", kUnitName}, true, "systemctl enable --now");
  enabled_ = true;  // a failed enable may have left links: the rollback disables in any case
  if (!r) return r.error();
  finish();
  return {};
}

Result<bj::object> Installation::stepRecord() {
  done_.emplace_back("record");
  bj::object data{{"host_id", host_id_},
                  {"name", req_.name},
                  {"address", req_.target.address()},
                  {"ssh_user", req_.target.user},
                  {"host_key_fingerprint", req_.target.host_key},
                  {"arch", arch_},
                  {"install_root", req_.install.install_root},
                  {"unit_enabled", req_.install.enable_unit},
                  {"token_id", token_id_},
                  {"steps", done_}};
  if (!req_.target.jump_host_key.empty())
    data["jump_host_key_fingerprint"] = req_.target.jump_host_key;
  auto r = ledger_.append("host/" + host_id_, ledger::kAnyVersion, actor_,
                          {ledger::NewEvent{"", proto::event::kHostAgentInstalled, data}});
  if (!r) {
    done_.pop_back();
    return r.error();
  }
  auto row = ledger_.withReader([&](ledger::ReadView& v) { return v.findHost(host_id_); });
  std::string agent_address;
  if (row && row->has_value()) agent_address = (*row)->address;
  bj::object answer{{"host_id", host_id_},
                    {"name", req_.name},
                    {"kind", "agent"},
                    {"address", agent_address},
                    {"host_key_fingerprint", req_.target.host_key},
                    {"install", bj::object{{"arch", arch_},
                                           {"install_root", req_.install.install_root},
                                           {"unit_enabled", req_.install.enable_unit},
                                           {"steps", done_},
                                           {"binary", paths_.binary},
                                           {"config", paths_.config},
                                           {"unit", paths_.unit},
                                           {"state_dir", paths_.state_dir}}}};
  return answer;
}

Installation::Undone Installation::rollback() {
  Undone u;
  const std::string reason = "install-agent failed at step \"" + step_ + "\"";
  if (!host_id_.empty() && s_.revoke_host) {
    if (auto st = s_.revoke_host(host_id_, reason, actor_); st)
      u.done.push_back("revoked host " + host_id_);
    else
      u.left.push_back("host " + host_id_ + " is not revoked: " + st.error().message);
  } else if (!token_id_.empty() && s_.revoke_token) {
    if (auto st = s_.revoke_token(token_id_, actor_); st)
      u.done.push_back("revoked token " + token_id_);
    else
      u.left.push_back("token " + token_id_ + ": " + st.error().message);
  }
  token_.assign(token_.size(), '\0');
  token_.clear();

  if (stage_left_) u.left.push_back("the staging directory " + stage_ + " on the host");
  // On the host, only while the session still works: its credential is gone.
  const bool on_host = enabled_ || linked_unit_ || reloaded_ || !installed_files_.empty() ||
                       !created_dirs_.empty() || !created_users_.empty();
  if (!on_host) return u;
  std::vector<std::string> paths(installed_files_.rbegin(), installed_files_.rend());
  // Directories the installation made hold only what it put there (the state dir: the identity).
  paths.insert(paths.end(), created_dirs_.rbegin(), created_dirs_.rend());
  if (!session_.isAlive()) {
    std::string what;
    for (const auto& p : paths) what += " " + p;
    for (const auto& n : created_users_) what += " user:" + n;
    u.left.push_back("the connection to " + where() + " is lost; left on the host:" + what);
    return u;
  }
  auto hostStep = [&](std::vector<std::string> argv, const std::string& what) {
    auto r = exec(std::move(argv), true);
    if (r && r->exit_status == 0) {
      u.done.push_back(what);
      return;
    }
    u.left.push_back(what + " failed: " +
                     (r ? excerpt(r->err.empty() ? r->out : r->err, 300) : r.error().message));
  };
  if (enabled_) hostStep({"systemctl", "disable", "--now", kUnitName}, "disabled the unit");
  if (linked_unit_)
    hostStep({"rm", "-f", "--", std::string("/etc/systemd/system/") + kUnitName},
             "removed the unit's link");
  if (!paths.empty()) {
    std::vector<std::string> argv = {"rm", "-rf", "--"};
    argv.insert(argv.end(), paths.begin(), paths.end());
    hostStep(argv, "removed the " + std::to_string(installed_files_.size()) + " files and " +
                       std::to_string(created_dirs_.size()) + " directories it had made");
    u.removed = paths;
  }
  if (reloaded_ || linked_unit_) hostStep({"systemctl", "daemon-reload"}, "reloaded systemd");
  for (auto it = created_users_.rbegin(); it != created_users_.rend(); ++it)
    hostStep({"userdel", "--", *it}, "deleted user " + *it);
  return u;
}

}  // namespace

AgentInstaller::AgentInstaller(ledger::Ledger& ledger, InstallerSettings settings)
    : ledger_(ledger), settings_(std::move(settings)) {}

Result<bj::object> AgentInstaller::install(ssh::SshSession& session,
                                           const SshEnrollRequest& request, const Probed& probed,
                                           const std::string& actor) const {
  Installation one(ledger_, settings_, session, request, probed, actor);
  return one.run();
}

}  // namespace hwl::agentless
