// The job supervisor (design in supervisor.hpp).
#include "hwl/jobs/supervisor.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>

#include "hwl/files.hpp"
#include "hwl/jobs/job_monitor.hpp"
#include "hwl/jobs/proc.hpp"
#include "hwl/jobs/ready_probe.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::jobs {
namespace {

using files::UniqueFd;

constexpr std::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct JobUser {
  bool change_ids = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string name;
  std::string home;
};

Result<JobUser> resolveJobUser(const std::string& name) {
  JobUser user;
  if (name.empty()) {
    if (::geteuid() == 0) {
      return permissionDenied("jobs refused: the agent runs as root and no job_user is configured");
    }
    user.uid = ::geteuid();
    user.gid = ::getegid();
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(user.uid, &pw, buf.data(), buf.size(), &found) == 0 && found) {
      user.name = pw.pw_name;
      user.home = pw.pw_dir;
    }
    return user;
  }
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    return permissionDenied("jobs refused: job_user " + name + " does not exist");
  }
  if (pw.pw_uid == 0) return permissionDenied("jobs refused: job_user " + name + " is root");
  user.uid = pw.pw_uid;
  user.gid = pw.pw_gid;
  user.name = pw.pw_name;
  user.home = pw.pw_dir;
  user.change_ids = user.uid != ::geteuid() || user.gid != ::getegid();
  int n = 64;
  user.groups.resize(static_cast<size_t>(n));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, user.groups.data(), &n) < 0) {
    user.groups.resize(static_cast<size_t>(n));
    ::getgrouplist(pw.pw_name, pw.pw_gid, user.groups.data(), &n);
  }
  user.groups.resize(static_cast<size_t>(std::max(n, 0)));
  return user;
}

bool isExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::optional<std::string> searchPath(const std::string& name, std::string_view path_var) {
  size_t pos = 0;
  while (pos <= path_var.size()) {
    const size_t colon = path_var.find(':', pos);
    const std::string_view dir = path_var.substr(
        pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos);
    if (!dir.empty()) {
      std::string candidate = std::string(dir) + "/" + name;
      if (isExecutableFile(candidate)) return candidate;
    }
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  return std::nullopt;
}

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string joinGpus(const std::vector<std::string>& gpus) {
  std::string out;
  for (const auto& g : gpus) {
    if (!out.empty()) out += ",";
    out += g;
  }
  return out;
}

// Everything the child needs, prepared before fork() so the child only makes system calls.
struct SpawnPlan {
  std::string exe;
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  JobUser user;
  std::vector<std::string> mkdirs;
  std::string cwd;
  std::vector<std::string> enter;  // cgroup.procs files the job writes itself into
};

Result<SpawnPlan> planSpawn(const JobSpec& spec, const SupervisorSettings& settings) {
  SpawnPlan plan;
  auto user = resolveJobUser(settings.job_user);
  if (!user) return user.error();
  plan.user = std::move(*user);

  std::map<std::string, std::string> env{{"PATH", std::string(kDefaultPath)}, {"LANG", "C.UTF-8"}};
  if (!plan.user.home.empty()) env["HOME"] = plan.user.home;
  if (!plan.user.name.empty()) {
    env["USER"] = plan.user.name;
    env["LOGNAME"] = plan.user.name;
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  env["CUDA_VISIBLE_DEVICES"] = joinGpus(spec.gpus);
  env["ROCR_VISIBLE_DEVICES"] = joinGpus(spec.gpus);
  env["HWLEDGER_JOB_ID"] = spec.id;
  for (const auto& [k, v] : env) plan.env_storage.push_back(k + "=" + v);

  const std::string& cmd0 = spec.command.front();
  if (cmd0.find('/') != std::string::npos) {
    plan.exe = cmd0;  // relative paths resolve against the working dir, after chdir
  } else {
    auto found = searchPath(cmd0, env["PATH"]);
    if (!found) return invalidArgument("command[0]: " + cmd0 + " not found in PATH");
    plan.exe = *found;
  }
  plan.argv_storage = spec.command;
  for (auto& a : plan.argv_storage) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  for (auto& e : plan.env_storage) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);

  plan.cwd = spec.working_dir.string();
  if (spec.create_working_dir) {
    const auto root = settings.jobs_root.lexically_normal();
    const auto rel = spec.working_dir.lexically_relative(root);
    std::filesystem::path p = root;
    for (const auto& part : rel) {
      p /= part;
      plan.mkdirs.push_back(p.string());
    }
  }
  return plan;
}

std::string_view spawnStage(int stage) {
  switch (stage) {
    case 1:
      return "setsid";
    case 2:
      return "redirect stdio";
    case 3:
      return "setgroups";
    case 4:
      return "setgid";
    case 5:
      return "setuid";
    case 6:
      return "create working_dir";
    case 7:
      return "chdir to working_dir";
    case 8:
      return "exec";
    case 9:
      return "drop capabilities";
    case 10:
      return "join the job's cgroup";
    default:
      return "start";
  }
}

}  // namespace

