// TCP transport and the Asio waits of hwl_ssh (see transport.hpp).
#include "ssh/transport.hpp"

#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/error.hpp>

#include "ssh/ssh_errors.hpp"

namespace hwl::ssh::detail {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

class TcpTransport final : public Transport {
 public:
  TcpTransport(asio::io_context& io, tcp::socket sock)
      : io_(io), sock_(std::move(sock)), fd_(sock_.native_handle()) {}

  int fd() const override { return fd_; }

  Status wait(bool read, bool write, Deadline deadline) override {
    std::vector<WaitOp> ops;
    addWaits(ops, read, write);
    return waitAny(io_, ops, deadline);
  }

  void addWaits(std::vector<WaitOp>& ops, bool read, bool write) override {
    if (read) ops.push_back(waitOn(sock_, tcp::socket::wait_read));
    if (write) ops.push_back(waitOn(sock_, tcp::socket::wait_write));
  }

  bool alive() override {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) < 0) return false;
    return (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) == 0;
  }

 private:
  asio::io_context& io_;
  tcp::socket sock_;
  int fd_;
};

}  // namespace

Status waitAny(asio::io_context& io, const std::vector<WaitOp>& ops, Deadline deadline) {
  bool fired = false;
  boost::system::error_code first;
  for (const auto& op : ops) {
    op.start([&](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted || fired) return;
      fired = true;
      first = ec;
    });
  }
  io.restart();
  while (!fired) {
    if (io.run_one_until(deadline) == 0) break;  // the deadline (or nothing left to wait for)
  }
  for (const auto& op : ops) op.cancel();
  // The handlers refer to this frame: let the cancelled ones complete before returning.
  io.restart();
  io.run();
  if (!fired) return Error{Code::kDeadlineExceeded, "timed out", std::string(reason::kTimeout), {}};
  if (first)
    return Error{
        Code::kUnavailable, "socket wait: " + first.message(), std::string(reason::kTransport), {}};
  return {};
}

Result<std::unique_ptr<Transport>> connectTcp(asio::io_context& io, const std::string& host,
                                              uint16_t port, Deadline deadline) {
  const std::string where = host + ":" + std::to_string(port);
  // getaddrinfo has no deadline of its own (resolv.conf's timeouts bound it); it runs on the
  // calling worker thread, never on an I/O thread.
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::numeric_service, ec);
  if (ec)
    return Error{Code::kUnavailable,
                 "cannot resolve " + host + ": " + ec.message(),
                 std::string(reason::kConnect),
                 {}};
  std::string last = "no address";
  for (const auto& entry : endpoints) {
    tcp::socket sock(io);
    bool done = false;
    boost::system::error_code result;
    sock.async_connect(entry.endpoint(), [&](const boost::system::error_code& e) {
      done = true;
      result = e;
    });
    io.restart();
    while (!done) {
      if (io.run_one_until(deadline) == 0) break;
    }
    if (!done) {
      sock.close(ec);  // completes the connect with operation_aborted
      io.restart();
      io.run();
      return Error{Code::kUnavailable,
                   "connecting to " + where + " timed out",
                   std::string(reason::kConnect),
                   {}};
    }
    if (result) {
      last = result.message();
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    return std::unique_ptr<Transport>(std::make_unique<TcpTransport>(io, std::move(sock)));
  }
  return Error{Code::kUnavailable,
               "cannot connect to " + where + ": " + last,
               std::string(reason::kConnect),
               {}};
}

}  // namespace hwl::ssh::detail
