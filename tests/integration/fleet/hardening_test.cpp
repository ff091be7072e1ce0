// Attacks on the job path through a real server and real agents: a viewer smuggling a request to
// an agent through a query parameter, specs the agent would refuse, unbounded fields, a server
// killed between placing and dispatching a job, a job its agent has forgotten, and a host (a real
// enrolled certificate, a fake agent behind it) reporting on another host's job.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "fleet_support.hpp"
#include "hwl/http.hpp"
#include "hwl/test_fixtures.hpp"

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

std::string percentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Events other than the hourly telemetry roll-ups (which close on the hour, whatever a test does).
std::vector<bj::object> eventsAfter(const LedgerServer& srv, int64_t seq) {
  std::vector<bj::object> out;
  for (auto& e : srv.allEvents())
    if (i64(e.at("seq")) > seq && str(e.at("type")) != "telemetry.hourly")
      out.push_back(std::move(e));
  return out;
}

std::string describe(const std::vector<bj::object>& events) {
  std::string out;
  for (const auto& e : events) out += str(e.at("type")) + " " + str(e.at("stream")) + "; ";
  return out;
}

// Job ids the agent has, by asking it directly.
std::set<std::string> agentJobs(const FleetServer& srv, const FleetAgent& a) {
  auto h = a.call(srv, "GET", "/v1/jobs");
  if (h.status != 200) throw std::runtime_error("agent GET /v1/jobs: " + h.body + h.err);
  std::set<std::string> out;
  const auto body = h.obj();
  for (const auto& j : body.at("jobs").as_array()) out.insert(str(j.at("id")));
  return out;
}

int gpuCount(const LedgerServer& srv, const std::string& host_id) {
  return static_cast<int>(host(srv, host_id).at("gpus").as_array().size());
}

TEST(FleetHardening, ViewerCannotSmuggleARequestToTheAgentThroughLogsTail) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const std::string id = submitJobOk(srv, webJob(a.hostId(), freeLoopbackPort()));
  ASSERT_EQ(str(waitForJobState(srv, id, "ready", 30s).at("state")), "ready");
  auto viewer = srv.createToken("viewer");

  // A whole second request (a job of the attacker's choosing) after the tail value, then the
  // start of a third that the real request line completes.
  const std::string smuggled_body =
      bj::serialize(bj::object{{"id", "smuggled-1"}, {"command", bj::array{"/bin/true"}}});
  const std::string payload =
      "1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /v1/jobs HTTP/1.1\r\nHost: a\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(smuggled_body.size()) + "\r\n\r\n" + smuggled_body + "GET /v1/health";
  const int64_t before = srv.eventCount();
  const std::vector<std::string> queries = {"?tail=" + percentEncode(payload),
                                            "?tail=1%0D%0A%0D%0APOST%20/v1/jobs",
                                            "?tail=1&follow=" + percentEncode("1 HTTP/1.1\r\nX: y"),
                                            "?tail=1&x=" + percentEncode("\r\n"),
                                            "?tail=-1",
                                            "?tail=1e3"};
  for (const std::string& q : queries) {
    auto h = srv.request("GET", "/v1/jobs/" + id + "/logs" + q, viewer.token);
    EXPECT_EQ(h.status, 400) << q << ": " << h.body;
  }
  // The ids that reach a path on the agent are checked too.
  auto bad_id =
      srv.request("GET", "/v1/jobs/" + percentEncode(id + "\r\nX: y") + "/logs", viewer.token);
  EXPECT_EQ(bad_id.status, 400) << bad_id.body;

  // The agent ran nothing else, and nothing reached the ledger (drains run every 300 ms).
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(agentJobs(srv, a), std::set<std::string>{id});
  for (const auto& e : a.outbox(srv))
    EXPECT_EQ(bj::serialize(e).find("smuggled"), std::string::npos) << bj::serialize(e);
  auto after = eventsAfter(srv, before);
  EXPECT_TRUE(after.empty()) << describe(after);

  // The same route with typed values still works.
  auto ok = srv.request("GET", "/v1/jobs/" + id + "/logs?tail=1", viewer.token);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, "listening\n");
}