struct Supervisor::Job {
  JobInfo info;
  bool cancel_requested = false;
  int64_t started_steady = 0;
  int64_t term_sent_steady = 0;  // 0: SIGTERM not sent (by this supervisor)
  bool kill_sent = false;
  // A transition that could not be recorded yet (outbox full or disk error): retried first.
  struct Pending {
    JobInfo next;
    std::string event;
    boost::json::object data;
  };
  std::optional<Pending> pending;
};

Supervisor::Supervisor(SupervisorSettings settings, outbox::Outbox& outbox)
    : settings_(std::move(settings)),
      outbox_(outbox),
      clock_(settings_.clock ? settings_.clock : &SystemClock::instance()) {}

Supervisor::~Supervisor() { stop(); }

Result<std::unique_ptr<Supervisor>> Supervisor::open(SupervisorSettings settings,
                                                     outbox::Outbox& outbox) {
  if (settings.state_dir.empty()) return invalidArgument("supervisor: state_dir must be set");
  if (settings.jobs_root.empty()) settings.jobs_root = settings.state_dir / "work";
  if (settings.cgroup_group.empty()) settings.cgroup_group = cgroupGroupFor(settings.state_dir);
  auto containment = Containment::open(settings.containment, settings.cgroup_group);
  if (!containment)
    return Error{containment.error().code, "job containment: " + containment.error().message};
  std::unique_ptr<Supervisor> sup(new Supervisor(std::move(settings), outbox));
  sup->containment_ = std::move(*containment);
  if (auto st = sup->load(); !st) return st.error();
  if (auto st = sup->checkJobsRoot(); !st) return st.error();
  sup->thread_ = std::thread([s = sup.get()] { s->run(); });
  return sup;
}

std::filesystem::path Supervisor::jobDir(const std::string& id) const {
  return settings_.state_dir / "jobs" / id;
}

JobLog Supervisor::jobLog(const std::string& id) const {
  return {jobDir(id), settings_.log_max_bytes, settings_.log_keep};
}

Status Supervisor::persist(const JobInfo& info) const {
  return files::writeFileAtomic(jobDir(info.spec.id) / "job.json",
                                boost::json::serialize(info.toJson()));
}

namespace {

boost::json::object eventData(const JobInfo& info) {
  boost::json::object d = info.toJson();
  d.erase("spec");
  d.erase("create_working_dir");
  d.erase("log_base");
  d.erase("last_event_seq");
  d.erase("accepted_ms");
  d.erase("monitor_pid");
  d.erase("monitor_start_time");
  d.erase("cgroups");
  d["job_id"] = info.spec.id;
  d.erase("id");
  return d;
}

// Applies a recorded transition to a job record (replay after a crash between outbox and file).
void applyEvent(JobInfo& info, const outbox::Entry& e) {
  const auto& d = e.data;
  auto num = [&](std::string_view k) -> std::optional<int64_t> {
    const auto* v = d.if_contains(k);
    if (!v || !v->is_number()) return std::nullopt;
    boost::system::error_code ec;
    const auto n = v->to_number<int64_t>(ec);
    return ec ? std::nullopt : std::optional<int64_t>(n);
  };
  if (const auto* s = d.if_contains("state"); s && s->is_string()) {
    if (auto st = parseState(s->as_string())) info.state = *st;
  }
  if (auto v = num("pid")) info.pid = static_cast<pid_t>(*v);
  if (auto v = num("proc_start_time")) info.proc_start_time = static_cast<uint64_t>(*v);
  if (auto v = num("started_ms")) info.started_ms = *v;
  if (auto v = num("ready_ms")) info.ready_ms = *v;
  if (auto v = num("ended_ms")) info.ended_ms = *v;
  if (auto v = num("exit_code")) info.exit_code = static_cast<int32_t>(*v);
  if (auto v = num("signal")) info.signal = static_cast<int32_t>(*v);
  if (const auto* k = d.if_contains("exit_status_known"); k && k->is_bool()) {
    info.exit_status_known = k->as_bool();
  }
  if (const auto* r = d.if_contains("reason"); r && r->is_string()) {
    info.reason = std::string(r->as_string());
  }
  info.last_event_seq = e.seq;
}

}  // namespace

