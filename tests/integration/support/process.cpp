// fork/exec with pipes or files for the child's output; see process.hpp.
#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace hwl::itest {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

void ignoreSigpipe() {
  static const bool done = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

std::string resolve(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    fs::path cand = fs::path(dir.empty() ? "." : dir) / prog;
    if (::access(cand.c_str(), X_OK) == 0) return cand.string();
  }
  throw std::runtime_error("program not found in PATH: " + prog);
}

// Everything execve needs, built before fork so the child only calls async-signal-safe functions.
struct ExecImage {
  std::string program;
  std::vector<std::string> args;
  std::vector<std::string> envs;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecImage(const std::vector<std::string>& a, const Env& extra) : args(a) {
    if (a.empty()) throw std::runtime_error("empty command line");
    program = resolve(a.front());
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view kv(*e);
      bool replaced = false;
      for (const auto& [k, v] : extra)
        if (kv.size() > k.size() && kv.substr(0, k.size()) == k && kv[k.size()] == '=')
          replaced = true;
      if (!replaced) envs.emplace_back(kv);
    }
    for (const auto& [k, v] : extra) envs.push_back(k + "=" + v);
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : envs) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

ExitStatus decode(int st) {
  ExitStatus s;
  if (WIFEXITED(st)) {
    s.exited = true;
    s.code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    s.signal = WTERMSIG(st);
  }
  return s;
}

[[noreturn]] void execChild(const ExecImage& img, int in, int out, int err) {
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
  // A test process that crashes takes its children with it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent ignores SIGPIPE; the child gets the default back.
  ::signal(SIGPIPE, SIG_DFL);
  ::execve(img.program.c_str(), img.argv.data(), img.envp.data());
  ::_exit(127);
}

int openOrNull(const fs::path& p, int flags) {
  int fd = ::open(p.empty() ? "/dev/null" : p.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot open " + p.string() + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exit code " + std::to_string(code);
  if (signal != 0) return std::string("killed by signal ") + ::strsignal(signal);
  return "still running";
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& opts) {
  ignoreSigpipe();
  ExecImage img(argv, opts.env);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) execChild(img, in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  int in_w = in[1];
  ::fcntl(in_w, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (opts.input.empty()) {
    ::close(in_w);
    in_w = -1;
  }

  RunResult res;
  int fds[2] = {out[0], err[0]};
  std::string* sinks[2] = {&res.out, &res.err};
  const auto deadline = Clock::now() + opts.timeout;
  bool killed = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[3];
    int n = 0;
    int idx[3];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        p[n] = {fds[i], POLLIN, 0};
        idx[n++] = i;
      }
    }
    if (in_w >= 0) {
      p[n] = {in_w, POLLOUT, 0};
      idx[n++] = 2;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int wait_ms = killed ? 1000 : static_cast<int>(std::max<int64_t>(0, left.count()));
    int r = ::poll(p, static_cast<nfds_t>(n), wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      if (killed) break;  // something else holds the pipes open: give up on them
      ::kill(pid, SIGKILL);
      killed = true;
      res.timed_out = true;
      continue;
    }
    for (int k = 0; k < n; ++k) {
      if (p[k].revents == 0) continue;
      if (idx[k] == 2) {
        ssize_t w = ::write(in_w, opts.input.data() + written, opts.input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = opts.input.size();
        if (written >= opts.input.size()) {
          ::close(in_w);
          in_w = -1;
        }
        continue;
      }
      char buf[65536];
      ssize_t got = ::read(p[k].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[idx[k]]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[idx[k]]);
        fds[idx[k]] = -1;
      }
    }
  }
  for (int fd : {fds[0], fds[1], in_w})
    if (fd >= 0) ::close(fd);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  res.status = decode(st);
  return res;
}

Process::Process(const std::vector<std::string>& argv, SpawnOptions opts) : opts_(std::move(opts)) {
  ignoreSigpipe();
  ExecImage img(argv, opts_.env);
  int in_r = -1;
  if (opts_.stdin_pipe) {
    int in[2];
    if (::pipe2(in, O_CLOEXEC) != 0)
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    in_r = in[0];
    stdin_fd_ = in[1];
  } else {
    in_r = openOrNull({}, O_RDONLY);
  }
  int out = openOrNull(opts_.stdout_file, O_WRONLY | O_CREAT | O_TRUNC);
  int err = openOrNull(opts_.stderr_file, O_WRONLY | O_CREAT | O_TRUNC);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) execChild(img, in_r, out, err);
  ::close(in_r);
  ::close(out);
  ::close(err);
}

Process::~Process() {
  kill();
  closeStdin();
}

bool Process::running() {
  if (status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = decode(st);
    return false;
  }
  return r == 0;
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<ExitStatus> Process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

ExitStatus Process::kill() {
  if (pid_ <= 0) return {};
  if (running()) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = decode(st);
  }
  return status_.value_or(ExitStatus{});
}

void Process::writeStdin(std::string_view data) {
  if (stdin_fd_ < 0) throw std::runtime_error("the child's stdin is not a pipe");
  while (!data.empty()) {
    ssize_t w = ::write(stdin_fd_, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("write to child: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
}

void Process::closeStdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

std::string Process::out() const {
  return opts_.stdout_file.empty() ? std::string() : readFile(opts_.stdout_file);
}

std::string Process::err() const {
  return opts_.stderr_file.empty() ? std::string() : readFile(opts_.stderr_file);
}

bool Process::waitForOutput(std::string_view needle, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (out().find(needle) != std::string::npos) return true;
    if (!running()) return out().find(needle) != std::string::npos;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TempDir::TempDir(std::string_view prefix) {
  std::string tmpl = (fs::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const fs::path& p, std::string_view content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

}  // namespace hwl::itest
