// Enrolling agentless hosts over SSH and polling them, against a real sshd: the host-key policy
// (pin, known_hosts, trust on first use, unknown and changed keys refused), public-key
// authentication only, a jump host, the telemetry series and reachability, and requests an
// attacker would send, each refused with nothing appended.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <thread>

#include "hwl/test_fixtures.hpp"
#include "server_fixture.hpp"
#include "sshd_fixture.hpp"

namespace hwl::itest {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;
using namespace std::chrono_literals;

const fs::path kTelemetry = HWL_TELEMETRY_FIXTURES;

// A fake nvidia-smi that answers the two queries the probe makes with real captures.
void addFakeNvidiaSmi(SshdFixture& sshd) {
  const fs::path tool = sshd.addRemoteTool("nvidia-smi", kTelemetry / "nvidia-h100-query-gpu.csv");
  writeFile(tool, "#!/bin/sh\ncase \"$*\" in\n  *--query-compute-apps*) cat '" +
                      (kTelemetry / "nvidia-h100-compute-apps.csv").string() + "' ;;\n  *) cat '" +
                      (kTelemetry / "nvidia-h100-query-gpu.csv").string() + "' ;;\nesac\n");
}

template <class F>
bool eventually(F&& f, std::chrono::milliseconds timeout = 30s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return f();
}

class Agentless : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = sshdUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    sshd_ = std::make_unique<SshdFixture>(SshdOptions{.remote_bin = true});
    addFakeNvidiaSmi(*sshd_);
    sshd_->start();
    srv_.init();
    // The fixture's client keys are in its directory: the server's key directory for operators.
    writeFile(tmp_ / "config.json",
              R"({"ssh_poll_interval_ms": 1000, "ssh_key_dir": ")" + sshd_->dir().string() + "\"}");
    srv_.start({"--config", (tmp_ / "config.json").string()});
  }

  bj::object request(const std::string& extra = "") const {
    std::string body = R"({"address":"127.0.0.1:)" + std::to_string(sshd_->port()) +
                       R"(","user":")" + sshd_->user() + R"(","key_file":")" +
                       sshd_->clientKey().string() + "\"" + extra + "}";
    return bj::parse(body).as_object();
  }
  Http enroll(const bj::object& body, const std::string& token = "") const {
    return srv_.request("POST", "/v1/hosts/ssh", token.empty() ? srv_.adminToken() : token,
                        bj::serialize(body));
  }
  std::vector<bj::object> eventsOfType(const std::string& type) const {
    return srv_.allEvents("&type=" + type);
  }
  bj::object hostView(const std::string& id) const { return srv_.get("/v1/hosts/" + id).obj(); }

  TempDir tmp_;
  LedgerServer srv_{tmp_.path(), "data"};
  std::unique_ptr<SshdFixture> sshd_;
};

