// The transport of a session reached through a jump host (OpenSSH's ProxyJump): a direct-tcpip
// channel of the bastion's session carries the target's SSH stream.
//
// libssh2 reads and writes a socket, so the target session gets one end of a socketpair and the
// other end is bridged to the channel by a pump. The pump runs inside this transport's wait():
// whenever the target session would block, the wait moves bytes both ways (non-blocking, through
// bounded buffers) and sleeps on the pair and on the bastion's socket until the target's end is
// ready. Both sessions thus run on the caller's thread, with no pump thread and no lock, and the
// target's deadlines bound the bastion's I/O too.
#include <libssh2.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cerrno>
#include <cstring>

#include "ssh/host_key.hpp"
#include "ssh/session_impl.hpp"

namespace hwl::ssh {

namespace asio = boost::asio;
using detail::Deadline;

namespace {

constexpr size_t kBufferCap = 256 * 1024;  // per direction

class JumpTransport final : public detail::Transport {
 public:
  JumpTransport(std::unique_ptr<SshSession::Impl> bastion, detail::ChannelPtr channel)
      : bastion_(std::move(bastion)),
        channel_(std::move(channel)),
        outer_(*bastion_->io),
        inner_(*bastion_->io) {}

  Status init() {
    boost::system::error_code ec;
    asio::local::connect_pair(outer_, inner_, ec);
    if (ec) return internal("socketpair: " + ec.message());
    inner_fd_ = inner_.native_handle();
    return {};
  }

  int fd() const override { return inner_fd_; }

  Status wait(bool read, bool write, Deadline deadline) override {
    for (;;) {
      if (auto st = pump(); !st) return st;
      if (innerReady(read, write)) return {};
      std::vector<detail::WaitOp> ops;
      addWaits(ops, read, write);
      if (auto st = detail::waitAny(*bastion_->io, ops, deadline); !st) return st;
    }
  }

  void addWaits(std::vector<detail::WaitOp>& ops, bool, bool) override {
    // The target session wrote into the pair, or can be handed what is buffered for it.
    if (to_channel_.size() < kBufferCap && !target_closed_)
      ops.push_back(detail::waitOn(outer_, asio::socket_base::wait_read));
    if (!to_target_.empty()) ops.push_back(detail::waitOn(outer_, asio::socket_base::wait_write));
    // Channel data and window adjustments arrive on the bastion's socket; a write libssh2 could
    // not finish waits for it to drain.
    const int dirs = libssh2_session_block_directions(bastion_->session.get());
    bastion_->transport->addWaits(ops, true, (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0);
  }

  bool alive() override { return !bastion_->dead && !channel_eof_ && bastion_->transport->alive(); }

  ~JumpTransport() override {
    // The channel goes before the bastion session it belongs to, within the close grace.
    if (channel_ && !bastion_->dead) bastion_->abortChannel(channel_);
    channel_.reset();
  }

 private:
  bool innerReady(bool read, bool write) {
    pollfd p{fd(), static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0)), 0};
    return ::poll(&p, 1, 0) > 0 && p.revents != 0;
  }

  Status pump() {
    char buf[32768];
    const int outer = outer_.native_handle();
    for (bool progress = true; progress;) {
      progress = false;
      if (to_channel_.size() < kBufferCap && !target_closed_) {
        const ssize_t n =
            ::recv(outer, buf, std::min(sizeof buf, kBufferCap - to_channel_.size()), MSG_DONTWAIT);
        if (n > 0) {
          to_channel_.append(buf, static_cast<size_t>(n));
          progress = true;
        } else if (n == 0) {
          target_closed_ = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return unavailable(std::string("jump pump: ") + std::strerror(errno));
        }
      }
      if (!to_channel_.empty()) {
        const ssize_t w =
            libssh2_channel_write(channel_.get(), to_channel_.data(), to_channel_.size());
        if (w > 0) {
          to_channel_.erase(0, static_cast<size_t>(w));
          progress = true;
        } else if (w != LIBSSH2_ERROR_EAGAIN) {
          return bastion_->transportError("writing to the jump channel", static_cast<int>(w));
        }
      }
      if (to_target_.size() < kBufferCap && !channel_eof_) {
        const ssize_t r = libssh2_channel_read(
            channel_.get(), buf, std::min(sizeof buf, kBufferCap - to_target_.size()));
        if (r > 0) {
          to_target_.append(buf, static_cast<size_t>(r));
          progress = true;
        } else if (r == 0) {
          if (libssh2_channel_eof(channel_.get()) == 1) channel_eof_ = true;
        } else if (r != LIBSSH2_ERROR_EAGAIN) {
          return bastion_->transportError("reading the jump channel", static_cast<int>(r));
        }
      }
      if (!to_target_.empty()) {
        const ssize_t s =
            ::send(outer, to_target_.data(), to_target_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (s > 0) {
          to_target_.erase(0, static_cast<size_t>(s));
          progress = true;
        } else if (s < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return unavailable(std::string("jump pump: ") + std::strerror(errno));
        }
      }
    }
    // The target closed the forwarded connection: the target session sees end of file.
    if (channel_eof_ && to_target_.empty() && !outer_shut_) {
      ::shutdown(outer, SHUT_WR);
      outer_shut_ = true;
    }
    return {};
  }

  std::unique_ptr<SshSession::Impl> bastion_;
  detail::ChannelPtr channel_;
  asio::local::stream_protocol::socket outer_;  // the pump's end
  asio::local::stream_protocol::socket inner_;  // the target session's end
  std::string to_channel_;
  std::string to_target_;
  bool target_closed_ = false;
  bool channel_eof_ = false;
  bool outer_shut_ = false;
  int inner_fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<detail::Transport>> openJumpTransport(
    std::unique_ptr<SshSession::Impl> bastion, const std::string& host, uint16_t port,
    Deadline deadline) {
  LIBSSH2_SESSION* s = bastion->session.get();
  detail::ChannelPtr channel;
  for (;;) {
    // The originator address is informational for the bastion's logs.
    LIBSSH2_CHANNEL* c = libssh2_channel_direct_tcpip_ex(s, host.c_str(), port, "127.0.0.1", 0);
    if (c != nullptr) {
      channel.reset(c);
      break;
    }
    const int e = libssh2_session_last_errno(s);
    if (e == LIBSSH2_ERROR_CHANNEL_FAILURE)
      return Error{Code::kPermissionDenied,
                   "jump host " + bastion->where + " refused to forward to " +
                       knownHostsName(host, port) + " (" + bastion->lastError() +
                       "; is AllowTcpForwarding on there?)",
                   std::string(reason::kConnect),
                   {}};
    if (e != LIBSSH2_ERROR_EAGAIN)
      return bastion->transportError("opening a direct-tcpip channel", e);
    if (auto st = bastion->waitSocket(deadline); !st) {
      bastion->dead = true;
      return st.error();
    }
  }
  auto t = std::make_unique<JumpTransport>(std::move(bastion), std::move(channel));
  if (auto st = t->init(); !st) return st.error();
  return std::unique_ptr<detail::Transport>(std::move(t));
}

}  // namespace hwl::ssh
