// A 60 s network partition between the real server and a real agent, each in its own network
// namespace: the agent's veth end taken down, or (half-open) every packet dropped by nftables
// inside the agent's namespace. While cut off, jobs become ready, exit and are killed; the server
// notices the outage within its scrape timeout × the documented misses, keeps trying without
// hanging on the dead connection, and after the heal the ledger holds every outbox entry of the
// agent exactly once, each job's events in order, and the same job states as the agent.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "fleet_support.hpp"
#include "netns_support.hpp"

namespace hwl::itest::netns {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;
using fleet::i64;
using fleet::str;
using fleet::typesOf;
using Clock = std::chrono::steady_clock;

// Detection bound: each missed scrape costs at most one scrape timeout; between two scrapes the
// collector waits up to one outbox period, and the first request after the cut may already be
// under way. 2 s covers those gaps and the ledger append with room to spare on a loaded machine.
constexpr int64_t kDetectionBoundMs = int64_t{kScrapeTimeoutMs} * kMissThreshold + 2000;

int64_t headSeq(const NsServer& srv) { return i64(srv.getOk("/v1/health").at("events")); }

// time_ms of the first `type` event of the host's stream after `after`, or -1.
int64_t eventTime(const NsServer& srv, const std::string& host_id, const std::string& type,
                  int64_t after) {
  for (const auto& e : srv.allEvents("&stream=host/" + host_id))
    if (i64(e.at("seq")) > after && str(e.at("type")) == type) return i64(e.at("time_ms"));
  return -1;
}

int64_t requestsFailed(const NsServer& srv) {
  return i64(srv.getOk("/v1/collector").at("requests_failed"));
}

// The whole scenario for one way of cutting; the caller has checked that namespaces work.
void sixtySecondCut(Cut how) {
  NetnsPair net;
  fleet::FleetDir root;
  NsServer srv(net, root.path());
  NsAgent agent(net, root.path());
  srv.launch();
  agent.enroll(srv);
  agent.start();
  waitForFleet(srv, agent, 60s);
  // The agent is known by its veth address, which exists only inside the namespaces.
  EXPECT_EQ(str(hostView(srv, agent.hostId()).at("address")),
            std::string(kAgentIp) + ":" + std::to_string(kAgentPort));

  // Three jobs, all running before the cut: `batch` exits by itself during it, `web` becomes
  // ready during it and is then killed, `long` outlives it and is cancelled after the heal.
  const std::string batch =
      submitJob(srv, {{"name", "batch"},
                      {"command", bj::array{"/bin/sh", "-c", "echo started; sleep 15; exit 3"}},
                      {"host", "h100"}});
  const uint16_t web_port = 18080;
  const std::string web_cmd =
      "sleep 10; exec " + fleet::testHttpServerBin() + " " + std::to_string(web_port);
  const std::string web =
      submitJob(srv, {{"name", "web"},
                      {"command", bj::array{"/bin/sh", "-c", bj::string(web_cmd)}},
                      {"host", "h100"},
                      {"port", web_port},
                      {"ready_path", "/"}});
  const std::string lng = submitJob(
      srv, {{"name", "long"}, {"command", bj::array{"/bin/sleep", "600"}}, {"host", "h100"}});
  for (const auto& id : {batch, web, lng})
    ASSERT_EQ(str(waitForJobState(srv, id, "running", 20s).at("state")), "running") << id;
  auto web_on_agent = agent.call(srv, "GET", "/v1/jobs/" + web);
  ASSERT_EQ(web_on_agent.status, 200) << web_on_agent.body << web_on_agent.err;
  const auto web_pid = static_cast<pid_t>(i64(web_on_agent.obj().at("pid")));
  ASSERT_TRUE(fleet::processAlive(web_pid));
  // The collector holds a kept-alive connection: the drop rules make exactly that half-open.
  ASSERT_TRUE(fleet::eventually(
      [&] { return hostView(srv, agent.hostId()).at("connected") == bj::value(true); }, 5s));
  const int64_t before = headSeq(srv);

  const int64_t cut_ms = wallMs();
  const auto cut_at = Clock::now();
  net.cut(how);

  ASSERT_TRUE(waitForHostState(srv, agent.hostId(), "unreachable", 20s)) << srv.logs();
  const int64_t detected_ms = eventTime(srv, agent.hostId(), "host.unreachable", before);
  ASSERT_GT(detected_ms, 0);
  const int64_t detection = detected_ms - cut_ms;
  std::cout << "[ netns    ] " << cutName(how) << ": host.unreachable " << detection
            << " ms after the cut (bound " << kDetectionBoundMs << " ms)" << std::endl;
  ::testing::Test::RecordProperty("detection_ms", static_cast<int>(detection));
  EXPECT_LE(detection, kDetectionBoundMs);
  for (const auto& id : {batch, web, lng}) {
    auto j = jobView(srv, id);
    EXPECT_EQ(str(j.at("state")), "host_unreachable") << bj::serialize(j);
  }
  const int64_t failed_at_detection = requestsFailed(srv);

  // While cut off, the jobs change state on the agent.
  ASSERT_TRUE(fleet::eventually(
      [&] {
        auto j = agent.jobOnDisk(web);
        return j && str(j->at("state")) == "ready";
      },
      25s));
  std::this_thread::sleep_until(cut_at + 30s);
  ASSERT_EQ(::kill(web_pid, SIGKILL), 0);
  std::this_thread::sleep_until(cut_at + 60s);
  for (const auto& [id, state] : std::vector<std::pair<std::string, std::string>>{
           {batch, "exited"}, {web, "exited"}, {lng, "running"}}) {
    auto j = agent.jobOnDisk(id);
    ASSERT_TRUE(j) << id;
    EXPECT_EQ(str(j->at("state")), state) << bj::serialize(*j);
  }
  // The server kept calling (each call given up at its timeout), not stuck on one dead
  // connection: about one failed request per second for the rest of the minute.
  const int64_t failed_during = requestsFailed(srv) - failed_at_detection;
  std::cout << "[ netns    ] " << cutName(how) << ": " << failed_during
            << " failed scrapes after detection" << std::endl;
  EXPECT_GE(failed_during, 30);
  EXPECT_EQ(str(hostView(srv, agent.hostId()).at("state")), "unreachable");
  EXPECT_EQ(str(jobView(srv, batch).at("state")), "host_unreachable");

  const int64_t heal_ms = wallMs();
  net.heal();
  ASSERT_TRUE(waitForHostState(srv, agent.hostId(), "reachable", 20s)) << srv.logs();
  const int64_t back_ms = eventTime(srv, agent.hostId(), "host.reachable", before);
  std::cout << "[ netns    ] " << cutName(how) << ": host.reachable " << back_ms - heal_ms
            << " ms after the heal" << std::endl;

  auto j = waitForJobState(srv, batch, "exited", 20s);
  EXPECT_EQ(str(j.at("state")), "exited") << bj::serialize(j);
  EXPECT_EQ(j.at("exit_code"), bj::value(3)) << bj::serialize(j);
  j = waitForJobState(srv, web, "exited", 20s);
  EXPECT_EQ(str(j.at("state")), "exited") << bj::serialize(j);
  EXPECT_EQ(j.at("signal"), bj::value(SIGKILL)) << bj::serialize(j);
  // The link carries the server's calls again: cancel through it.
  auto del = srv.request("DELETE", "/v1/jobs/" + lng);
  EXPECT_TRUE(del.status == 200 || del.status == 202) << del.status << " " << del.body;
  j = waitForJobState(srv, lng, "cancelled", 20s);
  EXPECT_EQ(str(j.at("state")), "cancelled") << bj::serialize(j);

  // One outage, in order.
  std::vector<std::string> outage;
  for (const auto& e : srv.allEvents("&stream=host/" + agent.hostId()))
    if (i64(e.at("seq")) > before) outage.push_back(str(e.at("type")));
  EXPECT_EQ(outage, (std::vector<std::string>{"host.unreachable", "host.reachable"}));

  EXPECT_EQ(typesOf(srv.allEvents("&stream=job/" + batch)),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.started", "job.exited"}));
  EXPECT_EQ(typesOf(srv.allEvents("&stream=job/" + web)),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.started", "job.ready",
                                      "job.exited"}));
  EXPECT_EQ(
      typesOf(srv.allEvents("&stream=job/" + lng)),
      (std::vector<std::string>{"job.submitted", "job.placed", "job.started", "job.cancelled"}));

