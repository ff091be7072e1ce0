// A real OpenSSH sshd on 127.0.0.1 for the SSH client's tests, configured and keyed from a temp
// dir only: host keys and client keys made by ssh-keygen, its own authorized_keys, pid file and
// log. Nothing of the user's HOME, ~/.ssh or /root/.ssh is read or written, and the only network
// is loopback. Also a real ssh-agent on a socket in a temp dir.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

namespace hwl::itest {

// Why a real sshd cannot run on this machine ("" when it can): tests skip with this reason.
std::string sshdUnavailableReason();

struct SshdOptions {
  bool pubkey_authentication = true;
  bool password_authentication = false;
  bool kbd_interactive_authentication = false;
  bool allow_tcp_forwarding = false;
  std::string host_key_type = "ed25519";  // as ssh-keygen -t takes it
  // Sessions get PATH=dir()/bin:/usr/local/bin:/usr/bin:/bin (sshd's SetEnv), so that a fake
  // nvidia-smi made by addRemoteTool stands in for the GPU tool a real host has.
  bool remote_bin = false;
  // Addresses to listen on besides 127.0.0.1 (other 127.0.0.0/8 addresses, ::1).
  std::vector<std::string> extra_listen;
};

class SshdFixture {
 public:
  static constexpr const char* kPassphrase = "correct horse battery staple";

  // Makes the temp dir, the host key, the client keys and the config; start() runs sshd.
  explicit SshdFixture(SshdOptions options = {});
  ~SshdFixture();
  SshdFixture(const SshdFixture&) = delete;
  SshdFixture& operator=(const SshdFixture&) = delete;

  // Starts sshd on a free loopback port (another one when it was taken meanwhile) and waits
  // until it listens. Throws std::runtime_error with sshd's log when it cannot.
  void start();
  // Stops sshd and drops its open connections (SIGKILL to its per-connection processes), as a
  // host going down would.
  void stop();
  // Starts again on `port` (the one it had before stop()), with the same host key.
  void restartOnPort(uint16_t port);
  // Stops, replaces the host key with a new one of the same type, starts on the same port.
  void restartWithNewHostKey();

  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }
  [[nodiscard]] std::string user() const { return user_; }
  [[nodiscard]] std::filesystem::path hostKeyPub() const { return dir() / "host_key.pub"; }
  // The host key's fingerprint as `ssh-keygen -lf host_key.pub` prints it ("SHA256:…").
  [[nodiscard]] std::string hostKeyFingerprint() const;
  // The client's known_hosts (absent until something writes it).
  [[nodiscard]] std::filesystem::path knownHosts() const { return dir() / "known_hosts"; }

  // Client keys: id (no passphrase) and id_pass (kPassphrase) are authorized; id_other is not.
  [[nodiscard]] std::filesystem::path clientKey() const { return dir() / "id"; }
  [[nodiscard]] std::filesystem::path encryptedClientKey() const { return dir() / "id_pass"; }
  [[nodiscard]] std::filesystem::path unauthorizedClientKey() const { return dir() / "id_other"; }
  // Adds a public key (a .pub file, e.g. another fixture's client key) to authorized_keys.
  void authorize(const std::filesystem::path& public_key);
  // Makes another key pair of `type` in dir() (optionally in PEM format) and authorizes it.
  std::filesystem::path addAuthorizedKey(const std::string& name, const std::string& type,
                                         bool pem_format = false);

  // Makes dir()/bin/`name`, an executable that prints `file` and exits `exit_code` (sessions
  // find it first on PATH with SshdOptions::remote_bin). Returns its path.
  std::filesystem::path addRemoteTool(const std::string& name, const std::filesystem::path& file,
                                      int exit_code = 0);

  // Everything sshd has logged (LogLevel DEBUG1), over all its starts.
  [[nodiscard]] std::string log() const;

 private:
  void writeConfig();
  void makeHostKey();
  bool tryStart(uint16_t port, std::string& why);

  SshdOptions options_;
  TempDir dir_{"hwl-sshd"};
  std::string user_;
  uint16_t port_ = 0;
  int starts_ = 0;
  std::unique_ptr<Process> sshd_;
};

// ssh-agent -D -a DIR/agent.sock, with keys added by the real ssh-add.
class SshAgentProcess {
 public:
  explicit SshAgentProcess(const std::filesystem::path& dir);
  ~SshAgentProcess();
  SshAgentProcess(const SshAgentProcess&) = delete;
  SshAgentProcess& operator=(const SshAgentProcess&) = delete;
  void add(const std::filesystem::path& key);
  [[nodiscard]] const std::filesystem::path& socket() const { return socket_; }

 private:
  std::filesystem::path socket_;
  std::unique_ptr<Process> agent_;
};

// Runs ssh-keygen (or any tool) and throws with its output when it fails.
RunResult runChecked(const std::vector<std::string>& argv, const RunOptions& opts = {});

}  // namespace hwl::itest