TEST(FleetHardening, SpecsTheAgentWouldRefuseAndOversizedFieldsAppendNothing) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const int64_t before = srv.eventCount();
  struct Case {
    std::string what;
    bj::object body;
    std::vector<int> statuses;
    std::string field;  // the error message starts with or names it
  };
  std::vector<Case> cases = {
      {"env name with '='",
       {{"command", bj::array{"/bin/true"}}, {"env", bj::object{{"A=B", "c"}}}},
       {400},
       "env.A=B"},
      {"env name with a newline",
       {{"command", bj::array{"/bin/true"}}, {"env", bj::object{{"A\nB", "c"}}}},
       {400},
       "env."},
      {"NUL in an argument",
       {{"command", bj::array{"/bin/true", bj::string("a\0b", 3)}}},
       {400},
       "command[1]"},
      {"8 KiB name",
       {{"name", std::string(8192, 'n')}, {"command", bj::array{"/bin/true"}}},
       {400},
       "\"name\""},
      {"control characters in the name",
       {{"name", "\x1b[31mred"}, {"command", bj::array{"/bin/true"}}},
       {400},
       "\"name\""},
      {"20 KiB argument",
       {{"command", bj::array{"/bin/true", std::string(20 * 1024, 'x')}}},
       {400},
       "command[1]"},
      {"2000 arguments", {{"command", bj::array(2000, bj::string("x"))}}, {400}, "command"},
      {"20 KiB env value",
       {{"command", bj::array{"/bin/true"}},
        {"env", bj::object{{"A", std::string(20 * 1024, 'v')}}}},
       {400},
       "env.A"},
      {"1 MiB name (over the route's body limit)",
       {{"name", std::string(1 << 20, 'n')}, {"command", bj::array{"/bin/true"}}},
       {400, 413},
       ""},
  };
  for (const auto& c : cases) {
    auto h = submitJob(srv, c.body);
    EXPECT_NE(std::find(c.statuses.begin(), c.statuses.end(), h.status), c.statuses.end())
        << c.what << ": " << h.status << " " << h.body.substr(0, 300);
    if (!c.field.empty()) {
      EXPECT_NE(h.errorMessage().find(c.field), std::string::npos)
          << c.what << ": " << h.errorMessage();
    }
  }
  std::this_thread::sleep_for(1s);
  auto after = eventsAfter(srv, before);
  EXPECT_TRUE(after.empty()) << describe(after);
  EXPECT_TRUE(agentJobs(srv, a).empty());
  // A good spec still goes through.
  EXPECT_EQ(submitJob(srv, {{"command", bj::array{"/bin/true"}}, {"env", bj::object{{"A_B", "c"}}}})
                .status,
            201);
}

// SIGSTOPs the agent, submits a job in the background and waits for its job.placed: the server
// is then inside the dispatch (the agent cannot complete a handshake) when the test kills it.
std::string placeThenKillServer(FleetServer& srv, FleetAgent& a, const bj::object& body,
                                const fs::path& root) {
  a.signal(SIGSTOP);
  Process curl({"curl", "-sS", "--max-time", "60", "--cacert", srv.caCert().string(), "-H",
                "Authorization: Bearer " + srv.adminToken(), "-H", "Content-Type: application/json",
                "--data-binary", bj::serialize(body), srv.url() + "/v1/jobs"},
               {.stdout_file = root / "submit.out", .stderr_file = root / "submit.err"});
  std::string id;
  bool placed = eventually(
      [&] {
        auto evs = typedEvents(srv, "job.placed");
        if (evs.empty()) return false;
        id = str(evs.back().at("data").at("job_id"));
        return true;
      },
      8s);
  if (!placed) throw std::runtime_error("no job.placed while the agent was stopped");
  EXPECT_EQ(str(job(srv, id).at("state")), "placed");
  srv.crash();
  return id;
}

