// A rented instance becomes a host of the fleet: the fake provider reports a real OpenSSH sshd on
// loopback as the instance's address and writes the SSH keys of the launch into that sshd's
// authorized_keys (as the provider's image would); the server enrolls it over SSH with the key it
// made for the rental, the host gets its GPU (a fake nvidia-smi replaying a recorded H100), a job
// is placed on it and runs, and terminating the rental retires the host.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "fake_provider.hpp"
#include "server_fixture.hpp"
#include "sshd_fixture.hpp"

namespace hwl::itest {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string str(const bj::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return f();
}

// The first offer GET /v1/offers lists for `query`, waited for while the catalogue fills.
std::string firstOffer(const LedgerServer& srv, const std::string& query) {
  std::string offer;
  eventually(
      [&] {
        auto r = srv.get("/v1/offers" + query);
        if (r.status != 200 || r.obj().at("offers").as_array().empty()) return false;
        offer = str(r.obj().at("offers").as_array()[0].as_object().at("id"));
        return true;
      },
      10s);
  return offer;
}

// POST /v1/rentals (retried while the provider is being reconciled); the rental id.
std::string rent(const LedgerServer& srv, const std::string& offer, const std::string& name) {
  Http launched;
  eventually(
      [&] {
        launched =
            srv.post("/v1/rentals", bj::serialize(bj::object{{"offer", offer}, {"name", name}}));
        return launched.status != 503;
      },
      10s);
  EXPECT_EQ(launched.status, 201) << launched.body;
  return launched.status == 201 ? str(launched.obj().at("id")) : "";
}

// The host the rental was enrolled as, once it is.
std::string hostOf(const LedgerServer& srv, const std::string& id, std::chrono::seconds limit) {
  std::string host;
  eventually(
      [&] {
        host = str(srv.get("/v1/rentals/" + id).obj().at("host_id"));
        return !host.empty();
      },
      limit);
  return host;
}

// Terminated, then its host revoked.
void terminateAndRetire(const LedgerServer& srv, const std::string& id, const std::string& host) {
  ASSERT_EQ(srv.request("DELETE", "/v1/rentals/" + id, srv.adminToken()).status, 202);
  ASSERT_TRUE(eventually(
      [&] { return str(srv.get("/v1/rentals/" + id).obj().at("state")) == "terminated"; }, 30s));
  EXPECT_TRUE(eventually(
      [&] { return str(srv.get("/v1/hosts/" + host).obj().at("state")) == "revoked"; }, 10s))
      << srv.get("/v1/hosts/" + host).body;
}

TEST(RentedHost, IsEnrolledOverSshRunsAJobAndIsRetiredWhenTerminated) {
  const std::string why = sshdUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  TempDir tmp("hwl-rented");
  SshdFixture sshd(SshdOptions{.remote_bin = true});
  sshd.addRemoteTool("nvidia-smi",
                     fs::path(HWL_FIXTURES_DIR) / "telemetry/nvidia-h100-query-gpu.csv");
  sshd.start();
  FakeProvider fake("lambda", {"--authorized-keys", (sshd.dir() / "authorized_keys").string()},
                    tmp.path());
  ASSERT_TRUE(fake.ok());
  fake.configure({{"ssh_host", "127.0.0.1"}, {"ssh_port", sshd.port()}, {"ssh_user", sshd.user()}});

  // Lambda reports only an instance's address: the user and port of its sshd are configured
  // (ubuntu and 22 on Lambda's own images).
  bj::object providers{{"lambda", bj::object{{"base_url", fake.baseUrl("/api/v1")},
                                             {"api_key", "test-key"},
                                             {"ssh_user", sshd.user()},
                                             {"ssh_port", sshd.port()}}},
                       {"poll_interval_ms", 200},
                       {"reconcile_interval_s", 2}};
  std::ofstream(tmp.path() / "config.json")
      << bj::serialize(bj::object{{"providers", providers},
                                  {"ssh_job_root", (tmp.path() / "jobs").string()},
                                  {"ssh_poll_interval_ms", 2000}});
  LedgerServer srv(tmp.path(), "srv");
  srv.init();
  srv.start({"--config", (tmp.path() / "config.json").string()});

  const std::string offer = firstOffer(srv, "");
  ASSERT_FALSE(offer.empty());
  const std::string id = rent(srv, offer, "rented-gpu");
  ASSERT_FALSE(id.empty());
  const std::string host = hostOf(srv, id, 60s);
  ASSERT_FALSE(host.empty()) << srv.get("/v1/rentals/" + id).body << srv.serverErr();
  auto h = srv.get("/v1/hosts/" + host).obj();
  EXPECT_EQ(str(h.at("kind")), "ssh") << bj::serialize(h);
  EXPECT_EQ(str(h.at("name")), "rented-gpu");

  // Placeable: a job on its GPU runs to its end.
  Http job;
  ASSERT_TRUE(eventually(
      [&] {
        job = srv.post("/v1/jobs",
                       bj::serialize(bj::object{
                           {"name", "on-rental"},
                           {"host", host},
                           {"gpus", 1},
                           {"command", bj::array{"sh", "-c", "echo on $CUDA_VISIBLE_DEVICES"}}}));
        return job.status != 409;
      },
      30s));
  ASSERT_EQ(job.status, 201) << job.body;
  const std::string job_id = str(job.obj().at("id"));
  ASSERT_TRUE(eventually(
      [&] { return str(srv.get("/v1/jobs/" + job_id).obj().at("state")) == "exited"; }, 60s))
      << srv.get("/v1/jobs/" + job_id).body;

  terminateAndRetire(srv, id, host);
}

#ifdef HWL_RENTAL_AGENT_BIN
// With "enroll": "agent", the agent is installed on the rented instance over SSH (here into a
// temporary root, its unit not started) and the rental's host is an agent host.
TEST(RentedHost, WithTheAgentInstalledBecomesAnAgentHost) {
  const std::string why = sshdUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  if (::geteuid() != 0) GTEST_SKIP() << "the installer's privileged steps need root";
  TempDir tmp("hwl-rented-agent");
  fs::permissions(tmp.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  SshdFixture sshd(SshdOptions{.remote_bin = true});
  sshd.addRemoteTool("nvidia-smi",
                     fs::path(HWL_FIXTURES_DIR) / "telemetry/nvidia-h100-query-gpu.csv");
  sshd.start();
  const fs::path host_root = tmp.path() / "host-root";
  fs::create_directories(host_root);
  FakeProvider fake("runpod", {"--authorized-keys", (sshd.dir() / "authorized_keys").string()},
                    tmp.path());
  ASSERT_TRUE(fake.ok());
  fake.configure({{"ssh_host", "127.0.0.1"}, {"ssh_port", sshd.port()}});
  const uint16_t agent_port = freeLoopbackPort();
  bj::object providers{
      {"runpod", bj::object{{"base_url", fake.baseUrl("/graphql")},
                            {"api_key", "test-key"},
                            {"image", "runpod/base:1"}}},
      {"poll_interval_ms", 200},
      {"reconcile_interval_s", 2},
      {"enroll", "agent"},
      {"agent_install", bj::object{{"install_root", host_root.string()},
                                   {"job_user", "nobody"},
                                   {"agent_listen", "127.0.0.1:" + std::to_string(agent_port)},
                                   {"enable_unit", false}}}};
  std::ofstream(tmp.path() / "config.json")
      << bj::serialize(bj::object{{"providers", providers},
                                  {"agent_binary", HWL_RENTAL_AGENT_BIN},
                                  {"ssh_poll_interval_ms", 2000}});
  LedgerServer srv(tmp.path(), "srv");
  srv.init();
  srv.start({"--config", (tmp.path() / "config.json").string()});
  const std::string offer = firstOffer(srv, "?provider=runpod&gpu=4090");
  ASSERT_FALSE(offer.empty());
  const std::string id = rent(srv, offer, "rented-agent");
  ASSERT_FALSE(id.empty());
  const std::string host = hostOf(srv, id, 90s);
  ASSERT_FALSE(host.empty()) << srv.get("/v1/rentals/" + id).body << srv.serverErr();
  auto h = srv.get("/v1/hosts/" + host).obj();
  EXPECT_EQ(str(h.at("kind")), "agent") << bj::serialize(h);
  EXPECT_EQ(str(h.at("name")), "rented-agent");
  int installed = 0;
  for (const auto& e : srv.allEvents("&stream=host/" + host))
    if (e.at("type").as_string() == "host.agent_installed") ++installed;
  EXPECT_EQ(installed, 1);
  terminateAndRetire(srv, id, host);
}
#endif

}  // namespace
}  // namespace hwl::itest
