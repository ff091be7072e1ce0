// SshSession: connect, host key policy, public-key authentication and exec channels over
// libssh2 in non-blocking mode (see ssh_session.hpp and transport.hpp).
#include "ssh/ssh_session.hpp"

#include <fcntl.h>
#include <libssh2.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <vector>

#include "ssh/host_key.hpp"
#include "ssh/libssh2_raii.hpp"
#include "ssh/session_impl.hpp"
#include "ssh/shell_quote.hpp"

namespace hwl::ssh {

namespace asio = boost::asio;
using detail::ChannelPtr;
using detail::Deadline;
using detail::SteadyClock;

namespace detail {

void ensureLibssh2Init() {
  static std::once_flag once;
  std::call_once(once, [] { libssh2_init(0); });
}

}  // namespace detail

namespace {

constexpr auto kTick = std::chrono::milliseconds(200);
constexpr auto kCloseGrace = std::chrono::seconds(2);

bool hasMethod(std::string_view list, std::string_view method) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(pos, end - pos) == method) return true;
    pos = end + 1;
  }
  return false;
}

bool isAuthRefusal(int rc) {
  return rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED;
}

}  // namespace

// ---- Impl -------------------------------------------------------------------------------------

SshSession::Impl::~Impl() {
  if (session && !dead) {
    // An orderly goodbye when the connection is healthy; bounded, and its failure is moot.
    const Deadline d = SteadyClock::now() + std::chrono::seconds(1);
    (void)retry(
        [&] {
          return libssh2_session_disconnect_ex(session.get(), SSH_DISCONNECT_BY_APPLICATION,
                                               "closing", "");
        },
        d);
  }
  // Parked channels would make libssh2_session_free wait for their peer's CLOSE: with the
  // socket shut down it sees the connection gone and frees them at once.
  if (transport) ::shutdown(transport->fd(), SHUT_RDWR);
  parked.clear();
  session.reset();  // before the transport it reads from
  transport.reset();
}

std::string SshSession::Impl::lastError() const {
  char* msg = nullptr;
  int len = 0;
  libssh2_session_last_error(session.get(), &msg, &len, 0);
  return msg != nullptr && len > 0 ? std::string(msg, static_cast<size_t>(len))
                                   : std::string("unknown error");
}