Status Supervisor::load() {
  std::error_code ec;
  std::filesystem::create_directories(settings_.state_dir / "jobs", ec);
  if (ec)
    return internal("create " + (settings_.state_dir / "jobs").string() + ": " + ec.message());
  std::filesystem::create_directories(settings_.jobs_root, ec);  // may exist, owned by the job user

  std::map<std::string, JobInfo> loaded;
  for (const auto& dirent : std::filesystem::directory_iterator(settings_.state_dir / "jobs", ec)) {
    const auto file = dirent.path() / "job.json";
    auto text = files::readFile(file);
    if (!text) continue;  // a directory whose record was never written: nothing was accepted
    boost::system::error_code jec;
    const auto v = boost::json::parse(*text, jec);
    if (jec) continue;
    auto info = JobInfo::fromJson(v, settings_.jobs_root);
    if (!info || info->spec.id != dirent.path().filename().string()) continue;
    loaded.emplace(info->spec.id, std::move(*info));
  }

  // Transitions recorded in the outbox but not yet in the job file.
  for (const auto& e : outbox_.read(0, SIZE_MAX)) {
    if (e.type.rfind("job.", 0) != 0) continue;
    const auto* jid = e.data.if_contains("job_id");
    if (!jid || !jid->is_string()) continue;
    auto it = loaded.find(std::string(jid->as_string()));
    if (it == loaded.end() || e.seq <= it->second.last_event_seq) continue;
    applyEvent(it->second, e);
    if (auto st = persist(it->second); !st) return st;
  }

  const int64_t now_unix = clock_->nowMs();
  const int64_t now_steady = steadyMs();
  for (auto& [id, info] : loaded) {
    auto job = std::make_unique<Job>();
    job->info = info;
    jobs_.emplace(id, std::move(job));
  }
  for (auto& [id, info] : loaded) {
    if (info.state == JobState::kStarting) {
      // The agent died between fork and job.started: a child that is still there is killed
      // with its process group, so no job runs without a record.
      bool killed = false;
      if (info.monitor_pid > 0 && sameLiveProcess(info.monitor_pid, info.monitor_start_time)) {
        killed = !jobEmpty(processesOf(info));
        signalJob(processesOf(info), SIGKILL);
        ::kill(info.monitor_pid, SIGKILL);
      }
      if (info.pid > 0 && sameLiveProcess(info.pid, info.proc_start_time))
        killed = ::kill(-info.pid, SIGKILL) == 0 || ::kill(info.pid, SIGKILL) == 0 || killed;
      (void)endProcesses(info);
      JobInfo next = info;
      next.state = JobState::kLost;
      next.ended_ms = now_unix;
      next.exit_status_known = false;
      next.reason = killed ? "the agent stopped while starting the job; its process was killed"
                           : "the agent stopped while starting the job";
      (void)commit(id, next, proto::event::kJobLost, eventData(next));
    } else if (info.state == JobState::kRunning || info.state == JobState::kReady) {
      if (sameLiveProcess(info.pid, info.proc_start_time)) {
        JobInfo next = info;
        next.adopted = true;
        (void)persist(next);
        auto& job = *jobs_.at(id);
        job.info = next;
        job.started_steady = now_steady - (now_unix - info.started_ms);
      } else {
        (void)endProcesses(info);
        JobInfo next = info;
        next.state = JobState::kLost;
        next.ended_ms = now_unix;
        next.exit_status_known = false;
        next.reason = "the job's process ended while no agent was running";
        (void)commit(id, next, proto::event::kJobLost, eventData(next));
      }
    }
  }
  return {};
}

Status Supervisor::commit(const std::string& id, JobInfo next, std::string_view event,
                          boost::json::object data) {
  data["job_id"] = id;
  data["state"] = stateName(next.state);
  auto entry = outbox_.append(event, data);
  if (!entry) {
    std::lock_guard lock(mu_);
    jobs_.at(id)->pending = Job::Pending{std::move(next), std::string(event), std::move(data)};
    return entry.error();
  }
  next.last_event_seq = entry->seq;
  (void)persist(next);  // on failure the next start replays the outbox entry
  std::lock_guard lock(mu_);
  auto& job = *jobs_.at(id);
  job.info = std::move(next);
  job.pending.reset();
  return {};
}

