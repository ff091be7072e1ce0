// SshSession's state (internal to hwl_ssh): the libssh2 session over its transport, and the
// EAGAIN loop every libssh2 call goes through. Shared with the jump host transport, which runs a
// bastion session of its own.
#pragma once

#include <libssh2.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/libssh2_raii.hpp"
#include "ssh/ssh_session.hpp"
#include "ssh/transport.hpp"

namespace hwl::ssh {

struct SshSession::Impl {
  // Who is connected to, and how its key is trusted (the target or a jump host).
  struct Target {
    std::string host;
    uint16_t port = 22;
    std::string user;
    std::string pinned_fingerprint;
    std::string pinned_algorithm;  // with the pin: the only host key algorithm asked for
  };

  // Declared in this order so that the session goes before its transport, and the transport
  // (whose sockets belong to it) before the io_context.
  std::shared_ptr<boost::asio::io_context> io;
  std::unique_ptr<detail::Transport> transport;
  detail::SessionPtr session;
  std::string fingerprint;
  std::string jump_fingerprint;
  std::string algorithm;  // of the host key, e.g. "ssh-ed25519"
  std::string jump_algorithm;
  std::string where;  // user@host or user@[host]:port, for messages
  std::chrono::milliseconds command_timeout{60'000};
  // Set on a transport failure, or when a libssh2 state machine was left half-way: the session
  // is not used again.
  bool dead = false;
  std::vector<detail::ChannelPtr> parked;
  static constexpr size_t kMaxParked = 8;  // beyond that the session is given up

  Impl() = default;
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // TCP to the target, or through settings.jump.
  static Result<std::unique_ptr<Impl>> connectVia(std::shared_ptr<boost::asio::io_context> io,
                                                  SshSettings& settings, detail::Deadline deadline);
  // Key exchange, host key policy and authentication over an established transport.
  static Result<std::unique_ptr<Impl>> establish(std::shared_ptr<boost::asio::io_context> io,
                                                 std::unique_ptr<detail::Transport> transport,
                                                 const Target& target, SshSettings& settings,
                                                 detail::Deadline deadline);

  // Calls f until it returns something other than LIBSSH2_ERROR_EAGAIN, waiting on the socket
  // in between; the wait's error (kDeadlineExceeded…) when the deadline comes first.
  template <class F>
  Result<int> retry(F&& f, detail::Deadline deadline) {
    for (;;) {
      const int rc = f();
      if (rc != LIBSSH2_ERROR_EAGAIN) return rc;
      if (auto st = waitSocket(deadline); !st) return st.error();
    }
  }

  Status waitSocket(detail::Deadline deadline);
  [[nodiscard]] std::string lastError() const;
  // An error of the connection itself: marks the session dead.
  Error transportError(std::string_view what, int rc);

  Result<detail::ChannelPtr> openChannel(detail::Deadline deadline);
  // Closes a channel whose command is abandoned (timeout, output limit, stop) without waiting
  // for the command to end. libssh2 1.10 can neither signal the remote command nor close a
  // channel without waiting for the peer's CLOSE, which sshd sends only once the command has
  // exited; so the channel's EOF and CLOSE are sent (within a grace period) and the channel is
  // parked until the peer's CLOSE arrives, meanwhile costing at most one channel window of
  // buffered output. reapParked() frees those that have closed.
  void abortChannel(detail::ChannelPtr& ch);
  void reapParked();
  void freeChannel(detail::ChannelPtr& ch, detail::Deadline deadline);
  Result<ExitInfo> execStream(std::string_view command, const ChunkHandler& on_chunk,
                              std::optional<detail::Deadline> deadline,
                              const std::stop_token& stop);
  // Fills `buf` with up to `cap` bytes of what is being sent; 0 at the end.
  using UploadSource = std::function<Result<size_t>(char* buf, size_t cap)>;
  Status upload(const UploadSource& source, uint64_t size, std::string_view remote_path,
                unsigned mode, detail::Deadline deadline);
};

// A transport through a direct-tcpip channel of an authenticated bastion session to host:port,
// which it then owns (jump_transport.cpp).
Result<std::unique_ptr<detail::Transport>> openJumpTransport(
    std::unique_ptr<SshSession::Impl> bastion, const std::string& host, uint16_t port,
    detail::Deadline deadline);

}  // namespace hwl::ssh
