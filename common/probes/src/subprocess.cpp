// fork/exec with pipes, poll() and a deadline; every fd is owned by an RAII wrapper.
#include "hwl/probes/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "hwl/probes/text.hpp"

namespace hwl::probes {
namespace {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

bool isExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

Result<std::pair<Fd, Fd>> makePipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    return unavailable(std::string("pipe2: ") + std::strerror(errno));
  }
  return std::pair<Fd, Fd>{Fd(fds[0]), Fd(fds[1])};
}

}  // namespace

std::optional<std::string> findExecutable(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    return isExecutableFile(name) ? std::optional<std::string>(name) : std::nullopt;
  }
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (auto dir : split(dirs, ':')) {
    if (dir.empty()) continue;
    std::string candidate = std::string(dir) + "/" + name;
    if (isExecutableFile(candidate)) return candidate;
  }
  return std::nullopt;
}

Result<CommandResult> runCommand(const std::vector<std::string>& argv,
                                 const CommandSettings& settings) {
  if (argv.empty()) return invalidArgument("empty command");
  const auto exe = findExecutable(argv[0]);
  if (!exe) return notFound(argv[0] + ": not found");

  // Everything the child needs is prepared before fork(): only async-signal-safe calls after.
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  auto outPipe = makePipe();
  if (!outPipe) return outPipe.error();
  auto errPipe = makePipe();
  if (!errPipe) return errPipe.error();
  auto& [outRead, outWrite] = *outPipe;
  auto& [errRead, errWrite] = *errPipe;

  const pid_t pid = ::fork();
  if (pid < 0) return unavailable(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(outWrite.get(), STDOUT_FILENO);
    ::dup2(errWrite.get(), STDERR_FILENO);
    ::close_range(3, ~0U, 0);  // fds another thread opened without O_CLOEXEC
    ::execv(exe->c_str(), cargv.data());
    ::_exit(127);
  }
  outWrite.reset();
  errWrite.reset();

  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + settings.timeout;
  bool timedOut = false;
  bool tooBig = false;
  std::array<pollfd, 2> pfds{pollfd{outRead.get(), POLLIN, 0}, pollfd{errRead.get(), POLLIN, 0}};
  std::array<char, 65536> buf{};
  int open = 2;
  while (open > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    const int rc = ::poll(pfds.data(), pfds.size(), static_cast<int>(left.count()));
    if (rc < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (rc == 0) continue;
    for (std::size_t i = 0; i < pfds.size(); ++i) {
      if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
      const ssize_t n = ::read(pfds[i].fd, buf.data(), buf.size());
      if (n > 0) {
        std::string& sink = i == 0 ? result.out : result.err;
        sink.append(buf.data(), static_cast<std::size_t>(n));
        if (sink.size() > settings.max_output_bytes) tooBig = true;
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        pfds[i].fd = -1;
        --open;
      }
    }
    if (tooBig) break;
  }
  if (timedOut || tooBig) ::kill(pid, SIGKILL);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) {
    return Error{Code::kDeadlineExceeded, argv[0] + " did not finish within " +
                                              std::to_string(settings.timeout.count()) + " ms"};
  }
  if (tooBig) return Error{Code::kResourceExhausted, argv[0] + " printed too much output"};
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace hwl::probes
