// The real sshd and ssh-agent of the SSH client's tests (see sshd_fixture.hpp).
#include "sshd_fixture.hpp"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "server_fixture.hpp"

namespace hwl::itest {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSshd = "/usr/sbin/sshd";

std::string currentUser() {
  const passwd* pw = ::getpwuid(::geteuid());
  if (pw == nullptr) throw std::runtime_error("the current uid has no passwd entry");
  return pw->pw_name;
}

bool executable(const char* path) { return ::access(path, X_OK) == 0; }

}  // namespace

std::string sshdUnavailableReason() {
  if (!executable(kSshd)) return std::string(kSshd) + " is not installed (openssh-server)";
  if (!executable("/usr/bin/ssh-keygen")) return "ssh-keygen is not installed (openssh-client)";
  if (::geteuid() == 0) {
    // As root sshd separates privileges: it needs its unprivileged user and an empty directory
    // to chroot into (the package's service creates /run/sshd at boot; here nothing may have).
    if (::getpwnam("sshd") == nullptr) return "sshd runs as root but the 'sshd' user is missing";
    std::error_code ec;
    if (!fs::exists("/run/sshd", ec)) {
      fs::create_directories("/run/sshd", ec);
      ::chmod("/run/sshd", 0755);
      if (ec) return "sshd runs as root and /run/sshd cannot be created: " + ec.message();
    }
  }
  return "";
}

RunResult runChecked(const std::vector<std::string>& argv, const RunOptions& opts) {
  RunResult r = run(argv, opts);
  if (!r.status.success()) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed (" + r.status.describe() + "): " + r.err + r.out);
  }
  return r;
}

SshdFixture::SshdFixture(SshdOptions options) : options_(std::move(options)) {
  user_ = currentUser();
  makeHostKey();
  for (const char* name : {"id", "id_other"})
    runChecked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", std::string("hwl-") + name,
                "-f", (dir() / name).string()});
  runChecked({"ssh-keygen", "-q", "-t", "ed25519", "-N", kPassphrase, "-C", "hwl-id_pass", "-f",
              encryptedClientKey().string()});
  writeFile(dir() / "authorized_keys",
            readFile(dir() / "id.pub") + readFile(dir() / "id_pass.pub"));
}

SshdFixture::~SshdFixture() { stop(); }

void SshdFixture::makeHostKey() {
  std::error_code ec;
  fs::remove(dir() / "host_key", ec);
  fs::remove(dir() / "host_key.pub", ec);
  runChecked({"ssh-keygen", "-q", "-t", options_.host_key_type, "-N", "", "-C", "hwl-test-host",
              "-f", (dir() / "host_key").string()});
}

void SshdFixture::authorize(const fs::path& public_key) {
  writeFile(dir() / "authorized_keys", readFile(dir() / "authorized_keys") + readFile(public_key));
}

fs::path SshdFixture::addAuthorizedKey(const std::string& name, const std::string& type,
                                       bool pem_format) {
  std::vector<std::string> argv = {
      "ssh-keygen", "-q", "-t", type, "-N", "", "-C", "hwl-" + name, "-f", (dir() / name).string()};
  if (pem_format) argv.insert(argv.begin() + 1, {"-m", "PEM"});
  runChecked(argv);
  writeFile(dir() / "authorized_keys",
            readFile(dir() / "authorized_keys") + readFile(dir() / (name + ".pub")));
  return dir() / name;
}

void SshdFixture::writeConfig() {
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  std::ostringstream c;
  c << "Port " << port_ << "\n"
    << "ListenAddress 127.0.0.1\n";
  for (const auto& a : options_.extra_listen) c << "ListenAddress " << a << "\n";
  if (options_.remote_bin)
    c << "SetEnv PATH=" << (dir() / "bin").string() << ":/usr/local/bin:/usr/bin:/bin\n";
  c << "HostKey " << (dir() / "host_key").string() << "\n"
    << "PidFile " << (dir() / "sshd.pid").string() << "\n"
    << "AuthorizedKeysFile " << (dir() / "authorized_keys").string()
    << "\n"
    // The temp dir's modes are not what sshd demands of a home directory.
    << "StrictModes no\n"
    << "UsePAM no\n"
    << "PubkeyAuthentication " << yn(options_.pubkey_authentication) << "\n"
    << "PasswordAuthentication " << yn(options_.password_authentication) << "\n"
    << "KbdInteractiveAuthentication " << yn(options_.kbd_interactive_authentication) << "\n"
    << "PermitEmptyPasswords no\n"
    << "AllowAgentForwarding no\n"
    << "AllowTcpForwarding " << yn(options_.allow_tcp_forwarding) << "\n"
    << "X11Forwarding no\n"
    << "PermitTunnel no\n"
    // No ~/.ssh/rc or ~/.ssh/environment of the real user is run or read.
    << "PermitUserRC no\n"
    << "PermitUserEnvironment no\n"
    << "AllowUsers " << user_ << "\n"
    << (::geteuid() == 0 ? "PermitRootLogin prohibit-password\n" : "") << "UseDNS no\n"
    << "PrintMotd no\n"
    << "PrintLastLog no\n"
    << "LoginGraceTime 30\n"
    << "MaxStartups 50\n"
    // DEBUG1 logs every userauth request with its method: the tests read it to prove that no
    // password was sent and that authentication never started after a refused host key.
    << "LogLevel DEBUG1\n";
  writeFile(dir() / "sshd_config", c.str());
}