TEST_F(Agentless, PinnedHostIsEnrolledWithItsGpusAndPolledIntoTheTimeSeries) {
  auto body = request();
  body["fingerprint"] = sshd_->hostKeyFingerprint();
  body["name"] = "gpu-ssh-1";
  auto r = enroll(body);
  ASSERT_EQ(r.status, 201) << r.body << r.err;
  auto h = r.obj();
  const std::string id(h.at("host_id").as_string());
  EXPECT_EQ(h.at("kind").as_string(), "ssh");
  EXPECT_EQ(h.at("host_key_fingerprint").as_string(), sshd_->hostKeyFingerprint());
  EXPECT_EQ(h.at("ssh").at("host_key_alg").as_string(), "ssh-ed25519");
  ASSERT_EQ(h.at("gpus").as_array().size(), 1u) << r.body;
  EXPECT_EQ(h.at("gpus").as_array()[0].at("name").as_string(), "NVIDIA H100 80GB HBM3");
  // The private key is not recorded anywhere: the event names the key file, nothing more.
  auto enrolled = eventsOfType("host.enrolled_ssh");
  ASSERT_EQ(enrolled.size(), 1u);
  const std::string data = bj::serialize(enrolled[0].at("data"));
  EXPECT_EQ(data.find("PRIVATE KEY"), std::string::npos);
  EXPECT_NE(data.find("\"host_key\":\"" + sshd_->hostKeyFingerprint() + "\""), std::string::npos)
      << data;

  // Polled: reachable, with the GPU's sample from the capture.
  ASSERT_TRUE(eventually([&] {
    auto v = hostView(id);
    return v.at("state").as_string() == "reachable" && v.at("gpus").as_array().size() == 1 &&
           v.at("gpus").as_array()[0].as_object().contains("sample");
  })) << bj::serialize(hostView(id));
  auto v = hostView(id);
  EXPECT_EQ(v.at("kind").as_string(), "ssh");
  EXPECT_EQ(v.at("ssh").at("user").as_string(), sshd_->user());
  const auto& sample = v.at("gpus").as_array()[0].at("sample").as_object();
  EXPECT_EQ(sample.at("memory_used_bytes").to_number<int64_t>(), int64_t{19818} << 20);
  // The time series has points for it (the same store agent hosts use).
  ASSERT_TRUE(eventually([&] {
    auto t = srv_.get("/v1/telemetry?host=" + id);
    return t.status == 200 && t.body.find("\"points\"") != std::string::npos &&
           t.body.find("GPU-00000000") != std::string::npos;
  })) << srv_.get("/v1/telemetry?host=" + id).body;
  // `hwledger hosts` lists it with kind ssh.
  auto out = cli({"hosts"}, srv_.cliEnv(srv_.adminToken()));
  ASSERT_EQ(out.code(), 0) << out.err;
  bool listed = false;
  for (const auto& l : lines(out.out))
    if (l.find(id) != std::string::npos && l.find(" ssh ") != std::string::npos) listed = true;
  EXPECT_TRUE(listed) << out.out;
  // One persistent session for the polls (polled every second here): sshd accepted two
  // connections in all, the enrollment's and the poller's.
  std::this_thread::sleep_for(3500ms);
  const std::string log = sshd_->log();
  size_t accepted = 0;
  for (size_t at = log.find("Accepted publickey"); at != std::string::npos;
       at = log.find("Accepted publickey", at + 1))
    ++accepted;
  EXPECT_EQ(accepted, 2u) << log;
  // Public key only: sshd saw no password or keyboard-interactive attempt, on any connection.
  EXPECT_NE(log.find("userauth-request for user " + sshd_->user() +
                     " service ssh-connection "
                     "method publickey"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("method password"), std::string::npos);
  EXPECT_EQ(log.find("method keyboard-interactive"), std::string::npos);
}

TEST_F(Agentless, UnknownHostKeyIsRefusedWithItsFingerprintAndNothingIsAppended) {
  const int64_t before = srv_.eventCount();
  auto r = enroll(request());
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.obj().at("error").at("code").as_string(), "ssh_hostkey_unknown") << r.body;
  EXPECT_NE(r.errorMessage().find(sshd_->hostKeyFingerprint()), std::string::npos) << r.body;
  EXPECT_EQ(srv_.eventCount(), before);
  // Refused before authentication: sshd never saw a user name.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sshd_->log().find("userauth-request"), std::string::npos) << sshd_->log();
}

TEST_F(Agentless, TrustOnFirstUseRecordsTheKeyInKnownHostsWhichThenSuffices) {
  auto body = request();
  body["trust_on_first_use"] = true;
  auto r = enroll(body);
  ASSERT_EQ(r.status, 201) << r.body;
  // OpenSSH's own tool finds it in DATA/known_hosts under [127.0.0.1]:PORT.
  auto found = run({"ssh-keygen", "-F", "[127.0.0.1]:" + std::to_string(sshd_->port()), "-f",
                    (srv_.dataDir() / "known_hosts").string()});
  EXPECT_EQ(found.code(), 0) << found.out << found.err;
  // The same host again is refused while it is enrolled (its GPUs would count twice)...
  auto twice = enroll(request(R"(,"name":"second")"));
  EXPECT_EQ(twice.status, 409) << twice.body;
  EXPECT_EQ(twice.obj().at("error").at("code").as_string(), "host_exists");
  // ...and, once revoked, enrolled again without trust on first use: known_hosts decides.
  const std::string id(r.obj().at("host_id").as_string());
  ASSERT_EQ(srv_.post("/v1/hosts/" + id + "/revoke", "{}").status, 200);
  auto again = enroll(request(R"(,"name":"second")"));
  EXPECT_EQ(again.status, 201) << again.body;
}

