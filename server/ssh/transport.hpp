// The byte pipe under a libssh2 session (internal to hwl_ssh) and the Asio waits that drive
// libssh2 in non-blocking mode: on LIBSSH2_ERROR_EAGAIN the session waits here, in the direction
// libssh2_session_block_directions names, until a deadline.
//
// Each SshSession owns a private io_context that is run only inside these waits, on the thread
// that called the session. The session API is synchronous: the architecture runs libssh2 off the
// server's I/O threads (a dispatch worker calls it), and a private io_context gives Asio's waits
// and timers there without a thread per session.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::ssh::detail {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// One asynchronous wait that waitAny can start and cancel.
struct WaitOp {
  std::function<void(std::function<void(const boost::system::error_code&)>)> start;
  std::function<void()> cancel;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // The socket libssh2 reads and writes.
  [[nodiscard]] virtual int fd() const = 0;
  // Until fd() is ready for reading and/or writing, or the deadline (kDeadlineExceeded).
  [[nodiscard]] virtual Status wait(bool read, bool write, Deadline deadline) = 0;
  // False once the peer has closed the connection or it failed; never blocks.
  [[nodiscard]] virtual bool alive() = 0;
  // The waits (on this transport's io_context) whose completion may let its session progress,
  // for a wait that also watches other sockets (the pump of a jump host).
  virtual void addWaits(std::vector<WaitOp>& ops, bool read, bool write) = 0;
};

template <class Socket>
WaitOp waitOn(Socket& s, boost::asio::socket_base::wait_type type) {
  return {[&s, type](auto handler) { s.async_wait(type, std::move(handler)); },
          [&s] {
            boost::system::error_code ignored;
            s.cancel(ignored);
          }};
}

// Runs `io` until one of `ops` completes or the deadline passes; every op is cancelled and
// completed before it returns.
[[nodiscard]] Status waitAny(boost::asio::io_context& io, const std::vector<WaitOp>& ops,
                             Deadline deadline);

// A TCP connection to host:port (every resolved address in turn) within the deadline.
[[nodiscard]] Result<std::unique_ptr<Transport>> connectTcp(boost::asio::io_context& io,
                                                            const std::string& host, uint16_t port,
                                                            Deadline deadline);

}  // namespace hwl::ssh::detail
