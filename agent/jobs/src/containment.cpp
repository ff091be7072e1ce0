// Job containment through cgroup v2, cgroup v1 or a subreaper (design in containment.hpp).
// The signalling and listing functions also run in a job's monitor process (after fork), so they
// use plain system calls and no locks besides malloc's.
#include "hwl/jobs/containment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include "hwl/jobs/proc.hpp"

namespace hwl::jobs {
namespace {

std::string readSmall(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1U << 22)) break;
  }
  ::close(fd);
  return out;
}

// Writes `text` in one write(2), as cgroup files want; false with errno set on failure.
bool writeSmall(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = 0;
  do {
    n = ::write(fd, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return n == static_cast<ssize_t>(text.size());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void sleepMs(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\n' && text[j] != '\t') ++j;
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<pid_t> readProcs(const std::string& dir) {
  std::vector<pid_t> out;
  for (const auto& w : words(readSmall(dir + "/cgroup.procs"))) {
    char* end = nullptr;
    const long v = std::strtol(w.c_str(), &end, 10);
    if (end && *end == '\0' && v > 0) out.push_back(static_cast<pid_t>(v));
  }
  return out;
}

// The monitor's live descendants (zombies excluded: they are dead, waiting to be reaped).
std::vector<pid_t> descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  DIR* d = ::opendir("/proc");
  if (!d) return {};
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end != '\0' || pid <= 0) continue;
    const std::string stat = readSmall("/proc/" + std::string(e->d_name) + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) continue;
    const char state = stat[close + 2];
    const long ppid = std::strtol(stat.c_str() + close + 4, nullptr, 10);
    if (state == 'Z' || state == 'X') continue;
    children.emplace(static_cast<pid_t>(ppid), static_cast<pid_t>(pid));
  }
  ::closedir(d);
  std::vector<pid_t> out;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    auto [lo, hi] = children.equal_range(p);
    for (auto it = lo; it != hi; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

const std::string* dirWith(const JobProcesses& job, const char* file) {
  for (const auto& d : job.cgroups) {
    if (exists(d + "/" + file)) return &d;
  }
  return nullptr;
}

bool monitorIsOurs(const JobProcesses& job) {
  if (job.monitor_pid <= 0) return false;
  if (job.monitor_pid == ::getpid()) return true;
  return sameLiveProcess(job.monitor_pid, job.monitor_start_time);
}

uint64_t counter(const std::string& text, std::string_view key) {
  const auto w = words(text);
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    if (w[i] == key) return std::strtoull(w[i + 1].c_str(), nullptr, 10);
  }
  return 0;
}

struct Mount {
  std::string root;
  std::string point;
  std::string fstype;
  std::vector<std::string> options;
};

// "a,b,c" → {"a", "b", "c"}; "" → {}.
std::vector<std::string> commaList(const std::string& text) {
  std::vector<std::string> out;
  size_t s = 0;
  while (!text.empty() && s <= text.size()) {
    size_t c = text.find(',', s);
    if (c == std::string::npos) c = text.size();
    out.push_back(text.substr(s, c - s));
    s = c + 1;
  }
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    out.push_back(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return out;
}

std::vector<Mount> cgroupMounts() {
  std::vector<Mount> out;
  for (const auto& line : lines(readSmall("/proc/self/mountinfo"))) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto left = words(line.substr(0, dash));
    const auto right = words(line.substr(dash + 3));
    if (left.size() < 5 || right.size() < 3) continue;
    if (right[0] != "cgroup" && right[0] != "cgroup2") continue;
    out.push_back(Mount{left[3], left[4], right[0], commaList(right[2])});
  }
  return out;
}

struct OwnCgroup {
  std::string id;
  std::vector<std::string> controllers;
  std::string path;
};

std::vector<OwnCgroup> ownCgroups() {
  std::vector<OwnCgroup> out;
  for (const auto& line : lines(readSmall("/proc/self/cgroup"))) {
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    out.push_back(
        OwnCgroup{line.substr(0, a), commaList(line.substr(a + 1, b - a - 1)), line.substr(b + 1)});
  }
  return out;
}

// The directory of this process's cgroup in a hierarchy mounted at `m`.
std::string baseDir(const Mount& m, const std::string& own_path) {
  std::string rel = own_path;
  if (m.root != "/" && rel.rfind(m.root, 0) == 0) rel = rel.substr(m.root.size());
  if (rel == "/") rel.clear();
  return m.point + rel;
}

std::optional<std::string> v2Base() {
  for (const auto& m : cgroupMounts()) {
    if (m.fstype != "cgroup2") continue;
    for (const auto& c : ownCgroups()) {
      if (c.id == "0" && c.controllers.empty()) return baseDir(m, c.path);
    }
  }
  return std::nullopt;
}

std::optional<std::string> v1Base(const std::string& controller) {
  for (const auto& m : cgroupMounts()) {
    if (m.fstype != "cgroup" ||
        std::find(m.options.begin(), m.options.end(), controller) == m.options.end())
      continue;
    for (const auto& c : ownCgroups()) {
      if (std::find(c.controllers.begin(), c.controllers.end(), controller) != c.controllers.end())
        return baseDir(m, c.path);
    }
  }
  return std::nullopt;
}

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// mkdir that accepts an existing directory.
bool makeDir(const std::string& dir) { return ::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST; }

Status probeChild(const std::string& group_dir, const std::vector<std::string>& files) {
  const std::string probe = group_dir + "/.probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST)
    return internal(errnoText("create " + probe));
  std::string missing;
  for (const auto& f : files) {
    if (!exists(probe + "/" + f)) missing = f;
  }
  ::rmdir(probe.c_str());
  if (!missing.empty()) return internal(group_dir + ": a job cgroup has no " + missing);
  return {};
}

}  // namespace

std::string_view containmentName(ContainmentKind kind) {
  switch (kind) {
    case ContainmentKind::kCgroupV2:
      return "cgroup-v2";
    case ContainmentKind::kCgroupV1:
      return "cgroup-v1";
    case ContainmentKind::kSubreaper:
      return "subreaper";
  }
  return "subreaper";
}

std::string cgroupGroupFor(const std::filesystem::path& state_dir) {
  uint64_t h = 1469598103934665603ULL;
  for (const char c : std::filesystem::absolute(state_dir).lexically_normal().string())
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return "hwledger-" + std::string(hex, 12);
}

std::optional<ContainmentKind> parseContainmentKind(std::string_view text) {
  for (auto k :
       {ContainmentKind::kCgroupV2, ContainmentKind::kCgroupV1, ContainmentKind::kSubreaper})
    if (containmentName(k) == text) return k;
  return std::nullopt;
}

std::optional<ContainmentChoice> parseContainmentChoice(std::string_view text) {
  if (text == "auto") return ContainmentChoice::kAuto;
  if (text == "cgroup-v2") return ContainmentChoice::kCgroupV2;
  if (text == "cgroup-v1") return ContainmentChoice::kCgroupV1;
  if (text == "subreaper") return ContainmentChoice::kSubreaper;
  return std::nullopt;
}

std::vector<pid_t> jobPids(const JobProcesses& job) {
  switch (job.kind) {
    case ContainmentKind::kCgroupV2:
      return job.cgroups.empty() ? std::vector<pid_t>{} : readProcs(job.cgroups.front());
    case ContainmentKind::kCgroupV1: {
      const std::string* d = dirWith(job, "pids.max");
      if (!d && !job.cgroups.empty()) d = &job.cgroups.front();
      return d ? readProcs(*d) : std::vector<pid_t>{};
    }
    case ContainmentKind::kSubreaper:
      return monitorIsOurs(job) ? descendants(job.monitor_pid) : std::vector<pid_t>{};
  }
  return {};
}

bool jobEmpty(const JobProcesses& job) { return jobPids(job).empty(); }

void signalJob(const JobProcesses& job, int sig, int rounds) {
  if (sig != SIGKILL) {
    for (const pid_t p : jobPids(job)) ::kill(p, sig);
    return;
  }
  for (int round = 0; round < rounds; ++round) {
    const auto pids = jobPids(job);
    if (pids.empty()) return;
    switch (job.kind) {
      case ContainmentKind::kCgroupV2: {
        const std::string& dir = job.cgroups.front();
        if (!writeSmall(dir + "/cgroup.kill", "1")) {
          for (const pid_t p : pids) ::kill(p, SIGKILL);
        }
        break;
      }
      case ContainmentKind::kCgroupV1: {
        // Frozen, no process can fork a new one between listing and killing.
        const std::string* freezer = dirWith(job, "freezer.state");
        if (freezer) {
          (void)writeSmall(*freezer + "/freezer.state", "FROZEN");
          for (int i = 0; i < 100; ++i) {
            if (readSmall(*freezer + "/freezer.state").rfind("FROZEN", 0) == 0) break;
            sleepMs(2);
          }
        }
        for (const pid_t p : jobPids(job)) ::kill(p, SIGKILL);
        if (freezer) (void)writeSmall(*freezer + "/freezer.state", "THAWED");
        break;
      }
      case ContainmentKind::kSubreaper:
        // Stop first so none forks while the tree is walked again, then kill.
        for (const pid_t p : pids) ::kill(p, SIGSTOP);
        for (const pid_t p : jobPids(job)) ::kill(p, SIGKILL);
        for (const pid_t p : pids) ::kill(p, SIGKILL);
        break;
    }
    sleepMs(round < 5 ? 2 : 10);
  }
}

bool removeJobCgroups(const JobProcesses& job) {
  bool all = true;
  for (const auto& d : job.cgroups) {
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) {
        gone = true;
      } else if (errno == EBUSY) {
        sleepMs(5);
      } else {
        break;
      }
    }
    all = all && gone;
  }
  return all;
}