Status SshSession::Impl::waitSocket(Deadline deadline) {
  const int dirs = libssh2_session_block_directions(session.get());
  bool read = (dirs & LIBSSH2_SESSION_BLOCK_INBOUND) != 0;
  const bool write = (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
  if (!read && !write) read = true;  // EAGAIN from a layer that did not say: wait for input
  return transport->wait(read, write, deadline);
}

Error SshSession::Impl::transportError(std::string_view what, int rc) {
  dead = true;
  return Error{
      Code::kUnavailable,
      std::string(what) + " on " + where + " failed (" + std::to_string(rc) + "): " + lastError(),
      std::string(reason::kTransport),
      {}};
}

Result<ChannelPtr> SshSession::Impl::openChannel(Deadline deadline) {
  for (;;) {
    LIBSSH2_CHANNEL* c = libssh2_channel_open_session(session.get());
    if (c != nullptr) return ChannelPtr(c);
    const int e = libssh2_session_last_errno(session.get());
    if (e != LIBSSH2_ERROR_EAGAIN) return transportError("opening a channel", e);
    if (auto st = waitSocket(deadline); !st) {
      // libssh2 keeps a half-done channel open in the session's state: the session cannot be
      // trusted with another one.
      dead = true;
      return st.error();
    }
  }
}

void SshSession::Impl::abortChannel(ChannelPtr& ch) {
  const Deadline grace = SteadyClock::now() + kCloseGrace;
  for (;;) {
    const int rc = libssh2_channel_close(ch.get());
    if (rc == 0) {
      freeChannel(ch, grace);
      return;
    }
    if (rc != LIBSSH2_ERROR_EAGAIN) {
      dead = true;
      return;
    }
    // Blocked on input only: EOF and CLOSE are out, what is left is the peer's CLOSE.
    if (libssh2_session_block_directions(session.get()) == LIBSSH2_SESSION_BLOCK_INBOUND) {
      parked.push_back(std::move(ch));
      if (parked.size() > kMaxParked) dead = true;
      return;
    }
    if (auto st = waitSocket(grace); !st) {
      dead = true;  // a close packet half-written: the session's output is unusable
      return;
    }
  }
}

void SshSession::Impl::reapParked() {
  for (auto it = parked.begin(); it != parked.end();) {
    const int rc = libssh2_channel_close(it->get());
    if (rc == LIBSSH2_ERROR_EAGAIN) {
      ++it;
      continue;
    }
    if (rc == 0 && libssh2_channel_free(it->get()) == 0) (void)it->release();
    it = parked.erase(it);  // else the deleter leaves it to libssh2_session_free
  }
}

void SshSession::Impl::freeChannel(ChannelPtr& ch, Deadline deadline) {
  auto freed = retry([&] { return libssh2_channel_free(ch.get()); }, deadline);
  if (freed && *freed == 0) {
    (void)ch.release();  // libssh2 freed it
    return;
  }
  dead = true;  // the deleter hands the channel over to libssh2_session_free
}

Result<ExitInfo> SshSession::Impl::execStream(std::string_view command,
                                              const ChunkHandler& on_chunk,
                                              std::optional<Deadline> deadline,
                                              const std::stop_token& stop) {
  if (dead)
    return Error{Code::kUnavailable,
                 "ssh session to " + where + " is closed",
                 std::string(reason::kTransport),
                 {}};
  if (command.empty() || command.find('\0') != std::string_view::npos)
    return invalidArgument("ssh: empty command, or a NUL byte in it");
  reapParked();
  const Deadline hard = deadline.value_or(Deadline::max());
  auto timeoutError = [&] {
    return Error{Code::kDeadlineExceeded,
                 "command on " + where + " did not finish in time; its channel was closed",
                 std::string(reason::kTimeout),
                 {}};
  };

  auto opened = openChannel(hard);
  if (!opened) return opened.error();
  ChannelPtr ch = std::move(*opened);
  auto started = retry(
      [&] {
        return libssh2_channel_process_startup(ch.get(), "exec", 4, command.data(),
                                               static_cast<unsigned>(command.size()));
      },
      hard);
  if (!started) {
    abortChannel(ch);
    return started.error();
  }
  if (*started == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED) {
    abortChannel(ch);
    return Error{Code::kPermissionDenied,
                 where + " refused to run the command",
                 std::string(reason::kTransport),
                 {}};
  }
  if (*started != 0) return transportError("starting the command", *started);

  ExitInfo info;
  char buf[32768];
  for (;;) {
    bool progressed = false;
    for (int stream : {0, SSH_EXTENDED_DATA_STDERR}) {
      for (;;) {
        const ssize_t n = libssh2_channel_read_ex(ch.get(), stream, buf, sizeof buf);
        if (n == LIBSSH2_ERROR_EAGAIN || n == 0) break;
        if (n < 0) return transportError("reading command output", static_cast<int>(n));
        progressed = true;
        if (!on_chunk(stream == 0 ? Stream::kStdout : Stream::kStderr,
                      std::string_view(buf, static_cast<size_t>(n)))) {
          info.stopped = true;
          abortChannel(ch);
          return info;
        }
      }
    }
    if (libssh2_channel_eof(ch.get()) == 1) break;
    if (progressed) continue;
    if (stop.stop_requested()) {
      info.stopped = true;
      abortChannel(ch);
      return info;
    }
    if (SteadyClock::now() >= hard) {
      abortChannel(ch);
      return timeoutError();
    }
    // Wake up at least every tick to look at the stop token.
    const Deadline wake = stop.stop_possible() ? std::min(hard, SteadyClock::now() + kTick) : hard;
    if (auto st = waitSocket(wake); !st && st.error().code != Code::kDeadlineExceeded) {
      dead = true;
      return st.error();
    }
  }

  // The exit status may follow the end of the output: it is certain once the remote has closed.
  auto closed = retry([&] { return libssh2_channel_close(ch.get()); }, hard);
  if (!closed) {
    abortChannel(ch);
    return closed.error().code == Code::kDeadlineExceeded ? timeoutError() : closed.error();
  }
  if (*closed != 0) return transportError("closing the channel", *closed);
  auto waited = retry([&] { return libssh2_channel_wait_closed(ch.get()); }, hard);
  if (!waited) {
    abortChannel(ch);
    return waited.error().code == Code::kDeadlineExceeded ? timeoutError() : waited.error();
  }
  info.exit_status = libssh2_channel_get_exit_status(ch.get());
  char* sig = nullptr;
  size_t sig_len = 0;
  libssh2_channel_get_exit_signal(ch.get(), &sig, &sig_len, nullptr, nullptr, nullptr, nullptr);
  if (sig != nullptr) {
    info.exit_signal.assign(sig, sig_len);
    libssh2_free(session.get(), sig);
  }
  freeChannel(ch, SteadyClock::now() + kCloseGrace);
  return info;
}

// ---- upload -----------------------------------------------------------------------------------

namespace {

Status checkRemotePath(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.back() == '/' || path.size() > 4096)
    return invalidArgument("ssh upload: the remote path must be absolute and name a file");
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f)
      return invalidArgument("ssh upload: a control character in the remote path");
  return {};
}

}  // namespace