Status Supervisor::checkMayRun() const {
  auto user = resolveJobUser(settings_.job_user);
  if (!user) return user.error();
  return {};
}

Status Supervisor::checkJobsRoot() const {
  auto user = resolveJobUser(settings_.job_user);
  if (!user) return {};  // jobs are refused anyway, with that reason
  const std::string root = settings_.jobs_root.string();
  const std::string probe =
      (settings_.jobs_root / (".hwledger-access-" + std::to_string(::getpid()))).string();
  const JobUser& u = *user;
  // As the job does: the job user's ids and groups, no capabilities, then create a directory.
  const pid_t child = ::fork();
  if (child < 0) return internal(files::errnoMessage("fork"));
  if (child == 0) {
    if (u.change_ids) {
      if (::setgroups(u.groups.size(), u.groups.data()) != 0 || ::setgid(u.gid) != 0 ||
          ::setuid(u.uid) != 0)
        ::_exit(200);
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[2] = {};
    if (::syscall(SYS_capset, &header, caps) != 0) ::_exit(201);
    if (::mkdir(probe.c_str(), 0700) != 0) ::_exit(errno > 0 && errno < 200 ? errno : 199);
    ::rmdir(probe.c_str());
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  const std::string who = (u.name.empty() ? std::string("uid ") + std::to_string(u.uid)
                                          : u.name + " (uid " + std::to_string(u.uid) + ")");
  const std::string why = code == 200              ? "cannot switch to that user"
                          : code > 0 && code < 199 ? std::strerror(code)
                                                   : "the check failed";
  return permissionDenied("jobs root " + root + " is not usable by the job user " + who +
                          ": cannot create a directory in it: " + why +
                          " (every directory above it must be searchable by that user, and the "
                          "jobs root writable)");
}

Result<JobInfo> Supervisor::submit(const JobSpec& spec) {
  std::lock_guard lock(mu_);
  if (auto it = jobs_.find(spec.id); it != jobs_.end()) {
    if (it->second->info.spec == spec) return it->second->info;
    return conflict("id: job " + spec.id + " exists with a different spec");
  }
  if (stopping_) return unavailable("the job supervisor is stopping");
  if (auto st = checkMayRun(); !st) return st.error();
  if (spec.pids_max > 0 && !containment_.enforcesPids()) {
    return Error{Code::kFailedPrecondition,
                 "pids_max: this host cannot enforce a pids limit (job containment: " +
                     containment_.description() + ")"};
  }
  if (spec.memory_max_bytes > 0 && !containment_.enforcesMemory()) {
    return Error{Code::kFailedPrecondition,
                 "memory_max_bytes: this host cannot enforce a memory limit (job containment: " +
                     containment_.description() + ")"};
  }
  uint64_t live = 0;
  for (const auto& [id, job] : jobs_) live += isTerminal(job->info.state) ? 0 : 1;
  const auto stats = outbox_.stats();
  if (stats.entries + settings_.outbox_headroom_per_job * (live + 1) > stats.capacity) {
    return Error{Code::kResourceExhausted, "outbox nearly full (" + std::to_string(stats.entries) +
                                               " of " + std::to_string(stats.capacity) +
                                               " entries undrained): not accepting jobs"};
  }
  JobInfo info;
  info.spec = spec;
  info.state = JobState::kAccepted;
  info.accepted_ms = clock_->nowMs();
  std::error_code ec;
  std::filesystem::create_directories(jobDir(spec.id), ec);
  if (ec) return internal("create " + jobDir(spec.id).string() + ": " + ec.message());
  if (auto st = persist(info); !st) return st.error();
  auto job = std::make_unique<Job>();
  job->info = info;
  jobs_.emplace(spec.id, std::move(job));
  cv_.notify_all();
  return info;
}

Result<JobInfo> Supervisor::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return notFound("job " + id + " not found");
  return it->second->info;
}

std::vector<JobInfo> Supervisor::list() const {
  std::lock_guard lock(mu_);
  std::vector<JobInfo> out;
  out.reserve(jobs_.size());
  for (const auto& [id, job] : jobs_) out.push_back(job->info);
  return out;
}

Supervisor::JobProcessMap Supervisor::jobProcesses() const {
  JobProcessMap out;
  for (const auto& info : list()) {
    if (isTerminal(info.state) || info.pid <= 0) continue;
    if (!sameLiveProcess(info.pid, info.proc_start_time)) continue;
    out.leaders[info.pid] = info.spec.id;
    out.pids[info.pid] = info.spec.id;
    if (info.monitor_pid > 0 || !info.cgroups.empty()) {
      for (const pid_t p : jobPids(processesOf(info))) out.pids[p] = info.spec.id;
    }
  }
  return out;
}

Result<JobInfo> Supervisor::cancel(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return notFound("job " + id + " not found");
  if (!isTerminal(it->second->info.state)) {
    it->second->cancel_requested = true;
    cv_.notify_all();
  }
  return it->second->info;
}

Result<std::string> Supervisor::logs(const std::string& id, size_t tail_lines) const {
  {
    std::lock_guard lock(mu_);
    if (!jobs_.contains(id)) return notFound("job " + id + " not found");
  }
  return jobLog(id).tail(tail_lines, settings_.log_tail_max_bytes);
}

Result<LogChunk> Supervisor::readLog(const std::string& id, uint64_t offset,
                                     size_t max_bytes) const {
  uint64_t base = 0;
  bool monitored = false;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return notFound("job " + id + " not found");
    base = it->second->info.log_base;
    monitored = it->second->info.monitor_pid > 0;
  }
  if (monitored) return jobLog(id).readFrom(offset, max_bytes);
  return jobLog(id).readFrom(base, offset, max_bytes);
}

