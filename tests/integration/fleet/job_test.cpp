// Jobs through the server: placed, dispatched to the agent, ready, logs, cancelled; and a job
// that outlives a SIGKILLed agent and is still under the server's control afterwards.
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

bj::object webJob(const std::string& host, uint16_t port) {
  return {{"name", "web"},
          {"command", bj::array{bj::string(testHttpServerBin()), bj::string(std::to_string(port))}},
          {"gpus", 1},
          {"host", host},
          {"port", port},
          {"ready_path", "/health"}};
}

// Every outbox entry of the agent is in the ledger exactly once, as the event "<host>:<seq>" of
// the same type, and the ledger holds no other event from that agent.
void expectOutboxInLedgerOnce(const FleetServer& srv, const FleetAgent& a) {
  auto outbox = a.outbox(srv);
  ASSERT_FALSE(outbox.empty());
  std::map<std::string, std::string> want;
  for (const auto& e : outbox) want[str(e.at("id"))] = str(e.at("type"));
  ASSERT_TRUE(eventually(
      [&] {
        size_t found = 0;
        for (const auto& e : srv.allEvents())
          if (str(e.at("id")).rfind(a.hostId() + ":", 0) == 0) ++found;
        return found >= want.size();
      },
      20s));
  std::map<std::string, int> seen;
  for (const auto& e : srv.allEvents()) {
    std::string id = str(e.at("id"));
    if (id.rfind(a.hostId() + ":", 0) != 0) continue;
    ++seen[id];
    auto it = want.find(id);
    if (it == want.end()) {
      ADD_FAILURE() << "ledger event " << id << " (" << str(e.at("type"))
                    << ") is not in the agent's outbox";
      continue;
    }
    EXPECT_EQ(str(e.at("type")), it->second) << id;
    EXPECT_EQ(str(e.at("actor")), "host:" + a.hostId()) << id;
  }
  for (const auto& [id, type] : want) EXPECT_EQ(seen[id], 1) << id << " " << type;
}

TEST(FleetJobs, ReadyThenCancelledThroughTheServer) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const std::string gpu = str(host(srv, a.hostId()).at("gpus").as_array()[0].at("uuid"));

  const uint16_t port = freeLoopbackPort();
  auto res = submitJob(srv, webJob("h100", port));
  ASSERT_EQ(res.status, 201) << res.body;
  auto placed = res.obj();
  const std::string id = str(placed.at("id"));
  EXPECT_EQ(str(placed.at("host")), a.hostId());
  EXPECT_EQ(str(placed.at("host_name")), "h100");
  EXPECT_EQ(str(placed.at("state")), "dispatched");
  EXPECT_EQ(bj::serialize(placed.at("gpus")), bj::serialize(bj::array{bj::string(gpu)}));

  auto j = waitForJobState(srv, id, "ready", 30s);
  ASSERT_EQ(str(j.at("state")), "ready") << bj::serialize(j);
  EXPECT_EQ(str(j.at("host")), a.hostId());
  EXPECT_TRUE(j.at("started_ms").is_int64());
  EXPECT_TRUE(j.at("ready_ms").is_int64());
  EXPECT_TRUE(j.at("ended_ms").is_null());
  EXPECT_TRUE(portAccepts(port));

  // The job's output, fetched from its agent by the server: it runs on the placed GPU.
  auto logs = srv.get("/v1/jobs/" + id + "/logs?tail=50");
  ASSERT_EQ(logs.status, 200) << logs.body;
  EXPECT_NE(logs.body.find("CUDA_VISIBLE_DEVICES=" + gpu), std::string::npos) << logs.body;
  EXPECT_NE(logs.body.find("listening"), std::string::npos) << logs.body;
  auto tail1 = srv.get("/v1/jobs/" + id + "/logs?tail=1");
  ASSERT_EQ(tail1.status, 200);
  EXPECT_EQ(tail1.body, "listening\n");

  auto del = srv.request("DELETE", "/v1/jobs/" + id, srv.adminToken());
  ASSERT_EQ(del.status, 202) << del.body;
  j = waitForJobState(srv, id, "cancelled", 30s);
  ASSERT_EQ(str(j.at("state")), "cancelled") << bj::serialize(j);
  EXPECT_TRUE(j.at("ended_ms").is_int64());
  EXPECT_TRUE(eventually([&] { return !portAccepts(port); }, 10s)) << "the job still serves";

  // The job's history, in order, each transition once.
  auto evs = streamEvents(srv, "job/" + id);
  EXPECT_EQ(typesOf(evs), (std::vector<std::string>{"job.submitted", "job.placed", "job.started",
                                                    "job.ready", "job.cancelled"}));
  for (size_t i = 2; i < evs.size(); ++i) {
    const auto& d = evs[i].at("data").as_object();
    EXPECT_EQ(str(d.at("host_id")), a.hostId());
    EXPECT_EQ(str(evs[i].at("actor")), "host:" + a.hostId());
  }
  // A cancelled job cannot be cancelled again.
  EXPECT_EQ(srv.request("DELETE", "/v1/jobs/" + id, srv.adminToken()).status, 409);
  expectOutboxInLedgerOnce(srv, a);
}

TEST(FleetJobs, JobSurvivesAgentSigkillAndIsCancelledAfterRestart) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;

  const uint16_t port = freeLoopbackPort();
  const std::string id = submitJobOk(srv, webJob(a.hostId(), port));
  ASSERT_EQ(str(waitForJobState(srv, id, "ready", 30s).at("state")), "ready");

  a.crash();
  // The job does not depend on its agent.
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(portAccepts(port));
  a.start();
  auto aj = a.call(srv, "GET", "/v1/jobs/" + id);
  ASSERT_EQ(aj.status, 200) << aj.body;
  EXPECT_EQ(str(aj.obj().at("state")), "ready") << aj.body;
  EXPECT_TRUE(aj.obj().at("adopted").as_bool()) << aj.body;
  // Give the server time to drain whatever the new agent recorded: the job stays ready.
  std::this_thread::sleep_for(2s);
  auto j = waitForJobState(srv, id, "ready", 30s);
  ASSERT_EQ(str(j.at("state")), "ready") << bj::serialize(j);

  auto del = srv.request("DELETE", "/v1/jobs/" + id, srv.adminToken());
  ASSERT_EQ(del.status, 202) << del.body;
  j = waitForJobState(srv, id, "cancelled", 30s);
  ASSERT_EQ(str(j.at("state")), "cancelled") << bj::serialize(j);
  EXPECT_TRUE(eventually([&] { return !portAccepts(port); }, 10s)) << "the job still serves";

  EXPECT_EQ(typesOf(streamEvents(srv, "job/" + id)),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.started", "job.ready",
                                      "job.cancelled"}));
  expectOutboxInLedgerOnce(srv, a);
}

}  // namespace
}  // namespace hwl::itest::fleet
