// Placement refusals: each 409 names every candidate host with its reason, an unknown host is
// 404, and a refused job leaves no trace in the ledger.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>

#include "fleet_support.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

bj::object refusalHosts(const Http& h) {
  EXPECT_EQ(h.status, 409) << h.body;
  auto o = h.obj();
  const auto& e = o.at("error").as_object();
  EXPECT_EQ(str(e.at("code")), "no_placement") << h.body;
  return e.at("hosts").as_object();
}

bj::object spec(const bj::object& extra) {
  bj::object o{{"name", "refused"}, {"command", bj::array{"/bin/true"}}};
  for (const auto& kv : extra) o[kv.key()] = kv.value();
  return o;
}

TEST(FleetPlacement, RefusalsNameEachHostsReasonAndAppendNothing) {
  HWL_NEEDS_SHARED_DATA();
  FleetDir root;
  FleetServer srv(root.path());
  srv.launch();
  const auto dir = telemetryDir();
  FleetAgent h100(root.path(), "h100", "replay:" + (dir / "nvidia-h100-query-gpu.csv").string());
  FleetAgent a5000(
      root.path(), "a5000x2",
      "replay:" + hwl::test_fixtures::find("telemetry", "nvidia-a5000x2-smi-q-x.xml").string());
  // Enrolled, but nothing ever answers at its address.
  FleetAgent ghost(root.path(), "ghost", "replay:" + (dir / "nvidia-h100-query-gpu.csv").string());
  for (auto* a : {&h100, &a5000, &ghost}) a->enroll(srv);
  h100.start();
  a5000.start();
  waitForFleet(srv, {&h100, &a5000});
  ASSERT_TRUE(
      eventually([&] { return str(host(srv, ghost.hostId()).at("state")) == "unreachable"; }, 30s));
  const int64_t before = srv.eventCount();

  // More GPUs than any host has.
  auto hosts = refusalHosts(submitJob(srv, spec({{"gpus", 3}})));
  ASSERT_EQ(hosts.size(), 3u) << bj::serialize(hosts);
  EXPECT_EQ(str(hosts.at(h100.hostId())), "1 of 1 GPUs available, 3 needed");
  EXPECT_EQ(str(hosts.at(a5000.hostId())), "2 of 2 GPUs available, 3 needed");
  EXPECT_EQ(str(hosts.at(ghost.hostId())), "unreachable");

  // More free memory than any GPU has (an H100 has 80 GiB, an A5000 24 GiB).
  const int64_t too_much = 100LL << 30;
  hosts = refusalHosts(submitJob(srv, spec({{"gpus", 1}, {"gpu_memory_bytes", too_much}})));
  ASSERT_EQ(hosts.size(), 3u) << bj::serialize(hosts);
  const std::string mem_reason =
      " GPUs available with " + std::to_string(too_much) + " bytes free, 1 needed";
  EXPECT_EQ(str(hosts.at(h100.hostId())), "0 of 1" + mem_reason);
  EXPECT_EQ(str(hosts.at(a5000.hostId())), "0 of 2" + mem_reason);

  // A host named by the operator that does not answer: by name and by id.
  for (const std::string& named : {std::string("ghost"), ghost.hostId()}) {
    hosts = refusalHosts(submitJob(srv, spec({{"host", named}})));
    ASSERT_EQ(hosts.size(), 1u) << bj::serialize(hosts);
    EXPECT_EQ(str(hosts.at(ghost.hostId())), "unreachable");
  }
  // The named host cannot take it even though another host could.
  hosts = refusalHosts(submitJob(srv, spec({{"host", "a5000x2"}, {"gpus", 3}})));
  ASSERT_EQ(hosts.size(), 1u) << bj::serialize(hosts);
  EXPECT_EQ(str(hosts.at(a5000.hostId())), "2 of 2 GPUs available, 3 needed");

  // An unknown host.
  auto unknown = submitJob(srv, spec({{"host", "no-such-host"}}));
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.errorMessage().find("no-such-host"), std::string::npos) << unknown.body;

  // The CLI shows the reasons too, by host name (the id beside it), and fails.
  auto c = cli({"jobs", "submit", "--gpus", "3", "--", "/bin/true"}, srv.cliEnv(srv.adminToken()));
  EXPECT_EQ(c.code(), 1);
  EXPECT_NE(c.err.find("  h100 (" + h100.hostId() + "): 1 of 1 GPUs available, 3 needed"),
            std::string::npos)
      << c.err;

  // Nothing appended (an hourly telemetry summary may land if the clock passes the hour).
  for (const auto& e : srv.allEvents())
    if (i64(e.at("seq")) > before && str(e.at("type")) != "telemetry.hourly")
      ADD_FAILURE() << "appended: " << bj::serialize(e);
  EXPECT_TRUE(getOk(srv, "/v1/jobs").at("jobs").as_array().empty());

  // What does fit is placed, so the refusals above were about the requests, not the fleet.
  auto ok = submitJob(srv, spec({{"gpus", 2}, {"gpu_memory_bytes", 1LL << 30}}));
  ASSERT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(str(ok.obj().at("host")), a5000.hostId());
}