void Supervisor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  containment_.removeGroupIfEmpty();
  std::lock_guard lock(mu_);
  pass_cv_.notify_all();
}

void Supervisor::waitForPass() {
  std::unique_lock lock(mu_);
  const uint64_t target = passes_ + 2;  // the current pass may have started before the call
  cv_.notify_all();
  pass_cv_.wait(lock, [&] { return stopping_ || passes_ >= target; });
}

void Supervisor::run() {
  for (;;) {
    pass();
    std::unique_lock lock(mu_);
    ++passes_;
    pass_cv_.notify_all();
    if (stopping_) return;
    cv_.wait_for(lock, settings_.poll_interval);
    if (stopping_) return;
  }
}

void Supervisor::pass() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, job] : jobs_) {
      if (!isTerminal(job->info.state) || job->pending) ids.push_back(id);
    }
  }
  for (const auto& id : ids) {
    // One job's trouble must not stop the supervision of the others.
    try {
      step(id);
    } catch (const std::exception& e) {
      warn("job " + id + ": " + e.what());
    } catch (...) {
      warn("job " + id + ": unknown exception");
    }
  }
}

void Supervisor::warn(const std::string& message) const {
  if (settings_.warn) {
    settings_.warn(message);
  } else {
    std::cerr << "hwledger jobs: " << message << std::endl;
  }
}

JobProcesses Supervisor::processesOf(const JobInfo& info) const {
  JobProcesses p;
  p.kind = parseContainmentKind(info.containment).value_or(ContainmentKind::kSubreaper);
  p.cgroups = info.cgroups;
  p.monitor_pid = info.monitor_pid;
  p.monitor_start_time = info.monitor_start_time;
  return p;
}

uint64_t Supervisor::endProcesses(const JobInfo& info) const {
  if (info.monitor_pid <= 0 && info.cgroups.empty()) return 0;
  const auto procs = processesOf(info);
  signalJob(procs, SIGKILL);
  const uint64_t ooms = oomKills(procs);
  if (!removeJobCgroups(procs)) warn("job " + info.spec.id + ": cannot remove its cgroups");
  containment_.removeGroupIfEmpty();
  return ooms;
}

void Supervisor::signalGroup(const JobInfo& info, int sig) const {
  if (info.monitor_pid > 0) {
    // Every process of the job, wherever it moved (cgroup, or the monitor's descendants).
    signalJob(processesOf(info), sig);
  }
  // Only while the leader is verifiably the same process, so a reused pid is never signalled.
  if (info.pid > 0 && sameLiveProcess(info.pid, info.proc_start_time)) ::kill(-info.pid, sig);
}