uint64_t oomKills(const JobProcesses& job) {
  if (const auto* d = dirWith(job, "memory.events")) {
    return counter(readSmall(*d + "/memory.events"), "oom_kill");
  }
  if (const auto* d = dirWith(job, "memory.oom_control")) {
    return counter(readSmall(*d + "/memory.oom_control"), "oom_kill");
  }
  return 0;
}

namespace {

Result<Containment> noCgroup(std::string why) {
  return Error{Code::kFailedPrecondition, std::move(why)};
}

}  // namespace

Result<Containment> Containment::open(ContainmentChoice choice, const std::string& group) {
  if (group.empty() || group.front() == '.' || !std::all_of(group.begin(), group.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      }))
    return invalidArgument("cgroup group name must be [A-Za-z0-9._-]: " + group);

  auto v2 = [&](bool need_pids) -> Result<Containment> {
    auto base = v2Base();
    if (!base) return noCgroup("no cgroup2 hierarchy is mounted");
    if (!exists(*base + "/cgroup.procs")) return noCgroup("no cgroup2 directory " + *base);
    std::set<std::string> want;
    for (const auto& c : words(readSmall(*base + "/cgroup.controllers"))) {
      if (c == "pids" || c == "memory") want.insert(c);
    }
    if (need_pids && !want.contains("pids"))
      return noCgroup("the cgroup2 hierarchy at " + *base + " has no pids controller");
    auto enable = [&](const std::string& dir) {
      for (const auto& c : want) {
        if (!writeSmall(dir + "/cgroup.subtree_control", "+" + c)) return false;
      }
      return true;
    };
    if (!want.empty()) {
      const auto enabled = words(readSmall(*base + "/cgroup.subtree_control"));
      bool missing = false;
      for (const auto& c : want) {
        missing = missing || std::find(enabled.begin(), enabled.end(), c) == enabled.end();
      }
      if (missing && !enable(*base)) {
        // A cgroup whose children get controllers may hold no process: move the agent into a
        // leaf of its own first (its job monitors follow it there).
        const std::string leaf = *base + "/agent";
        if (!makeDir(leaf) || !writeSmall(leaf + "/cgroup.procs", std::to_string(::getpid())) ||
            !enable(*base)) {
          if (need_pids) return noCgroup(errnoText("enable pids in " + *base));
          want.clear();
        }
      }
    }
    const std::string dir = *base + "/" + group;
    if (!makeDir(dir)) return noCgroup(errnoText("create " + dir));
    if (!want.empty() && !enable(dir)) {
      if (need_pids) return noCgroup(errnoText("enable pids in " + dir));
      want.clear();
    }
    std::vector<std::string> files{"cgroup.procs"};
    if (want.contains("pids")) files.emplace_back("pids.max");
    if (want.contains("memory")) files.emplace_back("memory.max");
    if (auto st = probeChild(dir, files); !st) return noCgroup(st.error().message);
    Containment c;
    c.kind_ = ContainmentKind::kCgroupV2;
    c.v2_controllers_.assign(want.begin(), want.end());
    c.pids_ = want.contains("pids");
    c.memory_ = want.contains("memory");
    c.group_dirs_ = {dir};
    c.description_ =
        "cgroup-v2 at " + dir + " (" +
        (want.empty() ? std::string("no controllers: kill only")
                      : std::string(c.pids_ ? "pids" : "") + (c.pids_ && c.memory_ ? ", " : "") +
                            (c.memory_ ? "memory" : "")) +
        ")";
    return c;
  };

  auto v1 = [&]() -> Result<Containment> {
    Containment c;
    c.kind_ = ContainmentKind::kCgroupV1;
    std::string where;
    for (const std::string ctl : {"pids", "freezer", "memory"}) {
      auto base = v1Base(ctl);
      if (!base) {
        if (ctl == "memory") continue;
        return noCgroup("no cgroup v1 " + ctl + " hierarchy is mounted");
      }
      const std::string dir = *base + "/" + group;
      if (!makeDir(dir)) {
        if (ctl == "memory") continue;
        return noCgroup(errnoText("create " + dir));
      }
      const std::string file = ctl == "pids"      ? "pids.max"
                               : ctl == "freezer" ? "freezer.state"
                                                  : "memory.limit_in_bytes";
      if (auto st = probeChild(dir, {"cgroup.procs", file}); !st) {
        if (ctl == "memory") continue;
        return noCgroup(st.error().message);
      }
      c.group_dirs_.push_back(dir);
      where += (where.empty() ? "" : ", ") + dir;
      if (ctl == "memory") c.memory_ = true;
    }
    c.pids_ = true;
    c.description_ = std::string("cgroup-v1 (pids, freezer") + (c.memory_ ? ", memory" : "") +
                     ": " + where + ")";
    return c;
  };

  auto subreaper = [] {
    Containment c;
    c.kind_ = ContainmentKind::kSubreaper;
    c.description_ = "subreaper (no usable cgroup: no pids or memory limits)";
    return c;
  };

  auto c = [&]() -> Result<Containment> {
    switch (choice) {
      case ContainmentChoice::kCgroupV2:
        return v2(false);
      case ContainmentChoice::kCgroupV1:
        return v1();
      case ContainmentChoice::kSubreaper:
        return subreaper();
      case ContainmentChoice::kAuto:
        break;
    }
    if (auto r = v2(true)) return r;
    if (auto r = v1()) return r;
    if (auto r = v2(false)) return r;
    return subreaper();
  }();
  if (c) c->removeGroupIfEmpty();
  return c;
}

