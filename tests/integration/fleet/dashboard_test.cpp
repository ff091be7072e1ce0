// The web dashboard end to end in real headless Chromium (Debian's, driven by playwright-core:
// tests/e2e/dashboard.mjs) against a real fleet: hwledger-server with a real agent replaying the
// demo captures, and a rental from the fake Lambda provider that the server enrolls as an SSH
// host (a real OpenSSH sshd on loopback with a fake nvidia-smi replaying an H100). Screenshots of
// every view go to build/e2e-screenshots.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>

#include "fake_provider.hpp"
#include "fleet_support.hpp"
#include "sshd_fixture.hpp"

namespace hwl::itest::fleet {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

// Why the browser test cannot run here ("" when it can).
std::string browserUnavailableReason() {
  if (!fs::exists("/usr/bin/chromium"))
    return "no /usr/bin/chromium (deploy/setup.sh test installs Debian's chromium)";
  if (!fs::exists(fs::path(HWL_E2E_DIR) / "node_modules" / "playwright-core"))
    return "no playwright-core in tests/e2e/node_modules (deploy/setup.sh test runs npm ci there)";
  if (run({"node", "--version"}).code() != 0) return "no node";
  return "";
}

TEST(FleetDashboard, EveryViewInRealChromiumWithAnAgentHostAndARentedSshHost) {
  for (const std::string& why : {browserUnavailableReason(), sshdUnavailableReason()}) {
    if (!why.empty()) GTEST_SKIP() << why;
  }
  FleetDir root;
  SshdFixture sshd(SshdOptions{.remote_bin = true});
  sshd.addRemoteTool("nvidia-smi", telemetryDir() / "nvidia-h100-query-gpu.csv");
  sshd.start();
  FakeProvider fake("lambda", {"--authorized-keys", (sshd.dir() / "authorized_keys").string()},
                    root.path());
  ASSERT_TRUE(fake.ok());
  fake.configure({{"ssh_host", "127.0.0.1"}, {"ssh_port", sshd.port()}, {"ssh_user", sshd.user()}});
  // A model config the planner may be asked for by name.
  fs::create_directories(root / "models");
  fs::copy_file(fs::path(HWL_FLEET_REPO_ROOT) / "tests/fixtures/models/Qwen3-30B-A3B.config.json",
                root / "models" / "Qwen3-30B-A3B.json");
  bj::object config{
      {"scrape_timeout_ms", 1000},
      {"model_dir", (root / "models").string()},
      {"providers", bj::object{{"lambda", bj::object{{"base_url", fake.baseUrl("/api/v1")},
                                                     {"api_key", "test-key"},
                                                     {"ssh_user", sshd.user()},
                                                     {"ssh_port", sshd.port()}}},
                               {"poll_interval_ms", 200},
                               {"reconcile_interval_s", 2}}},
      {"ssh_job_root", (root / "ssh-jobs").string()},
      {"ssh_poll_interval_ms", 2000}};
  FleetServer srv(root.path());
  srv.launch(bj::serialize(config));
  FleetAgent agent(root.path(), "gpu-agent",
                   "replay:" + (telemetryDir() / "demo-fleet.json").string());
  agent.enroll(srv);
  agent.start();
  waitForFleet(srv, {&agent});

  // A rental, enrolled as an SSH host once it runs.
  std::string offer;
  for (int i = 0; i < 100 && offer.empty(); ++i) {
    auto r = srv.get("/v1/offers");
    if (r.status == 200 && !r.obj().at("offers").as_array().empty())
      offer = str(r.obj().at("offers").as_array()[0].at("id"));
    else
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(offer.empty());
  Http launched;
  for (int i = 0; i < 100; ++i) {
    launched = srv.post("/v1/rentals",
                        bj::serialize(bj::object{{"offer", offer}, {"name", "rented-gpu"}}));
    if (launched.status != 503) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(launched.status, 201) << launched.body;
  const std::string rental = str(launched.obj().at("id"));
  std::string ssh_host;
  for (int i = 0; i < 600 && ssh_host.empty(); ++i) {
    ssh_host = str(getOk(srv, "/v1/rentals/" + rental).at("host_id"));
    if (ssh_host.empty()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(ssh_host.empty()) << srv.serverErr();

  const auto viewer = srv.createToken("viewer");
  const auto op = srv.createToken("operator");
  const fs::path out = fs::path(HWL_BUILD_DIR_FOR_E2E) / "e2e-screenshots";
  fs::create_directories(out);
  RunOptions ro;
  ro.timeout = 240s;
  ro.env = {{"HWL_URL", srv.url()},
            {"HWL_ADMIN_TOKEN", srv.adminToken()},
            {"HWL_VIEWER_TOKEN", viewer.token},
            {"HWL_OPERATOR_TOKEN", op.token},
            {"HWL_CHROMIUM", "/usr/bin/chromium"},
            {"HWL_OUT", out.string()},
            {"HWL_JOB_PORT", std::to_string(freeLoopbackPort())},
            {"HWL_JOB_HOST", agent.name()},
            {"HWL_EXPECT_HOSTS", "gpu-agent:agent:4,rented-gpu:ssh:1"},
            {"HWL_RENTAL", rental},
            {"HWL_MODEL_CONFIG",
             (fs::path(HWL_FLEET_REPO_ROOT) / "tests/fixtures/models/Llama-3.1-8B.config.json")
                 .string()}};
  auto r = run({"node", (fs::path(HWL_E2E_DIR) / "dashboard.mjs").string()}, ro);
  EXPECT_EQ(r.code(), 0) << r.out << r.err << srv.serverErr();
  std::cout << r.out;
}

}  // namespace
}  // namespace hwl::itest::fleet
