// A partition: the agent frozen with SIGSTOP for 40 s while its jobs end. The server records
// one outage (unreachable, then reachable), shows the jobs as host_unreachable meanwhile, and
// afterwards holds every outbox entry exactly once.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <thread>

#include "fleet_support.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(FleetPartition, AgentStoppedFortySecondsLosesNothing) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;

  // One job ends by itself while the agent is frozen; the other is killed meanwhile.
  const std::string batch =
      submitJobOk(srv, {{"name", "batch"},
                        {"command", bj::array{"/bin/sh", "-c", "echo started; sleep 10; exit 3"}},
                        {"host", "h100"}});
  const uint16_t port = freeLoopbackPort();
  const std::string web = submitJobOk(
      srv,
      {{"name", "web"},
       {"command", bj::array{bj::string(testHttpServerBin()), bj::string(std::to_string(port))}},
       {"host", "h100"},
       {"port", port},
       {"ready_path", "/"}});
  ASSERT_EQ(str(waitForJobState(srv, batch, "running", 20s).at("state")), "running");
  ASSERT_EQ(str(waitForJobState(srv, web, "ready", 20s).at("state")), "ready");
  auto web_on_agent = a.call(srv, "GET", "/v1/jobs/" + web);
  ASSERT_EQ(web_on_agent.status, 200) << web_on_agent.body;
  const auto web_pid = static_cast<pid_t>(i64(web_on_agent.obj().at("pid")));
  ASSERT_TRUE(processAlive(web_pid));
  const int64_t before = srv.eventCount();

  a.signal(SIGSTOP);
  const auto stopped_at = Clock::now();
  // Three missed scrapes (1 s timeout each) make the host unreachable.
  ASSERT_TRUE(
      eventually([&] { return str(host(srv, a.hostId()).at("state")) == "unreachable"; }, 20s));
  auto j = job(srv, batch);
  EXPECT_EQ(str(j.at("state")), "host_unreachable") << bj::serialize(j);
  EXPECT_EQ(str(j.at("last_known_state")), "running") << bj::serialize(j);
  j = job(srv, web);
  EXPECT_EQ(str(j.at("state")), "host_unreachable") << bj::serialize(j);
  EXPECT_EQ(str(j.at("last_known_state")), "ready") << bj::serialize(j);
  auto listed = getOk(srv, "/v1/jobs").at("jobs").as_array();
  for (const auto& l : listed)
    EXPECT_EQ(str(l.at("state")), "host_unreachable") << bj::serialize(l);
  ASSERT_EQ(::kill(web_pid, SIGKILL), 0);
  std::this_thread::sleep_until(stopped_at + 40s);
  // Still one outage, and the jobs are still unknown.
  EXPECT_EQ(str(job(srv, batch).at("state")), "host_unreachable");
  a.signal(SIGCONT);

  j = waitForJobState(srv, batch, "exited", 30s);
  EXPECT_EQ(str(j.at("state")), "exited") << bj::serialize(j);
  EXPECT_EQ(j.at("exit_code"), bj::value(3)) << bj::serialize(j);
  j = waitForJobState(srv, web, "exited", 30s);
  EXPECT_EQ(str(j.at("state")), "exited") << bj::serialize(j);
  EXPECT_EQ(j.at("signal"), bj::value(SIGKILL)) << bj::serialize(j);
  EXPECT_EQ(str(host(srv, a.hostId()).at("state")), "reachable");

  // Exactly one outage for this partition, in order.
  std::vector<std::string> outage;
  for (const auto& e : streamEvents(srv, "host/" + a.hostId()))
    if (i64(e.at("seq")) > before) outage.push_back(str(e.at("type")));
  EXPECT_EQ(outage, (std::vector<std::string>{"host.unreachable", "host.reachable"}));

  // Every outbox entry exactly once.
  auto outbox = a.outbox(srv);
  std::map<std::string, std::string> want;
  for (const auto& e : outbox) want[str(e.at("id"))] = str(e.at("type"));
  std::map<std::string, int> seen;
  for (const auto& e : srv.allEvents()) {
    std::string id = str(e.at("id"));
    if (id.rfind(a.hostId() + ":", 0) != 0) continue;
    ++seen[id];
    EXPECT_EQ(want.count(id), 1u) << "not in the outbox: " << id;
    EXPECT_EQ(str(e.at("type")), want[id]) << id;
  }
  EXPECT_EQ(seen.size(), want.size());
  for (const auto& [id, type] : want) EXPECT_EQ(seen[id], 1) << id << " " << type;
  EXPECT_EQ(typesOf(streamEvents(srv, "job/" + batch)),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.started", "job.exited"}));
  EXPECT_EQ(typesOf(streamEvents(srv, "job/" + web)),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.started", "job.ready",
                                      "job.exited"}));
}

// Calls the server makes to a frozen agent on an operator's behalf give up after the server's
// agent timeout (10 s) with an error, instead of holding the operator's request.
TEST(FleetPartition, CallsToAFrozenAgentFailWithinTheirTimeout) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const std::string id = submitJobOk(
      srv, {{"name", "batch"}, {"command", bj::array{"/bin/sleep", "60"}}, {"host", "h100"}});
  ASSERT_EQ(str(waitForJobState(srv, id, "running", 20s).at("state")), "running");

  a.signal(SIGSTOP);
  for (const std::string method : {"GET", "DELETE"}) {
    SCOPED_TRACE(method);
    const auto t0 = Clock::now();
    auto h = srv.request(method, method == "GET" ? "/v1/jobs/" + id + "/logs" : "/v1/jobs/" + id,
                         srv.adminToken(), {}, {"--max-time", "20"});
    const auto took = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t0);
    EXPECT_EQ(h.status, 503) << "curl exit " << h.curl_exit << " after " << took.count()
                             << " s: " << h.body << h.err;
    EXPECT_LT(took, 15s);
  }
  a.signal(SIGCONT);
}

}  // namespace
}  // namespace hwl::itest::fleet
