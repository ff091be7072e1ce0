// Matching GPU processes to jobs; see process_match.hpp.
#include "process_match.hpp"

#include "hwl/jobs/proc.hpp"

namespace hwl::agent {

void matchJobProcesses(probes::Sample& sample, const jobs::Supervisor::JobProcessMap& jobs) {
  for (auto& g : sample.gpus) {
    for (auto& p : g.processes) {
      p.job_id.clear();
      const auto pid = static_cast<pid_t>(p.pid);
      if (pid <= 0) continue;
      if (auto it = jobs.pids.find(pid); it != jobs.pids.end()) {
        p.job_id = it->second;
        continue;
      }
      if (jobs.leaders.empty()) continue;
      const auto st = jobs::readProcStat(pid);
      if (!st) continue;
      if (auto it = jobs.leaders.find(st->session); it != jobs.leaders.end()) {
        p.job_id = it->second;
      } else if (auto jt = jobs.leaders.find(st->pgrp); jt != jobs.leaders.end()) {
        p.job_id = jt->second;
      }
    }
    g.processes_matched = true;
  }
}

}  // namespace hwl::agent
