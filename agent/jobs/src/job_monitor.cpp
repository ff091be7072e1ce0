// The job's monitor process (design in job_monitor.hpp).
#include "hwl/jobs/job_monitor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "hwl/jobs/log_files.hpp"

namespace hwl::jobs {
namespace {

int64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Closes every descriptor from 3 up except those in `keep`.
void closeAllExcept(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (const int fd : keep) {
    if (fd < 3) continue;
    if (static_cast<unsigned>(fd) > from) ::syscall(SYS_close_range, from, fd - 1U, 0U);
    from = static_cast<unsigned>(fd) + 1;
  }
  ::syscall(SYS_close_range, from, ~0U, 0U);
}

[[noreturn]] void exitLike(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    // No core file of the monitor: the job's own core (if any) was already written.
    const rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);
    ::signal(sig, SIG_DFL);
    sigset_t set;
    ::sigemptyset(&set);
    ::sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::kill(::getpid(), sig);
    ::_exit(128 + sig);
  }
  ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

}  // namespace

void runMonitor(const MonitorPlan& plan, const std::function<void()>& start_job) {
  // Signals: SIGCHLD and SIGTERM arrive through a signalfd; the rest keep default dispositions
  // except those a terminal or a dying agent might send.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
  sigset_t mask;
  ::sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE}) ::sigaddset(&mask, s);
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);
  ::setsid();
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (plan.devnull >= 0) {
    ::dup2(plan.devnull, 0);
    ::dup2(plan.devnull, 1);
    ::dup2(plan.devnull, 2);
  }
  // Nothing of the agent's (its listening socket, the outbox journal) stays open here.
  closeAllExcept({plan.out_read, plan.out_write, plan.report, plan.devnull});
  ::fcntl(plan.out_read, F_SETFL, O_NONBLOCK);

  const pid_t job = ::fork();
  if (job == 0) {
    ::close(plan.out_read);
    start_job();
    ::_exit(127);
  }
  const MonitorReport started{job > 0 ? kReportPid : kReportStage, job > 0 ? job : 0,
                              job > 0 ? 0 : errno};
  (void)!::write(plan.report, &started, sizeof started);
  ::close(plan.report);
  ::close(plan.out_write);
  ::close(plan.devnull);
  if (job < 0) ::_exit(127);

  sigset_t wanted;
  ::sigemptyset(&wanted);
  ::sigaddset(&wanted, SIGCHLD);
  ::sigaddset(&wanted, SIGTERM);
  const int sigfd = ::signalfd(-1, &wanted, SFD_CLOEXEC | SFD_NONBLOCK);

  LogWriter log(plan.log_dir, plan.log_max_bytes, plan.log_keep);
  const bool logging = log.open();
  JobProcesses self = plan.processes;
  self.monitor_pid = ::getpid();

  int out = plan.out_read;
  bool reaped = false;
  int status = 0;
  int64_t no_children_since = 0;
  static char buf[65536];
  for (;;) {
    pollfd fds[2] = {{sigfd, POLLIN, 0}, {out, POLLIN, 0}};
    const nfds_t n = out >= 0 ? 2 : 1;
    const int r = ::poll(fds, n, reaped ? 20 : 1000);
    if (r < 0 && errno != EINTR) break;
    if (out >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      // Drain what is there, but keep watching signals between chunks.
      for (int i = 0; i < 16; ++i) {
        const ssize_t got = ::read(out, buf, sizeof buf);
        if (got > 0) {
          if (logging) log.write(buf, static_cast<size_t>(got));
          if (static_cast<size_t>(got) < sizeof buf) break;
          continue;
        }
        if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(out);
          out = -1;
        }
        break;
      }
    }
    signalfd_siginfo si{};
    while (sigfd >= 0 && ::read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGTERM) signalJob(self, SIGTERM);
    }
    for (;;) {
      int st = 0;
      const pid_t p = ::waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == job) {
        reaped = true;
        status = st;
      }
    }
    if (!reaped) continue;
    // The main process is gone: so is everything it left, whatever session it moved to.
    if (!jobEmpty(self)) signalJob(self, SIGKILL);
    const pid_t any = ::waitpid(-1, nullptr, WNOHANG);
    if (any < 0 && errno == ECHILD) {
      if (out < 0) break;
      // Every process is gone; only something outside the job could still hold the pipe.
      if (no_children_since == 0) no_children_since = monotonicMs();
      if (monotonicMs() - no_children_since > 2000) break;
    }
  }
  exitLike(status);
}

}  // namespace hwl::jobs