void Supervisor::step(const std::string& id) {
  Job snap;
  {
    std::lock_guard lock(mu_);
    const auto& job = *jobs_.at(id);
    snap.info = job.info;
    snap.cancel_requested = job.cancel_requested;
    snap.started_steady = job.started_steady;
    snap.term_sent_steady = job.term_sent_steady;
    snap.kill_sent = job.kill_sent;
    snap.pending = job.pending;
  }
  if (snap.pending) {
    if (!commit(id, snap.pending->next, snap.pending->event, snap.pending->data)) return;
    return;  // next pass continues from the recorded state
  }
  JobInfo info = snap.info;
  if (info.state == JobState::kAccepted) {
    if (snap.cancel_requested) {
      info.state = JobState::kCancelled;
      info.ended_ms = clock_->nowMs();
      info.stop_reason = StopReason::kCancel;
      info.reason = "cancelled before it started";
      (void)commit(id, info, proto::event::kJobCancelled, eventData(info));
      return;
    }
    startJob(id, std::move(info));
    return;
  }
  if (info.state != JobState::kRunning && info.state != JobState::kReady) return;

  if (info.monitor_pid > 0) {
    // The job has ended when its monitor has: it leaves only once every process is gone.
    int status = 0;
    bool ended = false;
    bool known = false;
    if (!info.adopted) {
      const pid_t r = ::waitpid(info.monitor_pid, &status, WNOHANG);
      if (r == info.monitor_pid) {
        ended = true;
        known = true;
      } else if (r < 0) {
        ended = !sameLiveProcess(info.monitor_pid, info.monitor_start_time);
      }
    } else {
      ended = !sameLiveProcess(info.monitor_pid, info.monitor_start_time);
    }
    if (ended) {
      if (sameLiveProcess(info.pid, info.proc_start_time)) {
        // The monitor was killed under a live job: its status says nothing about the job.
        known = false;
        info.reason = "the job's monitor process ended unexpectedly; the job was stopped";
        ::kill(-info.pid, SIGKILL);
      }
      const uint64_t ooms = endProcesses(info);
      finishJob(id, std::move(info), status, known, ooms);
      return;
    }
  } else {
    // Has it ended? Reap it if it is our child; otherwise /proc tells.
    const auto stat = readProcStat(info.pid);
    if (!stat || stat->start_time != info.proc_start_time) {
      finishJob(id, std::move(info), 0, false);
      return;
    }
    int status = 0;
    const pid_t r = ::waitpid(info.pid, &status, WNOHANG);
    if (r == info.pid) {
      finishJob(id, std::move(info), status, true);
      return;
    }
    if (r < 0 && (stat->state == 'Z' || stat->state == 'X')) {
      finishJob(id, std::move(info), 0, false);
      return;
    }
  }

  const int64_t now = steadyMs();
  const int64_t elapsed = now - snap.started_steady;
  StopReason reason = info.stop_reason;
  if (reason == StopReason::kNone) {
    if (snap.cancel_requested) {
      reason = StopReason::kCancel;
    } else if (info.spec.max_runtime_ms > 0 && elapsed >= info.spec.max_runtime_ms) {
      reason = StopReason::kMaxRuntime;
    } else if (info.state == JobState::kRunning && info.spec.ready_url &&
               elapsed >= info.spec.ready_timeout_ms) {
      reason = StopReason::kReadyTimeout;
    }
    if (reason != StopReason::kNone) {
      info.stop_reason = reason;
      (void)persist(info);
      std::lock_guard lock(mu_);
      jobs_.at(id)->info.stop_reason = reason;
    }
  }
  if (reason != StopReason::kNone) {
    if (snap.term_sent_steady == 0) {
      signalGroup(info, SIGTERM);
      std::lock_guard lock(mu_);
      jobs_.at(id)->term_sent_steady = now;
    } else if (!snap.kill_sent && now - snap.term_sent_steady >= info.spec.grace_ms) {
      signalGroup(info, SIGKILL);
      std::lock_guard lock(mu_);
      jobs_.at(id)->kill_sent = true;
    }
  } else if (info.state == JobState::kRunning && info.spec.ready_url &&
             probeReady(*info.spec.ready_url, settings_.ready_probe_timeout)) {
    info.state = JobState::kReady;
    info.ready_ms = clock_->nowMs();
    (void)commit(id, info, proto::event::kJobReady, eventData(info));
  }

  auto base = info.monitor_pid > 0 ? Result<uint64_t>(jobLog(id).base())
                                   : jobLog(id).rotateIfNeeded(info.log_base);
  if (base && *base != info.log_base) {
    std::lock_guard lock(mu_);
    auto& job = *jobs_.at(id);
    job.info.log_base = *base;
    (void)persist(job.info);
  }
}