fs::path SshdFixture::addRemoteTool(const std::string& name, const fs::path& file, int exit_code) {
  const fs::path bin = dir() / "bin";
  fs::create_directories(bin);
  const fs::path tool = bin / name;
  // The file's path is ours (a fixture or a temp file), quoted for sh.
  std::string quoted = "'";
  for (char ch : file.string()) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  quoted += "'";
  writeFile(tool, "#!/bin/sh\ncat " + quoted + "\nexit " + std::to_string(exit_code) + "\n");
  fs::permissions(tool, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
  return tool;
}

bool SshdFixture::tryStart(uint16_t port, std::string& why) {
  port_ = port;
  writeConfig();
  ++starts_;
  const fs::path log = dir() / ("sshd." + std::to_string(starts_) + ".log");
  SpawnOptions opts;
  opts.stderr_file = dir() / ("sshd." + std::to_string(starts_) + ".stderr");
  // -D: stay in the foreground as our child. -E FILE rather than -e: with -e the per-connection
  // processes log to their stderr, which at DEBUG1 leaks into the session's stderr channel.
  // sshd wants an absolute path to itself (it re-executes itself for each connection).
  sshd_ = std::make_unique<Process>(std::vector<std::string>{kSshd, "-D", "-E", log.string(), "-f",
                                                             (dir() / "sshd_config").string()},
                                    std::move(opts));
  const std::string ready = "Server listening on 127.0.0.1 port " + std::to_string(port) + ".";
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    const std::string l = readFile(log) + sshd_->err();
    if (l.find(ready) != std::string::npos) return true;
    if (!sshd_->running()) {
      why = l;
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  why = "sshd did not listen within 10 s: " + readFile(log) + sshd_->err();
  sshd_->kill();
  return false;
}

void SshdFixture::start() {
  std::string why;
  // A port probed free can be taken before sshd binds it: try a few.
  for (int attempt = 0; attempt < 5; ++attempt)
    if (tryStart(freeLoopbackPort(), why)) return;
  throw std::runtime_error("sshd did not start: " + why);
}

namespace {
// The direct children of `parent`, from /proc (the per-connection processes of an sshd).
std::vector<pid_t> childrenOf(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat;
    try {
      stat = readFile(e.path() / "stat");
    } catch (...) {
      continue;  // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    in >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}
}  // namespace

void SshdFixture::stop() {
  if (!sshd_) return;
  // A real host going down takes its open connections with it; stopping only the listener would
  // leave every established session running.
  for (pid_t child : childrenOf(sshd_->pid())) ::kill(child, SIGKILL);
  sshd_->signal(SIGTERM);
  if (!sshd_->wait(3s)) sshd_->kill();
  sshd_.reset();
}

void SshdFixture::restartOnPort(uint16_t port) {
  stop();
  std::string why;
  for (int attempt = 0; attempt < 20; ++attempt) {  // the old listener's port may linger briefly
    if (tryStart(port, why)) return;
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error("sshd did not restart on port " + std::to_string(port) + ": " + why);
}

void SshdFixture::restartWithNewHostKey() {
  const uint16_t port = port_;
  stop();
  makeHostKey();
  restartOnPort(port);
}

std::string SshdFixture::hostKeyFingerprint() const {
  // "256 SHA256:… comment (ED25519)"
  const RunResult r = runChecked({"ssh-keygen", "-l", "-E", "sha256", "-f", hostKeyPub().string()});
  std::istringstream in(r.out);
  std::string bits, fp;
  in >> bits >> fp;
  return fp;
}

std::string SshdFixture::log() const {
  std::string all;
  for (int i = 1; i <= starts_; ++i)
    all += readFile(dir() / ("sshd." + std::to_string(i) + ".log"));
  return all;
}

SshAgentProcess::SshAgentProcess(const fs::path& dir) : socket_(dir / "agent.sock") {
  // -D: foreground, our child; the socket is in the test's temp dir, never the user's agent.
  agent_ = std::make_unique<Process>(
      std::vector<std::string>{"ssh-agent", "-D", "-a", socket_.string()}, SpawnOptions{});
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!fs::exists(socket_)) {
    if (std::chrono::steady_clock::now() > until || !agent_->running())
      throw std::runtime_error("ssh-agent did not create " + socket_.string());
    std::this_thread::sleep_for(20ms);
  }
}

SshAgentProcess::~SshAgentProcess() = default;  // Process kills and reaps the agent

void SshAgentProcess::add(const fs::path& key) {
  RunOptions opts;
  opts.env = {{"SSH_AUTH_SOCK", socket_.string()}};
  runChecked({"ssh-add", "-q", key.string()}, opts);
}

}  // namespace hwl::itest