TEST(FleetHardening, JobLeftPlacedByAKilledServerIsDispatchedAfterRestart) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const int gpus = gpuCount(srv, a.hostId());
  const uint16_t port = freeLoopbackPort();
  const std::string id = placeThenKillServer(srv, a, webJob(a.hostId(), port), fleet.root.path());
  a.signal(SIGCONT);
  // The dispatch may have been written on a pooled connection that the stopped agent reads once
  // it continues (then it runs the job and reports it), or never have left the server (then the
  // restarted server dispatches it again): either way the job runs once.
  srv.launch();
  auto j = waitForJobState(srv, id, "ready", 40s);
  ASSERT_EQ(str(j.at("state")), "ready") << bj::serialize(j) << srv.serverErr();
  EXPECT_TRUE(portAccepts(port));
  EXPECT_EQ(agentJobs(srv, a), std::set<std::string>{id});
  EXPECT_EQ(typesOf(streamEvents(srv, "job/" + id)),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.started", "job.ready"}));

  // Cancelled, it frees its GPU: a job asking for every GPU of the host is placed.
  ASSERT_EQ(srv.request("DELETE", "/v1/jobs/" + id, srv.adminToken()).status, 202);
  ASSERT_EQ(str(waitForJobState(srv, id, "cancelled", 30s).at("state")), "cancelled");
  auto all = submitJob(srv, {{"command", bj::array{"/bin/true"}}, {"gpus", gpus}});
  EXPECT_EQ(all.status, 201) << all.body;
}

TEST(FleetHardening, JobLeftPlacedIsFailedWithTheReasonWhenTheAgentRefusesItAfterRestart) {
  HWL_NEEDS_SHARED_DATA();
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const std::string id =
      placeThenKillServer(srv, a, webJob(a.hostId(), freeLoopbackPort()), fleet.root.path());
  // While no server runs, the host comes back with other GPUs: the placed one is gone.
  a.signal(SIGCONT);
  a.crash();
  a.setProbe("replay:" +
             hwl::test_fixtures::find("telemetry", "nvidia-a5000x2-smi-q-x.xml").string());
  a.start();

  srv.launch();
  auto j = waitForJobState(srv, id, "dispatch_failed", 40s);
  ASSERT_EQ(str(j.at("state")), "dispatch_failed") << bj::serialize(j) << srv.serverErr();
  const std::string reason = str(j.at("reason"));
  EXPECT_NE(reason.find("server restart"), std::string::npos) << reason;
  EXPECT_NE(reason.find("gpus[0]"), std::string::npos) << reason;
  EXPECT_TRUE(j.at("ended_ms").is_int64());
  EXPECT_TRUE(agentJobs(srv, a).empty());
  auto evs = streamEvents(srv, "job/" + id);
  EXPECT_EQ(typesOf(evs),
            (std::vector<std::string>{"job.submitted", "job.placed", "job.dispatch_failed"}));
  EXPECT_EQ(str(evs.back().at("actor")), "system");
  // Ended once: it is not tried again.
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(streamEvents(srv, "job/" + id).size(), 3u);
}

