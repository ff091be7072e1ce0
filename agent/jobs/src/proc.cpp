// /proc readers for job re-adoption (see proc.hpp).
#include "hwl/jobs/proc.hpp"

#include <sstream>
#include <string>

#include "hwl/files.hpp"

namespace hwl::jobs {

std::optional<ProcStat> readProcStat(pid_t pid) {
  auto text = files::readFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  const size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text->substr(close + 1));
  ProcStat st;
  std::string skip;
  in >> st.state >> skip >> st.pgrp >> st.session;      // fields 3..6
  for (int field = 7; field < 22; ++field) in >> skip;  // fields 7..21
  in >> st.start_time;
  if (!in) return std::nullopt;
  return st;
}

bool sameLiveProcess(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  const auto st = readProcStat(pid);
  return st && st->state != 'Z' && st->state != 'X' && st->start_time == start_time;
}

}  // namespace hwl::jobs
