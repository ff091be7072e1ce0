// Bad job specs over HTTP: 400 naming the offending field, and nothing created — no job, no job
// directory, no outbox entry.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "agent_fixture.hpp"

namespace hwl::itest::agent {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

struct BadSpec {
  std::string name;
  std::string body;
  std::string field;  // the error message starts with it
};

TEST(AgentBadSpecs, AreRefusedNamingTheFieldAndChangeNothing) {
  TempDir tmp("hwl-agent-it");
  Agent agent(tmp.path(),
              {.probe = "replay:" + (telemetryDir() / "nvidia-h100-query-gpu.csv").string()});
  agent.start();
  (void)agent.telemetry();
  // The first inventory entry is written shortly after the first sample; wait for it so the
  // outbox is quiet before the bad submissions.
  ASSERT_TRUE(eventually([&] { return !agent.outbox().empty(); }, 5s));
  const auto before = agent.outbox();

  const std::vector<BadSpec> cases{
      {"missing command", R"({"id":"a"})", "command"},
      {"empty command", R"({"id":"a","command":[]})", "command"},
      {"non-string argument", R"({"id":"a","command":["sleep",5]})", "command[1]"},
      {"unknown GPU uuid",
       R"({"id":"a","command":["true"],"gpus":["GPU-ffffffff-0000-0000-0000-000000000000"]})",
       "gpus[0]"},
      {"relative working dir escaping the jobs root",
       R"({"id":"a","command":["true"],"working_dir":"../../etc"})", "working_dir"},
      {"working dir escaping after normalisation",
       R"({"id":"a","command":["true"],"working_dir":"x/../../y"})", "working_dir"},
      {"non-string env value", R"({"id":"a","command":["true"],"env":{"THREADS":8}})",
       "env.THREADS"},
      {"bad env name", R"({"id":"a","command":["true"],"env":{"A=B":"c"}})", "env.A=B"},
      {"ready_url off loopback",
       R"({"id":"a","command":["true"],"ready_url":"http://10.0.0.1:80/health"})", "ready_url"},
      {"negative grace", R"({"id":"a","command":["true"],"grace_s":-1})", "grace_s"},
      {"unknown key", R"({"id":"a","command":["true"],"priority":1})", "priority"},
      {"bad id", R"({"id":"../a","command":["true"]})", "id"},
      {"missing id", R"({"command":["true"]})", "id"},
      {"not an object", R"(["true"])", "job spec"},
  };
  for (const auto& c : cases) {
    auto h = agent.request("POST", "/v1/jobs", c.body);
    EXPECT_EQ(h.status, 400) << c.name << ": " << h.body;
    const std::string msg = h.errorMessage();
    EXPECT_EQ(msg.rfind(c.field + ":", 0), 0U)
        << c.name << ": the message should start with \"" << c.field << ":\" but is: " << msg;
  }

  // Malformed JSON has no field to name, but is refused the same way.
  for (const std::string body : {R"({"id":"a","command":["true"])", "{id: 'a'}", ""}) {
    auto h = agent.request("POST", "/v1/jobs", body);
    EXPECT_EQ(h.status, 400) << "body <" << body << ">: " << h.body;
    EXPECT_FALSE(h.errorMessage().empty()) << h.body;
  }

  auto list = agent.get("/v1/jobs");
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(list.obj().at("jobs").as_array().empty()) << list.body;
  EXPECT_EQ(agent.get("/v1/jobs/a").status, 404);
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(agent.stateDir() / "jobs", ec)) << ec.message();
  std::this_thread::sleep_for(500ms);  // a transition would have been recorded by now
  const auto after = agent.outbox();
  EXPECT_EQ(after.size(), before.size());
  for (const auto& e : after) EXPECT_EQ(e.at("type"), "host.inventory_changed");

  // The agent still takes a good spec afterwards.
  auto good = agent.request("POST", "/v1/jobs", R"({"id":"a","command":["true"]})");
  EXPECT_EQ(good.status, 201) << good.body;
  (void)agent.waitForState("a", "exited", 10s);
}

}  // namespace
}  // namespace hwl::itest::agent