TEST_F(Agentless, ChangedHostKeyIsRefusedBeforeAuthenticationAndRecordedOnce) {
  auto body = request();
  body["fingerprint"] = sshd_->hostKeyFingerprint();
  auto r = enroll(body);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id(r.obj().at("host_id").as_string());
  ASSERT_TRUE(eventually([&] { return hostView(id).at("state").as_string() == "reachable"; }));
  const std::string old_fp = sshd_->hostKeyFingerprint();
  const size_t log_before = sshd_->log().size();
  sshd_->restartWithNewHostKey();
  const std::string new_fp = sshd_->hostKeyFingerprint();
  ASSERT_NE(old_fp, new_fp);
  // The poller refuses the new key: ssh.hostkey_mismatch with the key shown, and after three
  // refused polls the host is unreachable.
  ASSERT_TRUE(eventually([&] { return hostView(id).at("state").as_string() == "unreachable"; }))
      << bj::serialize(hostView(id));
  auto mismatches = eventsOfType("ssh.hostkey_mismatch");
  ASSERT_EQ(mismatches.size(), 1u) << "one event per key shown, however many polls";
  EXPECT_EQ(mismatches[0].at("data").at("presented_fingerprint").as_string(), new_fp);
  EXPECT_EQ(mismatches[0].at("stream").as_string(), "host/" + id);
  // None of the refused connections got as far as authentication.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sshd_->log().substr(log_before).find("userauth-request"), std::string::npos);

  // Revoked and enrolled again with the old pin: refused too, and recorded on the ledger's
  // stream.
  ASSERT_EQ(srv_.post("/v1/hosts/" + id + "/revoke", "{}").status, 200);
  auto again = enroll(body);
  EXPECT_EQ(again.status, 502) << again.body;
  EXPECT_EQ(again.obj().at("error").at("code").as_string(), "ssh_hostkey_mismatch");
  EXPECT_EQ(eventsOfType("ssh.hostkey_mismatch").size(), 2u);
  EXPECT_EQ(eventsOfType("host.enrolled_ssh").size(), 1u);
}

TEST_F(Agentless, StoppedSshdMakesTheHostUnreachableAndItsReturnReachable) {
  auto body = request();
  body["fingerprint"] = sshd_->hostKeyFingerprint();
  auto r = enroll(body);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id(r.obj().at("host_id").as_string());
  ASSERT_TRUE(eventually([&] { return hostView(id).at("state").as_string() == "reachable"; }));
  const uint16_t port = sshd_->port();
  sshd_->stop();
  ASSERT_TRUE(eventually([&] { return hostView(id).at("state").as_string() == "unreachable"; }))
      << bj::serialize(hostView(id));
  auto down = eventsOfType("host.unreachable");
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].at("data").at("missed_scrapes").as_int64(), 3);
  // Same port, same key: back.
  sshd_->restartOnPort(port);
  ASSERT_TRUE(eventually([&] { return hostView(id).at("state").as_string() == "reachable"; }))
      << bj::serialize(hostView(id));
  EXPECT_EQ(eventsOfType("host.reachable").size(), 2u);
}

TEST_F(Agentless, JumpHostIsCrossedWithBothHostKeysVerified) {
  SshdFixture bastion(SshdOptions{.allow_tcp_forwarding = true});
  bastion.authorize(sshd_->clientKey().string() + ".pub");
  bastion.start();
  auto body = request();
  body["fingerprint"] = sshd_->hostKeyFingerprint();
  body["jump"] = sshd_->user() + "@127.0.0.1:" + std::to_string(bastion.port());
  // The bastion's key is neither pinned nor known: refused, nothing appended.
  const int64_t before = srv_.eventCount();
  auto refused = enroll(body);
  EXPECT_EQ(refused.status, 502) << refused.body;
  EXPECT_EQ(refused.obj().at("error").at("code").as_string(), "ssh_hostkey_unknown");
  EXPECT_NE(refused.errorMessage().find(bastion.hostKeyFingerprint()), std::string::npos);
  EXPECT_EQ(srv_.eventCount(), before);
  body["jump_fingerprint"] = bastion.hostKeyFingerprint();
  auto r = enroll(body);
  ASSERT_EQ(r.status, 201) << r.body;
  const auto enrolled = r.obj();
  const auto& ssh = enrolled.at("ssh").as_object();
  EXPECT_EQ(ssh.at("jump_host_key").as_string(), bastion.hostKeyFingerprint());
  EXPECT_EQ(ssh.at("host_key").as_string(), sshd_->hostKeyFingerprint());
  const std::string id(enrolled.at("host_id").as_string());
  ASSERT_TRUE(eventually([&] { return hostView(id).at("state").as_string() == "reachable"; }));
  // The target saw the connection come from the bastion's direct-tcpip channel.
  std::this_thread::sleep_for(300ms);
  EXPECT_NE(bastion.log().find("direct-tcpip"), std::string::npos) << bastion.log();
}