TEST(FleetPlacement, PlacementsRankHostsByFitForAModel) {
  HWL_NEEDS_SHARED_DATA();
  FleetDir root;
  FleetServer srv(root.path());
  srv.launch();
  const auto dir = telemetryDir();
  const auto models = hwl::test_fixtures::sharedData() / "models";
  FleetAgent h100(root.path(), "h100", "replay:" + (dir / "nvidia-h100-query-gpu.csv").string());
  FleetAgent a5000(
      root.path(), "a5000x2",
      "replay:" + hwl::test_fixtures::find("telemetry", "nvidia-a5000x2-smi-q-x.xml").string());
  for (auto* a : {&h100, &a5000}) a->enroll(srv);
  h100.start();
  a5000.start();
  waitForFleet(srv, {&h100, &a5000});

  auto rank = [&](const std::string& model, int64_t context) {
    auto cfg = bj::parse(readFile(models / model));
    bj::object body{{"model", cfg}, {"context", context}, {"batch", 1}};
    auto h = srv.request("POST", "/v1/placements", srv.adminToken(), bj::serialize(body));
    EXPECT_EQ(h.status, 200) << h.body;
    return h.obj().at("placements").as_array();
  };
  // A small model fits on one GPU of either host, against their latest free memory.
  auto small = rank("Qwen3-1.7B.config.json", 8192);
  ASSERT_EQ(small.size(), 2u);
  for (const auto& p : small) {
    EXPECT_TRUE(p.at("fits").as_bool()) << bj::serialize(p);
    EXPECT_EQ(i64(p.at("gpus_needed")), 1) << bj::serialize(p);
    EXPECT_NE(str(p.at("basis")).find("free memory"), std::string::npos) << bj::serialize(p);
    EXPECT_GT(i64(p.at("headroom_bytes")), 0);
  }
  // Llama 3.1 405B in bf16 (about 810 GB of weights) fits nowhere here; each host says why.
  auto huge = rank("Llama-3.1-405B.config.json", 8192);
  ASSERT_EQ(huge.size(), 2u);
  for (const auto& p : huge) {
    EXPECT_FALSE(p.at("fits").as_bool()) << bj::serialize(p);
    EXPECT_FALSE(str(p.at("reason")).empty()) << bj::serialize(p);
  }
  // The same question as a GET with the config in the query.
  auto cfg_text = readFile(models / "Qwen3-1.7B.config.json");
  auto g = srv.request(
      "GET", "/v1/placements", srv.adminToken(), std::nullopt,
      {"-G", "--data-urlencode", "config=" + cfg_text, "--data-urlencode", "context=8192"});
  ASSERT_EQ(g.status, 200) << g.body;
  EXPECT_EQ(g.obj().at("placements").as_array().size(), 2u);
  // A bad config is refused with the reason. (A bare {"model_type": "llama"} is not bad: it is
  // LlamaConfig's defaults, as transformers reads it.)
  auto bad = srv.request("POST", "/v1/placements", srv.adminToken(),
                         std::string(R"({"model":{"model_type":"mystery"},"context":8192})"));
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("missing required key 'hidden_size'"), std::string::npos) << bad.body;
  auto wrong = srv.request(
      "POST", "/v1/placements", srv.adminToken(),
      std::string(R"({"model":{"model_type":"llama","num_kv_groups":2},"context":8192})"));
  EXPECT_EQ(wrong.status, 400) << wrong.body;
  EXPECT_NE(wrong.body.find("key 'num_kv_groups' may change the KV cache"), std::string::npos)
      << wrong.body;
}

}  // namespace
}  // namespace hwl::itest::fleet