Result<JobProcesses> Containment::create(const std::string& job_id, const JobLimits& limits,
                                         std::vector<std::string>& enter) const {
  JobProcesses job;
  job.kind = kind_;
  enter.clear();
  if (kind_ == ContainmentKind::kSubreaper) return job;
  // The group directories exist only while jobs do (an agent killed without jobs leaves none).
  for (const auto& g : group_dirs_) {
    if (!makeDir(g)) return internal(errnoText("create " + g));
  }
  if (kind_ == ContainmentKind::kCgroupV2) {
    for (const auto& c : v2_controllers_) {
      if (!writeSmall(group_dirs_.front() + "/cgroup.subtree_control", "+" + c))
        return internal(errnoText("enable " + c + " in " + group_dirs_.front()));
    }
  }
  auto undo = [&](Error e) -> Result<JobProcesses> {
    removeJobCgroups(job);
    enter.clear();
    return e;
  };
  for (const auto& g : group_dirs_) {
    const std::string dir = g + "/" + job_id;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      // Left over from an earlier run of a job with this id: reuse it only if it is empty.
      if (errno != EEXIST || ::rmdir(dir.c_str()) != 0 || ::mkdir(dir.c_str(), 0755) != 0)
        return undo(internal(errnoText("create cgroup " + dir)));
    }
    job.cgroups.push_back(dir);
    enter.push_back(dir + "/cgroup.procs");
    auto set = [&](const char* file, int64_t value) -> Status {
      if (!writeSmall(dir + "/" + file, std::to_string(value)))
        return internal(errnoText("set " + dir + "/" + file));
      return {};
    };
    if (limits.pids_max > 0 && exists(dir + "/pids.max")) {
      if (auto st = set("pids.max", limits.pids_max); !st) return undo(st.error());
    }
    if (limits.memory_max_bytes > 0) {
      if (exists(dir + "/memory.max")) {
        if (auto st = set("memory.max", limits.memory_max_bytes); !st) return undo(st.error());
        if (exists(dir + "/memory.swap.max")) (void)writeSmall(dir + "/memory.swap.max", "0");
      } else if (exists(dir + "/memory.limit_in_bytes")) {
        if (auto st = set("memory.limit_in_bytes", limits.memory_max_bytes); !st)
          return undo(st.error());
        if (exists(dir + "/memory.memsw.limit_in_bytes"))
          (void)set("memory.memsw.limit_in_bytes", limits.memory_max_bytes);
      }
    }
  }
  return job;
}

void Containment::removeGroupIfEmpty() const {
  for (const auto& d : group_dirs_) ::rmdir(d.c_str());
}

}  // namespace hwl::jobs