TEST(FleetHardening, CancellingAJobItsAgentDoesNotKnowEndsIt) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& a = fleet.agent;
  const int gpus = gpuCount(srv, a.hostId());
  const std::string id = submitJobOk(srv, webJob(a.hostId(), freeLoopbackPort()));
  ASSERT_EQ(str(waitForJobState(srv, id, "ready", 30s).at("state")), "ready");

  // The agent loses its record of the job (its state directory restored from before it): the
  // job's process is gone with it.
  a.crash();
  auto rec = bj::parse(readFile(a.stateDir() / "jobs" / id / "job.json")).as_object();
  ::kill(-static_cast<pid_t>(rec.at("pid").as_int64()), SIGKILL);
  fs::remove_all(a.stateDir() / "jobs" / id);
  a.start();
  ASSERT_EQ(a.call(srv, "GET", "/v1/jobs/" + id).status, 404);

  auto del = srv.request("DELETE", "/v1/jobs/" + id, srv.adminToken());
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(str(del.obj().at("state")), "cancelled");
  auto j = job(srv, id);
  EXPECT_EQ(str(j.at("state")), "cancelled") << bj::serialize(j);
  EXPECT_NE(str(j.at("reason")).find("has no such job"), std::string::npos) << bj::serialize(j);
  EXPECT_TRUE(j.at("ended_ms").is_int64());
  auto evs = streamEvents(srv, "job/" + id);
  ASSERT_EQ(str(evs.back().at("type")), "job.cancelled");
  EXPECT_EQ(str(evs.back().at("actor")).rfind("tok_", 0), 0u) << str(evs.back().at("actor"));
  EXPECT_EQ(srv.request("DELETE", "/v1/jobs/" + id, srv.adminToken()).status, 409);
  // Its GPU is free again.
  auto all = submitJob(srv, {{"command", bj::array{"/bin/true"}}, {"gpus", gpus}});
  EXPECT_EQ(all.status, 201) << all.body;
}

// An agent of our own behind a real enrolled host certificate: it serves an outbox of the test's
// choosing and records the cursor the server asks with.
class FakeAgent {
 public:
  FakeAgent(const FleetAgent& enrolled, std::vector<bj::object> entries)
      : entries_(std::move(entries)) {
    http::ServerSettings ss;
    ss.listen = "127.0.0.1:" + std::to_string(enrolled.port());
    ss.cert_file = (enrolled.stateDir() / "identity.pem").string();
    ss.key_file = ss.cert_file;
    ss.client_ca_file = (enrolled.stateDir() / "ca.crt").string();
    ss.client_cert = http::ClientCertMode::kRequired;
    ss.worker_threads = 2;
    server_ = std::make_unique<http::Server>(ss, [this](http::Request& r) { return handle(r); });
    auto s = server_->start();
    if (!s) throw std::runtime_error("fake agent: " + s.error().message);
  }
  ~FakeAgent() { server_->stop(); }
  [[nodiscard]] std::vector<int64_t> cursors() const {
    std::lock_guard lk(mu_);
    return cursors_;
  }

 private:
  http::Response handle(http::Request& r) {
    http::Response out;
    if (r.path == "/v1/outbox") {
      int64_t after = std::stoll(r.query.count("after") ? r.query.at("after") : "0");
      {
        std::lock_guard lk(mu_);
        cursors_.push_back(after);
      }
      bj::array arr;
      for (const auto& e : entries_)
        if (e.at("seq").as_int64() > after) arr.push_back(e);
      out.body = bj::serialize(
          bj::object{{"entries", std::move(arr)}, {"last_seq", entries_.back().at("seq")}});
      return out;
    }
    return http::jsonError(503, "unavailable", "no sample has been taken yet");
  }

  std::vector<bj::object> entries_;
  std::unique_ptr<http::Server> server_;
  mutable std::mutex mu_;
  std::vector<int64_t> cursors_;
};