Status SshSession::Impl::upload(const UploadSource& source, uint64_t size,
                                std::string_view remote_path, unsigned mode, Deadline deadline) {
  if (dead)
    return Error{Code::kUnavailable,
                 "ssh session to " + where + " is closed",
                 std::string(reason::kTransport),
                 {}};
  if (auto st = checkRemotePath(remote_path); !st) return st;
  const std::string path(remote_path);
  auto command = buildCommand({"scp", "-t", "--", path});
  if (!command) return command.error();
  reapParked();
  auto timeoutError = [&] {
    return Error{Code::kDeadlineExceeded,
                 "upload of " + path + " to " + where + " did not finish in time",
                 std::string(reason::kTimeout),
                 {}};
  };
  auto refused = [&](const std::string& why) {
    return Error{Code::kFailedPrecondition,
                 where + " refused the upload of " + path + ": " + why,
                 std::string(reason::kUpload),
                 {}};
  };
  // A wait that failed (the deadline, or the connection): a transfer cut short leaves libssh2's
  // channel state half-way, so the session is not used again.
  auto waitFailed = [&](ChannelPtr&, const Error& e) -> Error {
    dead = true;
    return e.code == Code::kDeadlineExceeded ? timeoutError() : e;
  };

  auto opened = openChannel(deadline);
  if (!opened) return opened.error();
  ChannelPtr ch = std::move(*opened);
  auto started = retry(
      [&] {
        return libssh2_channel_process_startup(ch.get(), "exec", 4, command->data(),
                                               static_cast<unsigned>(command->size()));
      },
      deadline);
  if (!started) return waitFailed(ch, started.error());
  if (*started == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED) {
    abortChannel(ch);
    return refused("the host refused to run scp");
  }
  if (*started != 0) return transportError("starting scp", *started);

  // The SCP protocol (the sink side is the host's `scp -t`): it acknowledges each step with one
  // NUL byte, or answers \1 (error) or \2 (fatal) and a message line; what it writes to stderr
  // says why it could not even start.
  std::string err;
  auto readAck = [&]() -> Status {
    std::string line;
    for (;;) {
      char c = 0;
      const ssize_t n = libssh2_channel_read(ch.get(), &c, 1);
      if (n == 1) {
        if (line.empty() && c == '\0') return {};
        if (c == '\n') {
          abortChannel(ch);
          return refused(line.substr(1));
        }
        if (line.size() < 4096) line += c;
        continue;
      }
      if (n == 0 || libssh2_channel_eof(ch.get()) == 1) {
        char buf[1024];
        ssize_t r = 0;
        while ((r = libssh2_channel_read_stderr(ch.get(), buf, sizeof buf)) > 0)
          if (err.size() < 4096) err.append(buf, static_cast<size_t>(r));
        while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
        abortChannel(ch);
        if (!line.empty()) return refused(line.substr(1));
        return refused(err.empty() ? "scp ended without an answer" : err);
      }
      if (n != LIBSSH2_ERROR_EAGAIN)
        return transportError("reading scp's answer", static_cast<int>(n));
      if (auto st = waitSocket(deadline); !st) return waitFailed(ch, st.error());
    }
  };
  auto writeAll = [&](const char* data, size_t n) -> Status {
    size_t off = 0;
    while (off < n) {
      const ssize_t w = libssh2_channel_write(ch.get(), data + off, n - off);
      if (w >= 0) {
        off += static_cast<size_t>(w);
        continue;
      }
      if (w != LIBSSH2_ERROR_EAGAIN) {
        // The host may have closed the channel with an error in its answer.
        if (auto st = readAck(); !st) return st;
        return transportError("sending " + path, static_cast<int>(w));
      }
      if (auto st = waitSocket(deadline); !st) return waitFailed(ch, st.error());
    }
    return {};
  };

  if (auto st = readAck(); !st) return st;
  const size_t slash = path.rfind('/');
  char header[64];
  std::snprintf(header, sizeof header, "C%04o %llu ", mode & 07777,
                static_cast<unsigned long long>(size));
  const std::string line = header + path.substr(slash + 1) + "\n";
  if (auto st = writeAll(line.data(), line.size()); !st) return st;
  if (auto st = readAck(); !st) return st;

  std::vector<char> buf(32768);
  uint64_t sent = 0;
  for (;;) {
    auto n = source(buf.data(), buf.size());
    if (!n) {
      abortChannel(ch);
      return n.error();
    }
    if (*n == 0) break;
    sent += *n;
    if (sent > size) {
      abortChannel(ch);
      return internal("ssh upload: the source grew while it was sent");
    }
    if (auto st = writeAll(buf.data(), *n); !st) return st;
  }
  if (sent != size) {
    abortChannel(ch);
    return internal("ssh upload: the source shrank while it was sent");
  }
  // The sender's NUL: the file is complete; scp then acknowledges it once written.
  if (auto st = writeAll("", 1); !st) return st;
  if (auto st = readAck(); !st) return st;

  auto eof = retry([&] { return libssh2_channel_send_eof(ch.get()); }, deadline);
  if (!eof) return waitFailed(ch, eof.error());
  if (*eof != 0) return transportError("ending the upload", *eof);
  auto closed = retry([&] { return libssh2_channel_close(ch.get()); }, deadline);
  if (!closed) return waitFailed(ch, closed.error());
  auto waited = retry([&] { return libssh2_channel_wait_closed(ch.get()); }, deadline);
  if (!waited) return waitFailed(ch, waited.error());
  const int status = libssh2_channel_get_exit_status(ch.get());
  freeChannel(ch, SteadyClock::now() + kCloseGrace);
  if (status != 0) return refused("scp exited " + std::to_string(status));
  return {};
}

