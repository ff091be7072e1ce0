// Test driver standing in for the agent: opens an outbox and a supervisor over STATE_DIR, submits
// one job running CMD…, prints "PID START_TIME" once it runs, then idles until killed.
// Usage: hwl_test_supervisor_driver STATE_DIR JOBS_ROOT JOB_USER JOB_ID CMD...
// HWL_TEST_CONTAINMENT and HWL_TEST_CGROUP_GROUP, when set, choose the containment and cgroup
// group.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "hwl/jobs/supervisor.hpp"

int main(int argc, char** argv) {
  if (argc < 6) return 2;
  const std::filesystem::path state = argv[1];
  auto box = hwl::outbox::Outbox::open({.dir = state / "outbox", .host_id = "host-a"});
  if (!box) {
    std::fprintf(stderr, "outbox: %s\n", box.error().toString().c_str());
    return 1;
  }
  hwl::jobs::SupervisorSettings settings{.state_dir = state,
                                         .jobs_root = argv[2],
                                         .job_user = argv[3],
                                         .poll_interval = std::chrono::milliseconds(50)};
  if (const char* c = std::getenv("HWL_TEST_CONTAINMENT")) {
    settings.containment =
        hwl::jobs::parseContainmentChoice(c).value_or(hwl::jobs::ContainmentChoice::kAuto);
  }
  if (const char* g = std::getenv("HWL_TEST_CGROUP_GROUP")) settings.cgroup_group = g;
  auto sup = hwl::jobs::Supervisor::open(std::move(settings), **box);
  if (!sup) {
    std::fprintf(stderr, "%s\n", sup.error().toString().c_str());
    return 1;
  }
  boost::json::array cmd;
  for (int i = 5; i < argc; ++i) cmd.emplace_back(argv[i]);
  auto spec = hwl::proto::parseJobSpec(
      boost::json::object{{"id", argv[4]}, {"command", cmd}, {"grace_s", 0.5}}, {}, argv[2]);
  if (!spec) {
    std::fprintf(stderr, "spec: %s\n", spec.error().toString().c_str());
    return 1;
  }
  if (auto r = (*sup)->submit(*spec); !r) {
    std::fprintf(stderr, "submit: %s\n", r.error().toString().c_str());
    return 1;
  }
  for (;;) {
    auto info = (*sup)->get(argv[4]);
    if (info && info->state == hwl::jobs::JobState::kRunning) {
      std::printf("%d %llu\n", info->pid, static_cast<unsigned long long>(info->proc_start_time));
      std::fflush(stdout);
      break;
    }
    if (info && hwl::jobs::isTerminal(info->state)) {
      std::fprintf(stderr, "job ended: %s\n", info->reason.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (;;) ::pause();
}
