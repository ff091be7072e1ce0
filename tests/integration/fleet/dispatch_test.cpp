// The dispatch seam under contention: a slow agent delays only the submissions that go to it, two
// placements racing for the last GPUs cannot both win (the ledger's optimistic concurrency
// decides), and a dispatch that fails ends the job as dispatch_failed with its GPUs free again.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "fleet_support.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bj::object sleepJob(const std::string& host, int gpus) {
  return {{"command", bj::array{"/bin/sleep", "60"}}, {"gpus", gpus}, {"host", host}};
}

int gpuCount(const LedgerServer& srv, const std::string& host_id) {
  return static_cast<int>(host(srv, host_id).at("gpus").as_array().size());
}

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct TwoHostFleet {
  TwoHostFleet() {
    srv.launch();
    for (auto* a : {&slow, &fast}) {
      a->enroll(srv);
      a->start();
    }
    waitForFleet(srv, {&slow, &fast});
  }
  FleetDir root;
  FleetServer srv{root.path()};
  FleetAgent slow{root.path(), "slow",
                  "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()};
  FleetAgent fast{root.path(), "fast",
                  "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()};
};

TEST(FleetDispatch, ASlowAgentDoesNotDelaySubmissionsToOtherHosts) {
  TwoHostFleet fleet;
  auto& srv = fleet.srv;
  // The slow host answers its dispatch only after 8 s: stopped now, continued then.
  fleet.slow.signal(SIGSTOP);
  const auto t0 = Clock::now();
  std::atomic<int> slow_status{0};
  std::atomic<double> slow_seconds{0};
  std::thread slow_submit([&] {
    auto r = submitJob(srv, sleepJob(fleet.slow.hostId(), 1));
    slow_status = r.status;
    slow_seconds = secondsSince(t0);
  });
  std::this_thread::sleep_for(500ms);
  // Meanwhile, submissions to the other host are answered at once, one after another.
  double worst = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t = Clock::now();
    auto r = submitJob(srv, {{"command", bj::array{"/bin/true"}}, {"host", fleet.fast.hostId()}});
    worst = std::max(worst, secondsSince(t));
    EXPECT_EQ(r.status, 201) << r.body;
  }
  EXPECT_LT(worst, 3.0) << "a submission to the fast host waited behind the slow one";
  EXPECT_LT(secondsSince(t0), 6.0) << "the fast host's submissions ended after the slow dispatch";
  std::this_thread::sleep_until(t0 + 8s);
  fleet.slow.signal(SIGCONT);
  slow_submit.join();
  EXPECT_EQ(slow_status.load(), 201) << "the slow agent's late answer was not taken";
  EXPECT_GE(slow_seconds.load(), 7.5);
}

TEST(FleetDispatch, TwoSubmissionsRacingForTheLastGpusGetOnePlacementEach) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  const std::string host_id = fleet.agent.hostId();
  const int gpus = gpuCount(srv, host_id);
  ASSERT_GE(gpus, 1);
  // More submissions than GPUs, all at once.
  const int n = gpus + 4;
  std::vector<Http> answers(n);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < n) std::this_thread::yield();
      answers[i] = submitJob(srv, sleepJob(host_id, 1));
    });
  for (auto& t : threads) t.join();
  int placed = 0, refused = 0;
  std::set<std::string> taken;
  for (const auto& a : answers) {
    if (a.status == 201) {
      ++placed;
      auto b = bj::parse(a.body).as_object();
      for (const auto& g : b.at("gpus").as_array())
        EXPECT_TRUE(taken.insert(str(g)).second) << "GPU " << str(g) << " placed twice";
    } else {
      EXPECT_EQ(a.status, 409) << a.body;
      EXPECT_NE(a.body.find("no_placement"), std::string::npos) << a.body;
      ++refused;
    }
  }
  EXPECT_EQ(placed, gpus);
  EXPECT_EQ(refused, n - gpus);
  // Each placement reserved its GPU on the host's gpus/ stream, versions 1..gpus, once each.
  auto reserved = streamEvents(srv, "gpus/" + host_id);
  ASSERT_EQ(static_cast<int>(reserved.size()), gpus);
  for (int i = 0; i < gpus; ++i) EXPECT_EQ(i64(reserved[i].at("version")), i + 1);
}

TEST(FleetDispatch, AFailedDispatchEndsTheJobAndFreesItsGpus) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const int gpus = gpuCount(srv, a.hostId());
  // An agent that is gone (killed just now, before the collector counts it unreachable): the
  // dispatch finds no one to take the job.
  a.crash();
  auto r = submitJob(srv, sleepJob(a.hostId(), gpus));
  ASSERT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("dispatch_failed"), std::string::npos) << r.body;
  const std::string id = str(typedEvents(srv, "job.placed").back().at("data").at("job_id"));
  auto j = job(srv, id);
  EXPECT_EQ(str(j.at("state")), "dispatch_failed") << bj::serialize(j);
  EXPECT_NE(str(j.at("reason")).find("dispatch failed"), std::string::npos);
  EXPECT_EQ(typesOf(streamEvents(srv, "job/" + id)),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.dispatch_failed"}));
  // Its GPUs are free: once the host answers again, a job asking for all of them is placed.
  a.start();
  waitForFleet(srv, {&a});
  ASSERT_TRUE(
      eventually([&] { return submitJob(srv, sleepJob(a.hostId(), gpus)).status == 201; }, 30s));
}

}  // namespace
}  // namespace hwl::itest::fleet