// ---- connect ----------------------------------------------------------------------------------

namespace {

constexpr off_t kMaxPrivateKeyBytes = 64 * 1024;

Result<Secret> readPrivateKeyFile(const std::filesystem::path& path) {
  auto unusable = [&](const std::string& why) {
    return Error{Code::kUnauthenticated,
                 "private key " + path.string() + ": " + why,
                 std::string(reason::kKeyUnusable),
                 {}};
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return unusable(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxPrivateKeyBytes) {
    ::close(fd);
    return unusable("not a regular file of at most 64 KiB");
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  return Secret(std::move(data));
}

Status authenticateWithAgent(SshSession::Impl& impl, const std::string& user, const KeyAgent& ka,
                             Deadline deadline) {
  LIBSSH2_SESSION* s = impl.session.get();
  detail::AgentPtr agent(libssh2_agent_init(s));
  if (!agent) return internal("libssh2_agent_init: " + impl.lastError());
  std::string socket = ka.socket.string();
  if (socket.empty()) {
    const char* env = std::getenv("SSH_AUTH_SOCK");
    if (env == nullptr || *env == '\0')
      return Error{Code::kUnauthenticated,
                   "ssh-agent authentication asked for, but no agent socket is configured and "
                   "SSH_AUTH_SOCK is not set",
                   std::string(reason::kKeyUnusable),
                   {}};
    socket = env;
  }
  libssh2_agent_set_identity_path(agent.get(), socket.c_str());
  if (libssh2_agent_connect(agent.get()) != 0)
    return Error{Code::kUnauthenticated,
                 "cannot connect to the ssh-agent at " + socket + ": " + impl.lastError(),
                 std::string(reason::kKeyUnusable),
                 {}};
  auto listed = impl.retry([&] { return libssh2_agent_list_identities(agent.get()); }, deadline);
  if (!listed) return listed.error();
  if (*listed != 0)
    return Error{Code::kUnauthenticated,
                 "cannot list the keys of the ssh-agent: " + impl.lastError(),
                 std::string(reason::kKeyUnusable),
                 {}};
  libssh2_agent_publickey* prev = nullptr;
  int tried = 0;
  for (;;) {
    libssh2_agent_publickey* id = nullptr;
    const int more = libssh2_agent_get_identity(agent.get(), &id, prev);
    if (more == 1) break;
    if (more < 0) return internal("libssh2_agent_get_identity: " + impl.lastError());
    ++tried;
    auto rc =
        impl.retry([&] { return libssh2_agent_userauth(agent.get(), user.c_str(), id); }, deadline);
    if (!rc) return rc.error();
    if (*rc == 0) return {};
    if (!isAuthRefusal(*rc)) return impl.transportError("agent authentication", *rc);
    prev = id;
  }
  if (tried == 0)
    return Error{Code::kUnauthenticated,
                 "the ssh-agent at " + socket + " holds no keys",
                 std::string(reason::kKeyUnusable),
                 {}};
  return Error{Code::kUnauthenticated,
               impl.where + " refused all " + std::to_string(tried) + " keys of the ssh-agent",
               std::string(reason::kAuthFailed),
               {}};
}

// Public-key authentication only. The method list comes from a "none" request, which carries
// the user name and no credential; password and keyboard-interactive are never attempted.
Status authenticate(SshSession::Impl& impl, const std::string& user, SshSettings& settings,
                    Deadline deadline) {
  LIBSSH2_SESSION* s = impl.session.get();
  const char* list = nullptr;
  for (;;) {
    list = libssh2_userauth_list(s, user.data(), static_cast<unsigned>(user.size()));
    if (list != nullptr) break;
    if (libssh2_userauth_authenticated(s) != 0) return {};  // the server accepted "none"
    const int e = libssh2_session_last_errno(s);
    if (e != LIBSSH2_ERROR_EAGAIN) return impl.transportError("asking for auth methods", e);
    if (auto st = impl.waitSocket(deadline); !st) return st.error();
  }
  const std::string methods(list);
  if (!hasMethod(methods, "publickey"))
    return Error{Code::kUnauthenticated,
                 impl.where + " offers only the authentication methods '" + methods +
                     "'; hwLedger authenticates with keys only and sends no password",
                 std::string(reason::kNoPublicKeyAuth),
                 {}};

  if (const auto* ka = std::get_if<KeyAgent>(&settings.key))
    return authenticateWithAgent(impl, user, *ka, deadline);

  const char* pass = settings.passphrase.empty() ? nullptr : settings.passphrase.reveal().c_str();
  Result<int> rc = 0;
  {
    // A key file is read here, not by libssh2: only a regular file of at most 64 KiB, its last
    // component not a symlink, opened without blocking (a FIFO, a device or /dev/zero would
    // otherwise hang or spin the reader with no deadline).
    Secret from_file;
    if (const auto* kf = std::get_if<KeyFile>(&settings.key)) {
      auto pem = readPrivateKeyFile(kf->path);
      if (!pem) return pem.error();
      from_file = std::move(*pem);
    }
    const std::string& pem = std::get_if<KeyFile>(&settings.key) != nullptr
                                 ? from_file.reveal()
                                 : std::get<KeyPem>(settings.key).pem.reveal();
    rc = impl.retry(
        [&] {
          return libssh2_userauth_publickey_frommemory(s, user.data(), user.size(), nullptr, 0,
                                                       pem.data(), pem.size(), pass);
        },
        deadline);
  }
  if (!rc) return rc.error();
  if (*rc == 0) return {};
  if (isAuthRefusal(*rc))
    return Error{Code::kUnauthenticated,
                 impl.where + " refused the key for user " + user +
                     " (RSA keys cannot work: libssh2 1.10 signs them with ssh-rsa/SHA-1, which "
                     "OpenSSH 8.8 and later refuse; use an ed25519 or ecdsa key)",
                 std::string(reason::kAuthFailed),
                 {}};
  if (*rc == LIBSSH2_ERROR_FILE || *rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED ||
      *rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED)
    return Error{Code::kUnauthenticated,
                 "the private key cannot be used (" + impl.lastError() +
                     "): a wrong passphrase, an unreadable file, or a key type or format libssh2 "
                     "1.10 cannot load",
                 std::string(reason::kKeyUnusable),
                 {}};
  return impl.transportError("public-key authentication", *rc);
}

}  // namespace

Result<std::unique_ptr<SshSession::Impl>> SshSession::Impl::establish(
    std::shared_ptr<asio::io_context> io, std::unique_ptr<detail::Transport> transport,
    const Target& target, SshSettings& settings, Deadline deadline) {
  detail::ensureLibssh2Init();
  auto impl = std::make_unique<Impl>();
  impl->io = std::move(io);
  impl->transport = std::move(transport);
  impl->where = target.user + "@" + knownHostsName(target.host, target.port);
  impl->command_timeout = settings.command_timeout;
  impl->session.reset(libssh2_session_init_ex(nullptr, nullptr, nullptr, nullptr));
  if (!impl->session) return internal("libssh2_session_init failed");
  LIBSSH2_SESSION* s = impl->session.get();
  libssh2_session_set_blocking(s, 0);

  HostKeyPolicy policy;
  if (!target.pinned_fingerprint.empty()) {
    auto pin = parsePinnedFingerprint(target.pinned_fingerprint);
    if (!pin) return pin.error();
    policy.pinned_fingerprint = *pin;
  }
  policy.known_hosts = settings.known_hosts;
  policy.trust_on_first_use = settings.trust_on_first_use;
  // A pin recorded with its key's algorithm asks for that algorithm only: a host that has
  // several keys would otherwise show the one our default order prefers, which the pin does
  // not name.
  std::string prefs;
  if (!policy.pinned_fingerprint.empty() && !target.pinned_algorithm.empty()) {
    if (!isHostKeyAlgorithm(target.pinned_algorithm))
      return invalidArgument("unknown host key algorithm '" + target.pinned_algorithm + "'");
    prefs = target.pinned_algorithm;
  } else {
    prefs = hostKeyAlgorithmPreference(
        s, policy.pinned_fingerprint.empty() ? settings.known_hosts : std::filesystem::path(),
        knownHostsName(target.host, target.port));
  }
  if (libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, prefs.c_str()) != 0)
    return internal("libssh2_session_method_pref: " + impl->lastError());

  const int fd = impl->transport->fd();
  auto hs = impl->retry([&] { return libssh2_session_handshake(s, fd); }, deadline);
  if (!hs) {
    impl->dead = true;
    return hs.error();
  }
  if (*hs != 0) {
    impl->dead = true;
    return Error{Code::kUnavailable,
                 "key exchange with " + impl->where + " failed: " + impl->lastError() +
                     " (libssh2 1.10 needs an ed25519 or ecdsa host key: it has no rsa-sha2 "
                     "signatures)",
                 std::string(reason::kConnect),
                 {}};
  }

  // Nothing but the key exchange has been sent: the user name goes only to a trusted host.
  auto fp = verifyHostKey(s, target.host, target.port, policy);
  if (!fp) {
    impl->dead = true;  // not even a disconnect message to a host we do not trust
    return fp.error();
  }
  impl->fingerprint = *fp;
  {
    size_t len = 0;
    int type = LIBSSH2_HOSTKEY_TYPE_UNKNOWN;
    (void)libssh2_session_hostkey(s, &len, &type);
    impl->algorithm = hostKeyAlgorithmName(type);
  }
  spdlog::debug("ssh: {} host key {} accepted", impl->where, impl->fingerprint);

  auto authed = authenticate(*impl, target.user, settings, deadline);
  if (!authed) return authed.error();
  if (settings.keepalive_interval.count() > 0)
    libssh2_keepalive_config(s, 1, static_cast<unsigned>(settings.keepalive_interval.count()));
  return impl;
}

// ---- SshSession -------------------------------------------------------------------------------

SshSession::SshSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SshSession::~SshSession() = default;

Result<std::unique_ptr<SshSession>> SshSession::connect(SshSettings settings) {
  // Whatever path leaves this function, the secrets in `settings` are wiped by its destructor
  // (Secret); the explicit wipe below only makes it happen as soon as authentication is done.
  if (auto ok = validate(settings); !ok) return ok.error();
  const Deadline deadline = SteadyClock::now() + settings.connect_timeout;
  auto io = std::make_shared<asio::io_context>(1);
  auto connected = Impl::connectVia(io, settings, deadline);
  settings.passphrase.wipe();
  if (auto* pem = std::get_if<KeyPem>(&settings.key)) pem->pem.wipe();
  if (!connected) return connected.error();
  return std::unique_ptr<SshSession>(new SshSession(std::move(*connected)));
}

const std::string& SshSession::hostKeyFingerprint() const { return impl_->fingerprint; }
const std::string& SshSession::hostKeyAlgorithm() const { return impl_->algorithm; }
const std::string& SshSession::jumpHostKeyAlgorithm() const { return impl_->jump_algorithm; }
const std::string& SshSession::jumpHostKeyFingerprint() const { return impl_->jump_fingerprint; }

Result<ExecResult> SshSession::exec(std::string_view command) {
  return exec(command, impl_->command_timeout);
}

Result<ExecResult> SshSession::exec(std::string_view command, std::chrono::milliseconds timeout,
                                    size_t max_output_bytes) {
  ExecResult r;
  size_t total = 0;
  bool over = false;
  auto collect = [&](Stream stream, std::string_view data) {
    total += data.size();
    if (total > max_output_bytes) {
      over = true;
      return false;
    }
    (stream == Stream::kStdout ? r.out : r.err).append(data);
    return true;
  };
  auto info = impl_->execStream(command, collect, SteadyClock::now() + timeout, {});
  if (!info) return info.error();
  if (over)
    return Error{Code::kResourceExhausted,
                 "output of the command on " + impl_->where + " exceeds " +
                     std::to_string(max_output_bytes) + " bytes; its channel was closed",
                 std::string(reason::kOutputLimit),
                 {}};
  r.exit_status = info->exit_status;
  r.exit_signal = std::move(info->exit_signal);
  return r;
}

Result<ExitInfo> SshSession::execStream(std::string_view command, const ChunkHandler& on_chunk,
                                        const StreamOptions& options) {
  std::optional<Deadline> deadline;
  if (options.timeout.count() > 0) deadline = SteadyClock::now() + options.timeout;
  return impl_->execStream(command, on_chunk, deadline, options.stop);
}

Status SshSession::upload(std::string_view content, std::string_view remote_path, unsigned mode,
                          std::chrono::milliseconds timeout) {
  size_t off = 0;
  auto source = [&](char* buf, size_t cap) -> Result<size_t> {
    const size_t n = std::min(cap, content.size() - off);
    std::memcpy(buf, content.data() + off, n);
    off += n;
    return n;
  };
  return impl_->upload(source, content.size(), remote_path, mode, SteadyClock::now() + timeout);
}

Status SshSession::uploadFile(const std::filesystem::path& local, std::string_view remote_path,
                              unsigned mode, std::chrono::milliseconds timeout) {
  std::ifstream in(local, std::ios::binary);
  std::error_code ec;
  const auto size = std::filesystem::file_size(local, ec);
  if (!in || ec)
    return notFound("ssh upload: cannot read " + local.string() +
                    (ec ? ": " + ec.message() : std::string()));
  auto source = [&](char* buf, size_t cap) -> Result<size_t> {
    in.read(buf, static_cast<std::streamsize>(cap));
    if (in.bad()) return internal("ssh upload: reading " + local.string() + " failed");
    return static_cast<size_t>(in.gcount());
  };
  return impl_->upload(source, size, remote_path, mode, SteadyClock::now() + timeout);
}

bool SshSession::isAlive() {
  Impl& i = *impl_;
  if (i.dead || !i.session) return false;
  i.reapParked();
  if (i.dead) return false;
  if (!i.transport->alive()) {
    i.dead = true;
    return false;
  }
  int next = 0;
  const int rc = libssh2_keepalive_send(i.session.get(), &next);
  if (rc != 0 && rc != LIBSSH2_ERROR_EAGAIN) {
    i.dead = true;
    return false;
  }
  return true;
}

}  // namespace hwl::ssh

