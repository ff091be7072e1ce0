// The agent's matching of GPU processes to its jobs, with real processes: a pid in a job's
// containment, a process in a job leader's session or process group, and one of no job.
#include "process_match.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace hwl::agent {
namespace {

// A stand-in job: a session leader with a child (which stays in its session and group).
struct Job {
  pid_t leader = -1;
  pid_t child = -1;
  Job() {
    int fds[2];
    if (::pipe(fds) != 0) return;
    leader = ::fork();
    if (leader == 0) {
      ::setsid();
      const pid_t c = ::fork();
      if (c == 0) {
        ::pause();
        ::_exit(0);
      }
      (void)!::write(fds[1], &c, sizeof c);
      ::pause();
      ::_exit(0);
    }
    ::close(fds[1]);
    (void)!::read(fds[0], &child, sizeof child);
    ::close(fds[0]);
  }
  ~Job() {
    if (leader > 0) {
      ::kill(-leader, SIGKILL);
      ::waitpid(leader, nullptr, 0);
    }
  }
};

probes::Sample sampleWith(const std::vector<pid_t>& pids) {
  probes::Sample s;
  probes::GpuSample g;
  g.uuid = "GPU-0";
  for (const pid_t p : pids) {
    g.processes.push_back({static_cast<std::uint32_t>(p), "p", 1 << 20, "stale"});
  }
  s.gpus.push_back(std::move(g));
  return s;
}

TEST(MatchJobProcesses, BySessionOrGroupOfTheLeaderOrByContainment) {
  Job job;
  ASSERT_GT(job.leader, 0);
  ASSERT_GT(job.child, 0);
  Job other;
  ASSERT_GT(other.child, 0);
  jobs::Supervisor::JobProcessMap map;
  map.leaders[job.leader] = "job-a";
  map.pids[job.leader] = "job-a";
  map.pids[4'000'000] = "job-b";  // in job-b's cgroup (no such pid here: matched by the list)
  auto s = sampleWith({job.child, ::getpid(), other.child, 4'000'000});
  matchJobProcesses(s, map);
  const auto& p = s.gpus[0].processes;
  EXPECT_TRUE(s.gpus[0].processes_matched);
  EXPECT_EQ(p[0].job_id, "job-a");  // its session and group are job-a's leader
  EXPECT_EQ(p[1].job_id, "");       // this test: no job's
  EXPECT_EQ(p[2].job_id, "");       // another session that is no job's
  EXPECT_EQ(p[3].job_id, "job-b");
}

TEST(MatchJobProcesses, NoJobsMarksEveryProcessAsNoJobs) {
  auto s = sampleWith({::getpid()});
  matchJobProcesses(s, {});
  EXPECT_TRUE(s.gpus[0].processes_matched);
  EXPECT_EQ(s.gpus[0].processes[0].job_id, "");
}

}  // namespace
}  // namespace hwl::agent
