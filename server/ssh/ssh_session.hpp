// An authenticated SSH connection to one agentless host, for running commands on it.
//
//   auto s = ssh::SshSession::connect({.host = "gpu7", .user = "hwl", .key = ssh::KeyFile{p},
//                                      .known_hosts = kh});
//   auto r = (*s)->exec(*ssh::buildCommand({"nvidia-smi", "--query-gpu=uuid", "--format=csv"}));
//
// What it guarantees: the host key passes the policy of SshSettings before the user name or any
// credential is sent; only public-key authentication is used (a server that offers only
// passwords or keyboard-interactive is refused, and no password is ever sent); no agent or port
// forwarding is requested. The API is synchronous and meant for worker threads (see
// transport.hpp); a session is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "hwl/result.hpp"
#include "ssh/ssh_errors.hpp"
#include "ssh/ssh_settings.hpp"

namespace hwl::ssh {

enum class Stream { kStdout, kStderr };

struct ExecResult {
  int exit_status = -1;     // the command's exit code (0 when it was killed by a signal)
  std::string exit_signal;  // "TERM", "KILL"… when a signal ended it, else empty
  std::string out;          // stdout
  std::string err;          // stderr
};

struct ExitInfo {
  int exit_status = -1;
  std::string exit_signal;
  bool stopped = false;  // the handler or the stop token ended the stream before the command did
};

// Called for each chunk of output as it arrives; return false to stop (the channel is closed).
using ChunkHandler = std::function<bool(Stream, std::string_view)>;

struct StreamOptions {
  std::chrono::milliseconds timeout{0};  // 0: no limit (a followed log)
  std::stop_token stop;                  // checked at least every 200 ms
};

class SshSession {
 public:
  // Connects, checks the host key, authenticates. Takes the settings by value so that the
  // passphrase and an in-memory key are wiped here once used, whatever happens.
  [[nodiscard]] static Result<std::unique_ptr<SshSession>> connect(SshSettings settings);

  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  // The target's host key fingerprint, "SHA256:…", as checked.
  [[nodiscard]] const std::string& hostKeyFingerprint() const;
  // The algorithm of the host key checked ("ssh-ed25519", "ecdsa-sha2-nistp256"…), to record
  // with its fingerprint (SshSettings::host_key_algorithm); the jump host's likewise.
  [[nodiscard]] const std::string& hostKeyAlgorithm() const;
  [[nodiscard]] const std::string& jumpHostKeyAlgorithm() const;
  // The jump host's, when there is one (else empty).
  [[nodiscard]] const std::string& jumpHostKeyFingerprint() const;

  // Runs `command` (one string for the remote shell: build it with buildCommand) on a channel of
  // its own and collects its output. A session runs any number of them, one at a time.
  // Errors: kDeadlineExceeded (reason ssh_timeout) when it runs past `timeout`;
  // kResourceExhausted (ssh_output_limit) when stdout + stderr exceed max_output_bytes. In both
  // cases the channel is closed and the session stays usable (the remote command itself is not
  // signalled: libssh2 1.10 has no channel signal request).
  [[nodiscard]] Result<ExecResult> exec(std::string_view command, std::chrono::milliseconds timeout,
                                        size_t max_output_bytes = kDefaultMaxOutput);
  // With the settings' command_timeout.
  [[nodiscard]] Result<ExecResult> exec(std::string_view command);

  // Runs `command` and hands its output to `on_chunk` as it arrives (log following).
  [[nodiscard]] Result<ExitInfo> execStream(std::string_view command, const ChunkHandler& on_chunk,
                                            const StreamOptions& options = {});

  // Copies `content` to `remote_path` on the host over SCP: the host's `scp -t` (installed with
  // OpenSSH) on a channel of its own, its path quoted by buildCommand. The file is created with
  // the permission bits of `mode` (an existing file is overwritten; an existing directory gets
  // the file inside it, as scp does). The path must be absolute and printable, without a
  // trailing '/'. Success means scp acknowledged every byte as written and exited 0. Errors:
  // kInvalidArgument for a path refused here; kFailedPrecondition (reason ssh_upload) with the
  // remote's own message when the host refused the file (no such directory, permission denied, disk
  // full, no scp on the host); kDeadlineExceeded (ssh_timeout) past `timeout`, after which the
  // session is closed (a transfer cannot be abandoned half-way and the session reused).
  [[nodiscard]] Status upload(std::string_view content, std::string_view remote_path, unsigned mode,
                              std::chrono::milliseconds timeout);
  // The same with the bytes of a local file, read as they are sent (kNotFound when it cannot be
  // opened).
  [[nodiscard]] Status uploadFile(const std::filesystem::path& local, std::string_view remote_path,
                                  unsigned mode, std::chrono::milliseconds timeout);

  // Sends a keepalive and checks, without blocking, that the connection is still open. False
  // once a transport error, a failed keepalive or the peer's close has been seen.
  [[nodiscard]] bool isAlive();

  static constexpr size_t kDefaultMaxOutput = 16u << 20;

  struct Impl;

 private:
  explicit SshSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hwl::ssh