  // Every outbox entry of the agent exactly once in the ledger, nothing else under its ids, each
  // job stream in the agent's order, the server's job states the agent's.
  auto a = audit(srv, agent, {batch, web, lng});
  std::string problems;
  for (const auto& p : a.problems) problems += p + "\n";
  EXPECT_TRUE(a.clean()) << problems;
  EXPECT_GE(a.outbox_entries, 7u);  // 7 job entries, plus the inventory
  EXPECT_EQ(a.seen, a.outbox_entries);
  EXPECT_EQ(a.duplicates, 0u);
  std::cout << "[ netns    ] " << cutName(how) << ": " << a.outbox_entries << " outbox entries, "
            << a.seen << " in the ledger, " << a.duplicates << " duplicates" << std::endl;
}

TEST(NetnsPartition, LinkDownSixtySecondsLosesAndDuplicatesNothing) {
  if (auto why = unavailableReason(false); !why.empty()) GTEST_SKIP() << why;
  sixtySecondCut(Cut::kLinkDown);
}

// Half-open: the drop rules answer nothing (no RST, no ICMP), the established connection stays.
TEST(NetnsPartition, NftDropSixtySecondsLosesAndDuplicatesNothing) {
  if (auto why = unavailableReason(true); !why.empty()) GTEST_SKIP() << why;
  sixtySecondCut(Cut::kNftDrop);
}

}  // namespace
}  // namespace hwl::itest::netns