namespace hwl::ssh {

Result<std::unique_ptr<SshSession::Impl>> SshSession::Impl::connectVia(
    std::shared_ptr<asio::io_context> io, SshSettings& settings, Deadline deadline) {
  const Target target{settings.host, settings.port, settings.user, settings.pinned_fingerprint,
                      settings.host_key_algorithm};
  if (settings.jump) {
    // The bastion: its own host key policy (pin, or the same known_hosts and TOFU setting), and
    // the target's key source, as OpenSSH's ProxyJump does.
    const JumpHost& j = *settings.jump;
    const Target via{j.host, j.port, j.user, j.pinned_fingerprint, j.host_key_algorithm};
    auto tcp = detail::connectTcp(*io, j.host, j.port, deadline);
    if (!tcp) return tcp.error();
    auto bastion = establish(io, std::move(*tcp), via, settings, deadline);
    if (!bastion) {
      Error e = bastion.error();
      e.message = "jump host: " + e.message;
      return e;
    }
    const std::string jump_fp = (*bastion)->fingerprint;
    const std::string jump_alg = (*bastion)->algorithm;
    auto channel = openJumpTransport(std::move(*bastion), settings.host, settings.port, deadline);
    if (!channel) return channel.error();
    auto impl = establish(std::move(io), std::move(*channel), target, settings, deadline);
    if (impl) {
      (*impl)->jump_fingerprint = jump_fp;
      (*impl)->jump_algorithm = jump_alg;
    }
    return impl;
  }
  auto tcp = detail::connectTcp(*io, settings.host, settings.port, deadline);
  if (!tcp) return tcp.error();
  return establish(std::move(io), std::move(*tcp), target, settings, deadline);
}

}  // namespace hwl::ssh
