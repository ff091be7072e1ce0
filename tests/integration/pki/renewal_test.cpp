// Renewal under load: with 60-second agent certificates the agent renews again and again while
// the server's identity calls it without pause — on new connections and on one keep-alive
// connection — and not one request fails, past the expiry of the first certificate.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "pki_support.hpp"

namespace hwl::itest::pki {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Attempt {
  SteadyClock::time_point started;
  int status = 0;
  int curl_exit = 0;
  std::string err;
};

TEST(Renewal, SixtySecondCertificatesRenewWithoutAFailedRequest) {
  // The keep-alive client makes kKeepAliveRequests requests at 5 per second: two minutes, long
  // enough for at least three renewals (each comes ~20 s after issue: two thirds of the window
  // from notBefore, which is backdated a minute) and past the first certificate's expiry.
  constexpr int kKeepAliveRequests = 600;
  TempDir tmp("hwl-pki");
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start({"--agent-cert-lifetime", "60"});
  Agent agent(tmp.path(), "agent");
  agent.enrollWith(srv, {"--advertise", "127.0.0.1:9443"});
  const std::string id = agent.hostId();
  const std::string first_serial = serialOf(agent.identity());
  auto enrolled = srv.get("/v1/hosts/" + id);
  ASSERT_EQ(enrolled.status, 200) << enrolled.body;
  const int64_t first_not_after = enrolled.obj().at("cert_not_after_ms").as_int64();
  ASSERT_LE(first_not_after, nowMs() + 61'000) << "the first certificate lives 60 s";

  agent.start();
  const Creds me = serverIdentity(srv);
  const std::string url = agent.url() + "/v1/health";

  // One curl process, one connection, kKeepAliveRequests requests.
  SpawnOptions so;
  so.stdout_file = tmp / "keepalive.out";
  so.stderr_file = tmp / "keepalive.err";
  Process keep({"curl", "-sS", "--cacert", me.cacert.string(), "--cert", me.cert.string(), "--key",
                me.key.string(), "--rate", "5/s", "-w",
                "\nRESULT %{http_code} %{num_connects} %{exitcode}\n",
                url + "?n=[1-" + std::to_string(kKeepAliveRequests) + "]"},
               so);

  // New connections at least every 200 ms, and the certificate served on a new connection every
  // few seconds, until the keep-alive client is done.
  std::vector<Attempt> attempts;
  std::vector<std::string> served;
  std::vector<std::string> served_errors;
  auto last_sample = SteadyClock::now() - 1h;
  const auto began = SteadyClock::now();
  while (keep.running() && SteadyClock::now() - began < 250s && agent.running() && srv.running()) {
    Attempt a;
    a.started = SteadyClock::now();
    auto h = curlTls("GET", url, me);
    a.status = h.status;
    a.curl_exit = h.curl_exit;
    a.err = h.err;
    attempts.push_back(std::move(a));
    if (SteadyClock::now() - last_sample >= 5s) {
      last_sample = SteadyClock::now();
      try {
        served.push_back(serialOfPem(servedCertificate(agent.address(), me)));
      } catch (const std::exception& e) {
        served_errors.emplace_back(e.what());
      }
    }
    std::this_thread::sleep_until(attempts.back().started + 150ms);
  }
  ASSERT_TRUE(agent.running()) << "the agent ended during the run (" << agent.exitDescription()
                               << "): " << agent.err();
  ASSERT_TRUE(srv.running()) << "the server ended during the run: " << srv.serverErr();
  auto keep_status = keep.wait(30s);
  ASSERT_TRUE(keep_status.has_value()) << "the keep-alive client did not finish";
  const int64_t ended_ms = nowMs();

  // Every request on the keep-alive connection succeeded, and it stayed one connection.
  EXPECT_TRUE(keep_status->success()) << keep_status->describe() << " " << keep.err();
  int results = 0, ok = 0, connects = 0;
  std::stringstream ss(keep.out());
  std::string line;
  while (std::getline(ss, line)) {
    if (line.rfind("RESULT ", 0) != 0) continue;
    ++results;
    int code = 0, nc = 0, ex = 0;
    std::istringstream fields(line.substr(7));
    fields >> code >> nc >> ex;
    if (code == 200 && ex == 0)
      ++ok;
    else
      ADD_FAILURE() << "keep-alive request " << results << ": " << line;
    connects += nc;
  }
  EXPECT_EQ(results, kKeepAliveRequests);
  EXPECT_EQ(ok, kKeepAliveRequests);
  EXPECT_EQ(connects, 1) << "the keep-alive connection was not kept";

  // Every request on a new connection succeeded, at least every 200 ms (median), never with a
  // gap of a second.
  ASSERT_FALSE(attempts.empty());
  int failed = 0;
  for (const auto& a : attempts) {
    if (a.status == 200) continue;
    if (++failed <= 5)
      ADD_FAILURE() << "new connection: HTTP " << a.status << ", curl exit " << a.curl_exit << ": "
                    << a.err;
  }
  EXPECT_EQ(failed, 0) << "of " << attempts.size() << " requests on new connections";
  std::vector<int64_t> gaps;
  for (size_t i = 1; i < attempts.size(); ++i)
    gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(attempts[i].started -
                                                                         attempts[i - 1].started)
                       .count());
  std::sort(gaps.begin(), gaps.end());
  ASSERT_FALSE(gaps.empty());
  EXPECT_LE(gaps[gaps.size() / 2], 200) << "median gap between new connections";
  EXPECT_LT(gaps.back(), 1000) << "longest gap between new connections";
  EXPECT_TRUE(served_errors.empty()) << served_errors.front();

  // The run went past the first certificate's end: the agent served renewed ones.
  EXPECT_GT(ended_ms, first_not_after + 5'000);

  // The agent renewed at least three times, each time with the certificate it then held.
  std::vector<std::string> renewed;
  std::string prev = first_serial;
  for (const auto& e : srv.allEvents("&type=host.cert_renewed")) {
    const auto& d = e.at("data").as_object();
    EXPECT_EQ(d.at("host_id").as_string(), id);
    EXPECT_EQ(e.at("actor").as_string(), "host:" + id);
    EXPECT_EQ(normaliseSerial(std::string(d.at("previous_serial").as_string())), prev);
    prev = normaliseSerial(std::string(d.at("cert_serial").as_string()));
    renewed.push_back(prev);
  }
  EXPECT_GE(renewed.size(), 3u);
  EXPECT_EQ(agent.err().find("renewal failed"), std::string::npos) << agent.err();

  // New connections saw the certificate change, and the one served now is not the first.
  std::set<std::string> distinct(served.begin(), served.end());
  EXPECT_GE(distinct.size(), 3u) << "distinct certificates served over the run";
  const std::string now_served = serialOfPem(servedCertificate(agent.address(), me));
  EXPECT_NE(now_served, first_serial);
  EXPECT_NE(std::find(renewed.begin(), renewed.end(), now_served), renewed.end())
      << "the agent serves a certificate the server did not issue by renewal";
  EXPECT_TRUE(agent.running()) << agent.err();
}

}  // namespace
}  // namespace hwl::itest::pki
