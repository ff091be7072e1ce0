// Job containment: every process a job starts, however it detaches (setsid, double fork), stays
// reachable and dies with the job.
//
// Three mechanisms, chosen once when the supervisor opens:
//  - cgroup v2 (systemd hosts, the unit has Delegate=yes): a cgroup per job under the agent's own
//    cgroup, <base>/<group>/<job id>; pids.max and memory.max when those controllers are delegated;
//    killed with cgroup.kill. If the agent's cgroup must enable controllers for its children it
//    first moves itself into the leaf <base>/agent (cgroup v2 allows no process in a cgroup whose
//    children have controllers).
//  - cgroup v1 (hybrid hosts): a cgroup per job in the pids and freezer hierarchies (and memory,
//    when mounted) under the agent's own cgroup there; pids.max, memory.limit_in_bytes; killed by
//    freezing it, SIGKILLing every process in cgroup.procs and thawing it.
//  - subreaper: no usable cgroup. The job's monitor process is a child subreaper, so every
//    orphaned descendant is re-parented to it and found by walking /proc from the monitor down.
//    No pids or memory limit can be enforced; jobs asking for one are refused.
// In all three, each job runs under a monitor process (see job_monitor.hpp) that is a subreaper
// and ends only once every process of the job is gone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::jobs {

enum class ContainmentKind { kCgroupV2, kCgroupV1, kSubreaper };
// What the agent is configured to use; kAuto picks the first that works, in the order cgroup v2
// with a pids controller, cgroup v1, cgroup v2 without controllers, subreaper.
enum class ContainmentChoice { kAuto, kCgroupV2, kCgroupV1, kSubreaper };

std::string_view containmentName(ContainmentKind kind);  // "cgroup-v2", "cgroup-v1", "subreaper"
std::optional<ContainmentChoice> parseContainmentChoice(std::string_view text);  // + "auto"
std::optional<ContainmentKind> parseContainmentKind(std::string_view text);
// The directory name of an agent's job cgroups: "hwledger-" and 12 hex digits of FNV-1a over the
// absolute state dir, so it is stable across restarts (re-adopted jobs keep their cgroups) and
// distinct per agent.
std::string cgroupGroupFor(const std::filesystem::path& state_dir);

struct JobLimits {
  int64_t pids_max = 0;          // 0: none
  int64_t memory_max_bytes = 0;  // 0: none
};

// The processes of one job, as recorded in its job record (survives agent restarts).
struct JobProcesses {
  ContainmentKind kind = ContainmentKind::kSubreaper;
  std::vector<std::string> cgroups;  // v2: one dir; v1: one dir per hierarchy
  pid_t monitor_pid = 0;             // the subreaper root (subreaper kind)
  uint64_t monitor_start_time = 0;
};

// Every pid in the job (not the monitor). Cgroups: cgroup.procs; subreaper: the monitor's
// descendants in /proc (only while the monitor is the process recorded).
std::vector<pid_t> jobPids(const JobProcesses& job);
// Sends `sig` to every process of the job; SIGKILL goes through cgroup.kill (v2) or
// freeze/kill/thaw (v1), and repeats until nothing is left or `rounds` passes were made.
void signalJob(const JobProcesses& job, int sig, int rounds = 50);
bool jobEmpty(const JobProcesses& job);
// Removes the job's cgroups once empty (retrying briefly); true when none is left.
bool removeJobCgroups(const JobProcesses& job);
// Kills the kernel's OOM killer made in the job's memory cgroup, if there is one.
uint64_t oomKills(const JobProcesses& job);

class Containment {
 public:
  // Detects what works here. `group` names the directory that holds this agent's job cgroups
  // ([A-Za-z0-9._-]). A forced choice that does not work is an error naming what is missing.
  static Result<Containment> open(ContainmentChoice choice, const std::string& group);

  [[nodiscard]] ContainmentKind kind() const { return kind_; }
  [[nodiscard]] bool enforcesPids() const { return pids_; }
  [[nodiscard]] bool enforcesMemory() const { return memory_; }
  // For people: "cgroup-v1 (pids, freezer, memory under /sys/fs/cgroup/pids/…/group)".
  [[nodiscard]] const std::string& description() const { return description_; }

  // Creates the job's cgroups with its limits set (cgroup kinds; the subreaper kind has none).
  // `enter` is filled with the cgroup.procs files the job's first process writes itself into.
  Result<JobProcesses> create(const std::string& job_id, const JobLimits& limits,
                              std::vector<std::string>& enter) const;
  // Removes the group directories if they are empty (best effort); create() makes them again.
  void removeGroupIfEmpty() const;

 private:
  ContainmentKind kind_ = ContainmentKind::kSubreaper;
  bool pids_ = false;
  bool memory_ = false;
  std::vector<std::string> group_dirs_;      // v2: one; v1: pids, freezer[, memory]
  std::vector<std::string> v2_controllers_;  // enabled in the v2 group's subtree_control
  std::string description_;
};

}  // namespace hwl::jobs