TEST_F(Agentless, KeySentAsPemIsKeptPrivateUntilTheHostIsRevoked) {
  auto body = request();
  body.erase("key_file");
  body["key_pem"] = readFile(sshd_->clientKey());
  body["fingerprint"] = sshd_->hostKeyFingerprint();
  auto r = enroll(body);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id(r.obj().at("host_id").as_string());
  const fs::path kept = srv_.dataDir() / "ssh" / "keys" / (id + ".key");
  ASSERT_TRUE(fs::exists(kept));
  EXPECT_EQ(fs::status(kept).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(fs::status(kept.parent_path()).permissions() & fs::perms::all, fs::perms::owner_all);
  // The key is in no event, and the server polls with the kept copy.
  for (const auto& e : srv_.allEvents())
    EXPECT_EQ(bj::serialize(e).find("PRIVATE KEY"), std::string::npos) << bj::serialize(e);
  ASSERT_TRUE(eventually([&] { return hostView(id).at("state").as_string() == "reachable"; }));
  // Revoked: the key is removed and the host is no longer polled.
  auto rev = srv_.post("/v1/hosts/" + id + "/revoke", "{}");
  ASSERT_EQ(rev.status, 200) << rev.body;
  EXPECT_FALSE(fs::exists(kept));
  std::this_thread::sleep_for(2s);  // a poll already under way ends
  const size_t log_at = sshd_->log().size();
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(sshd_->log().substr(log_at).find("Accepted publickey"), std::string::npos)
      << sshd_->log().substr(log_at);
}

// Every recorded nvidia-smi --query-gpu capture and rocm-smi --json report of ../shared, printed by
// the host's tools over SSH, enrolls with the GPUs the capture holds (the agent's parsers).
TEST_F(Agentless, EveryRecordedCaptureEnrollsWithItsGpus) {
  HWL_NEEDS_SHARED_DATA();
  const fs::path dir = test_fixtures::sharedData() / "telemetry";
  const fs::path current = sshd_->dir() / "current";
  // Both tools print the file named in `current` when it is theirs, else fail as on a host
  // without that vendor's driver.
  for (const char* tool : {"nvidia-smi", "rocm-smi"}) {
    const std::string kind = tool == std::string("nvidia-smi") ? "query-gpu" : "rocm-smi";
    writeFile(sshd_->dir() / "bin" / tool,
              "#!/bin/sh\nf=$(cat '" + current.string() + "')\ncase \"$f\" in\n  *" + kind +
                  "*) case \"$*\" in *--query-compute-apps*) exit 0;; esac; cat \"$f\" ;;\n"
                  "  *) echo 'no such device' >&2; exit 9 ;;\nesac\n");
    fs::permissions(sshd_->dir() / "bin" / tool, fs::perms::owner_all);
  }
  int tried = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool nvidia = name.find("-query-gpu") != std::string::npos &&
                        name.find("idle") == std::string::npos && e.path().extension() == ".csv";
    const bool amd = name.find("rocm-smi") != std::string::npos && e.path().extension() == ".json";
    if (!nvidia && !amd) continue;
    writeFile(current, e.path().string());
    size_t expected = 0;
    if (nvidia) {
      expected = lines(readFile(e.path())).size() - 1;  // rows after the header
    } else {
      auto report = bj::parse(readFile(e.path())).as_object();
      for (const auto& [k, v] : report)
        if (k.starts_with("card")) ++expected;
    }
    auto body = request(R"(,"name":")" + name + "\"");
    body["fingerprint"] = sshd_->hostKeyFingerprint();
    auto r = enroll(body);
    ASSERT_EQ(r.status, 201) << name << ": " << r.body;
    auto h = r.obj();
    EXPECT_EQ(h.at("platform").at("gpu_backend").as_string(), nvidia ? "nvidia-smi" : "rocm-smi")
        << name;
    EXPECT_EQ(h.at("gpus").as_array().size(), expected) << name << ": " << r.body;
    ASSERT_EQ(
        srv_.post("/v1/hosts/" + std::string(h.at("host_id").as_string()) + "/revoke", "{}").status,
        200);
    ++tried;
  }
  EXPECT_GE(tried, 10);
}