void Supervisor::startJob(const std::string& id, JobInfo info) {
  info.state = JobState::kStarting;
  info.containment = std::string(containmentName(containment_.kind()));
  (void)persist(info);
  {
    std::lock_guard lock(mu_);
    jobs_.at(id)->info = info;
  }
  auto fail = [&](std::string why) {
    (void)endProcesses(info);
    info.state = JobState::kFailed;
    info.ended_ms = clock_->nowMs();
    info.reason = std::move(why);
    (void)commit(id, info, proto::event::kJobFailed, eventData(info));
  };
  auto plan = planSpawn(info.spec, settings_);
  if (!plan) return fail(plan.error().message);
  const JobLimits limits{
      .pids_max = info.spec.pids_max > 0 ? info.spec.pids_max : settings_.default_pids_max,
      .memory_max_bytes = info.spec.memory_max_bytes};
  auto procs = containment_.create(id, limits, plan->enter);
  if (!procs) return fail(procs.error().message);
  info.cgroups = procs->cgroups;
  (void)persist(info);
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd.valid()) return fail(files::errnoMessage("open /dev/null"));
  int out_fds[2];
  if (::pipe2(out_fds, O_CLOEXEC) != 0) return fail(files::errnoMessage("pipe"));
  UniqueFd out_read(out_fds[0]);
  UniqueFd out_write(out_fds[1]);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(files::errnoMessage("pipe"));
  UniqueFd report_read(pipe_fds[0]);
  UniqueFd report_write(pipe_fds[1]);

  const SpawnPlan& p = *plan;
  const int out = out_write.get();
  const int devnull = null_fd.get();
  const int errw = report_write.get();
  const long open_max = ::sysconf(_SC_OPEN_MAX);
  const int max_fd = open_max > 0 && open_max < (1 << 20) ? static_cast<int>(open_max) : (1 << 20);
  // The job's own process, a child of the monitor: async-signal-safe calls only.
  const std::function<void()> start_job = [&p, out, devnull, errw, max_fd] {
    auto die = [errw](int stage) {
      const MonitorReport report{kReportStage, stage, errno};
      (void)!::write(errw, &report, sizeof report);
      ::_exit(127);
    };
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
    if (::setsid() < 0) die(1);
    // Into the job's cgroups before anything else, so every later process is born there.
    for (const auto& procs_file : p.enter) {
      const int fd = ::open(procs_file.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) die(10);
      if (::write(fd, "0", 1) != 1) die(10);
      ::close(fd);
    }
    if (::dup2(devnull, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) die(2);
    if (p.user.change_ids) {
      if (::setgroups(p.user.groups.size(), p.user.groups.data()) != 0) die(3);
      if (::setgid(p.user.gid) != 0) die(4);
      if (::setuid(p.user.uid) != 0) die(5);
    }
    // An agent that is not root holds CAP_SETUID/CAP_SETGID/CAP_KILL (ambient, under systemd);
    // setuid() between two non-root users keeps them, so drop every capability explicitly:
    // the job must not be able to become another user or signal other users' processes.
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    {
      __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct caps[2] = {};
      if (::syscall(SYS_capset, &header, caps) != 0) die(9);
    }
    for (const auto& dir : p.mkdirs) {
      if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) die(6);
    }
    if (::chdir(p.cwd.c_str()) != 0) die(7);
    // Nothing of the agent's (sockets, the journal) may leak into the job.
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    ::execve(p.exe.c_str(), p.argv.data(), p.envp.data());
    die(8);
  };
  MonitorPlan mp;
  mp.out_read = out_read.get();
  mp.out_write = out;
  mp.report = errw;
  mp.devnull = devnull;
  mp.log_dir = jobDir(id).string();
  mp.log_max_bytes = settings_.log_max_bytes;
  mp.log_keep = settings_.log_keep;
  mp.processes = *procs;

  const pid_t monitor = ::fork();
  if (monitor < 0) return fail(files::errnoMessage("fork"));
  if (monitor == 0) runMonitor(mp, start_job);
  report_write.reset();
  out_write.reset();
  out_read.reset();
  const auto mstat = readProcStat(monitor);
  // The monitor is on disk before anything else can go wrong, so a restarted agent finds it.
  info.monitor_pid = monitor;
  info.monitor_start_time = mstat ? mstat->start_time : 0;
  (void)persist(info);
  {
    std::lock_guard lock(mu_);
    jobs_.at(id)->info = info;
  }
  // Reports until the job execs (close-on-exec ends the pipe): its pid, or the stage that failed.
  pid_t pid = 0;
  std::optional<MonitorReport> failed;
  char buf[sizeof(MonitorReport) * 4];
  size_t have = 0;
  for (;;) {
    const ssize_t n = ::read(report_read.get(), buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += static_cast<size_t>(n);
    while (have >= sizeof(MonitorReport)) {
      MonitorReport r;
      std::memcpy(&r, buf, sizeof r);
      std::memmove(buf, buf + sizeof r, have - sizeof r);
      have -= sizeof r;
      if (r.kind == kReportPid) pid = r.a;
      if (r.kind == kReportStage) failed = r;
    }
  }
  if (failed || pid <= 0) {
    int status = 0;
    while (::waitpid(monitor, &status, 0) < 0 && errno == EINTR) {
    }
    if (!failed) return fail("start: the job's monitor could not fork");
    errno = failed->b;
    return fail(std::string(spawnStage(failed->a)) + ": " + std::strerror(failed->b));
  }
  const auto start = readProcStat(pid);
  info.state = JobState::kRunning;
  info.pid = pid;
  info.proc_start_time = start ? start->start_time : 0;
  info.started_ms = clock_->nowMs();
  {
    std::lock_guard lock(mu_);
    jobs_.at(id)->started_steady = steadyMs();
  }
  auto data = eventData(info);
  data["spec"] = info.spec.toJson();
  (void)commit(id, info, proto::event::kJobStarted, std::move(data));
}