TEST(FleetHardening, AHostCannotAppendToAnotherHostsJob) {
  OneHostFleet fleet;
  auto& srv = fleet.srv;
  auto& victim = fleet.agent;
  const std::string id = submitJobOk(srv, webJob(victim.hostId(), freeLoopbackPort()));
  ASSERT_EQ(str(waitForJobState(srv, id, "ready", 30s).at("state")), "ready");
  const auto victim_stream = streamEvents(srv, "job/" + id);

  // Mallory: a real enrollment, then a fake agent with that certificate.
  FleetAgent mallory(fleet.root.path(), "mallory", "none");
  mallory.enroll(srv);
  const std::string m = mallory.hostId();
  auto entry = [](int64_t seq, const std::string& type, bj::object data) {
    return bj::object{{"seq", seq}, {"type", type}, {"time_ms", 1}, {"data", std::move(data)}};
  };
  std::vector<bj::object> entries = {
      entry(1, "job.exited",
            {{"job_id", id},
             {"state", "exited"},
             {"exit_code", 0},
             {"ended_ms", 5},
             {"log_tail", "pwned"}}),
      entry(2, "job.started", {{"job_id", "job-doesnotexist"}, {"state", "running"}}),
      entry(3, "token.created", {{"id", "tok_evil"}, {"role", "admin"}}),
      entry(4, "job.failed", {{"job_id", "../../etc"}, {"state", "failed"}}),
      entry(5, "job.ready", {{"job_id", "mine-1"}, {"state", "exited"}}),
      entry(6, "job.exited", {{"job_id", "mine-2"}, {"state", "exited"}, {"exit_code", 3}}),
  };
  FakeAgent fake(mallory, entries);
  const std::string seen_by_server = "host/" + m;
  ASSERT_TRUE(eventually(
      [&] {
        auto c = fake.cursors();
        return !c.empty() && c.back() >= 6;
      },
      20s))
      << "the drain did not move past the refused entries";

  // The victim's job is untouched.
  EXPECT_EQ(streamEvents(srv, "job/" + id), victim_stream);
  EXPECT_EQ(str(job(srv, id).at("state")), "ready");
  EXPECT_TRUE(streamEvents(srv, "job/job-doesnotexist").empty());
  // Each refusal is on Mallory's stream, once, under the entry's seq.
  auto rejected = typedEvents(srv, "agent.rejected_entry");
  std::map<int64_t, std::string> by_seq;
  for (const auto& e : rejected) {
    const auto& d = e.at("data").as_object();
    EXPECT_EQ(str(e.at("stream")), seen_by_server);
    EXPECT_EQ(str(e.at("id")), m + ":" + std::to_string(i64(d.at("agent_seq"))));
    EXPECT_EQ(by_seq.count(i64(d.at("agent_seq"))), 0u) << "twice: " << bj::serialize(e);
    by_seq[i64(d.at("agent_seq"))] = str(d.at("entry_type")) + ": " + str(d.at("reason"));
  }
  ASSERT_EQ(by_seq.size(), 5u) << bj::serialize(bj::value_from(rejected));
  EXPECT_NE(by_seq[1].find("placed on another host"), std::string::npos) << by_seq[1];
  EXPECT_NE(by_seq[2].find("not in the ledger"), std::string::npos) << by_seq[2];
  EXPECT_NE(by_seq[3].find("not accepted"), std::string::npos) << by_seq[3];
  EXPECT_NE(by_seq[4].find("job_id"), std::string::npos) << by_seq[4];
  EXPECT_NE(by_seq[5].find("state"), std::string::npos) << by_seq[5];
  // A job started on that agent directly is its own.
  auto mine = job(srv, "mine-2");
  EXPECT_EQ(str(mine.at("host")), m);
  EXPECT_EQ(str(mine.at("state")), "exited");
  EXPECT_TRUE(streamEvents(srv, "token/tok_evil").empty());
  EXPECT_TRUE(streamEvents(srv, "job/mine-1").empty());

  // Exactly once across a restart: the cursor comes back from the ledger, nothing is redone.
  srv.stop();
  const size_t asked = fake.cursors().size();
  srv.launch();
  ASSERT_TRUE(eventually([&] { return fake.cursors().size() > asked + 2; }, 20s));
  for (size_t i = asked; i < fake.cursors().size(); ++i) EXPECT_EQ(fake.cursors()[i], 6);
  std::this_thread::sleep_for(500ms);
  auto again = typedEvents(srv, "agent.rejected_entry");
  EXPECT_EQ(again.size(), rejected.size());
  EXPECT_EQ(streamEvents(srv, "job/" + id).size(), victim_stream.size());
}

}  // namespace
}  // namespace hwl::itest::fleet