TEST_F(Agentless, RequestsAnAttackerWouldSendAreRefusedWithNothingAppended) {
  const int64_t before = srv_.eventCount();
  const std::string port = std::to_string(sshd_->port());
  const std::string user = sshd_->user();
  const std::string key = sshd_->clientKey().string();
  struct Case {
    std::string why;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"a password",
       R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user + R"(","password":"hunter2"})"},
      {"no key at all", R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user + R"("})"},
      {"two key sources", R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user +
                              R"(","key_file":")" + key + R"(","use_agent":true})"},
      {"an option as the host", R"({"address":"-oProxyCommand=touch /tmp/x","user":")" + user +
                                    R"(","key_file":")" + key + R"("})"},
      {"shell in the user", R"({"address":"127.0.0.1:)" + port +
                                R"(","user":"root;touch /tmp/x","key_file":")" + key + R"("})"},
      {"a relative key path", R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user +
                                  R"(","key_file":"id_ed25519"})"},
      {"an MD5 pin",
       R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user + R"(","key_file":")" + key +
           R"(","fingerprint":"MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"})"},
      {"a passphrase for an agentless host", R"({"address":"127.0.0.1:)" + port + R"(","user":")" +
                                                 user + R"(","key_file":")" + key +
                                                 R"(","passphrase":"x"})"},
      {"a port out of range",
       R"({"address":"127.0.0.1:70000","user":")" + user + R"(","key_file":")" + key + R"("})"},
      {"a jump host with a shell in it", R"({"address":"127.0.0.1:)" + port + R"(","user":")" +
                                             user + R"(","key_file":")" + key +
                                             R"(","jump":"a@b;id"})"},
      {"an unknown mode", R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user +
                              R"(","key_file":")" + key + R"(","mode":"root"})"},
      {"a device as the key (it would hang the reader)", R"({"address":"127.0.0.1:)" + port +
                                                             R"(","user":")" + user +
                                                             R"(","key_file":"/dev/zero"})"},
      {"the server's own CA key", R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user +
                                      R"(","key_file":")" + (srv_.dataDir() / "ca.key").string() +
                                      R"("})"},
      {"a path climbing out of the key directory",
       R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user + R"(","key_file":")" +
           (sshd_->dir() / ".." / "x" / "id").string() + R"("})"},
      {"an agent socket of the request's choosing",
       R"({"address":"127.0.0.1:)" + port + R"(","user":")" + user +
           R"(","use_agent":true,"agent_socket":"/run/systemd/journal/stdout"})"},
      {"a scope id in the host", R"({"address":"[::1%0,victim.example]:22","user":")" + user +
                                     R"(","key_file":")" + key + R"("})"},
  };
  for (const auto& c : cases) {
    auto r = srv_.request("POST", "/v1/hosts/ssh", srv_.adminToken(), c.body);
    EXPECT_EQ(r.status, 400) << c.why << ": " << r.body;
  }
  // A viewer may not enroll hosts.
  auto viewer = srv_.createToken("viewer");
  auto body = request();
  body["fingerprint"] = sshd_->hostKeyFingerprint();
  EXPECT_EQ(enroll(body, viewer.token).status, 403);
  // A symlink in the key directory to a device is not followed: refused at once, no hang.
  fs::create_symlink("/dev/zero", sshd_->dir() / "zero");
  body["key_file"] = (sshd_->dir() / "zero").string();
  auto dev = enroll(body);
  EXPECT_EQ(dev.status, 502) << dev.body;
  EXPECT_EQ(dev.obj().at("error").at("code").as_string(), "ssh_key_unusable") << dev.body;
  // The wrong key (not in authorized_keys) gets in nowhere.
  body["key_file"] = sshd_->unauthorizedClientKey().string();
  auto wrong = enroll(body);
  EXPECT_EQ(wrong.status, 502) << wrong.body;
  EXPECT_EQ(wrong.obj().at("error").at("code").as_string(), "ssh_auth_failed") << wrong.body;
  // Appended: the viewer token's creation and the refusal of its request (auth.denied); nothing
  // for any of the refused enrollments.
  EXPECT_EQ(srv_.eventCount(), before + 2);
  EXPECT_EQ(eventsOfType("host.enrolled_ssh").size(), 0u);
  EXPECT_FALSE(fs::exists("/tmp/x") &&
               fs::last_write_time("/tmp/x") > fs::file_time_type::clock::now() - 5min);
}

}  // namespace
}  // namespace hwl::itest
