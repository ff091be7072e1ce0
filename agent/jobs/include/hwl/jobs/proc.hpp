// Facts about processes read from /proc, used to re-adopt jobs without mistaking a reused pid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace hwl::jobs {

struct ProcStat {
  char state = '?';         // field 3: R, S, D, Z, …
  pid_t pgrp = 0;           // field 5: process group
  pid_t session = 0;        // field 6: session
  uint64_t start_time = 0;  // field 22: clock ticks after boot
};

// Reads /proc/<pid>/stat; nullopt when the process does not exist.
std::optional<ProcStat> readProcStat(pid_t pid);

// True when `pid` exists, is not a zombie, and started at `start_time` (the same process).
bool sameLiveProcess(pid_t pid, uint64_t start_time);

}  // namespace hwl::jobs