void Supervisor::finishJob(const std::string& id, JobInfo info, int wait_status, bool status_known,
                           uint64_t oom_kills) {
  info.ended_ms = clock_->nowMs();
  info.exit_status_known = status_known;
  if (status_known) {
    if (WIFEXITED(wait_status)) info.exit_code = WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) info.signal = WTERMSIG(wait_status);
    // Whatever the leader left behind in its group goes with it. Safe: the group id cannot be
    // reused while members remain, and we reaped the leader only now. (A job with a monitor has
    // no process left by now; the monitor saw to that.)
    if (info.monitor_pid <= 0) ::kill(-info.pid, SIGKILL);
  }
  if (info.monitor_pid > 0) info.log_base = jobLog(id).base();
  std::string event;
  switch (info.stop_reason) {
    case StopReason::kCancel:
      info.state = JobState::kCancelled;
      event = proto::event::kJobCancelled;
      break;
    case StopReason::kReadyTimeout:
      info.state = JobState::kFailed;
      info.reason = "ready_url did not answer 2xx within ready_timeout_s";
      event = proto::event::kJobFailed;
      break;
    case StopReason::kMaxRuntime:
      info.state = JobState::kFailed;
      info.reason = "max_runtime_s exceeded";
      event = proto::event::kJobFailed;
      break;
    case StopReason::kNone:
      if (oom_kills > 0) {
        info.state = JobState::kFailed;
        info.reason = "memory_max_bytes exceeded: the kernel's OOM killer ended the job (limit " +
                      std::to_string(info.spec.memory_max_bytes) + " bytes)";
        event = proto::event::kJobFailed;
        break;
      }
      info.state = JobState::kExited;
      event = proto::event::kJobExited;
      if (!status_known && info.reason.empty()) {
        info.reason = "re-adopted after an agent restart: exit status unknown";
      }
      break;
  }
  auto data = eventData(info);
  if (info.state != JobState::kCancelled) {
    auto tail = jobLog(id).tail(settings_.exit_log_tail_lines, settings_.exit_log_tail_bytes);
    std::string text = tail ? std::move(*tail) : std::string();
    // Cut at a character boundary: never start inside a UTF-8 sequence.
    size_t skip = 0;
    while (skip < text.size() && skip < 4 &&
           (static_cast<unsigned char>(text[skip]) & 0xC0) == 0x80)
      ++skip;
    data["log_tail"] = text.substr(skip);
  }
  (void)commit(id, info, event, std::move(data));
}

}  // namespace hwl::jobs
