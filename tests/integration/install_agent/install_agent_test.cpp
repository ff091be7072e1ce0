// install-agent enrollment end to end: the real hwledger-server installs the real hwledger-agent
// over SSH (a real sshd on loopback, this same machine) into a temporary install root, the agent
// enrolls itself with a single-use token, and the server scrapes it over mutual TLS. Failures at
// each kind of step leave nothing behind: no files, no usable token, no enrolled host.
//
// These machines do not run systemd as PID 1: the installed unit is checked with
// `systemd-analyze verify` and the test starts the agent exactly as the unit's ExecStart says;
// the systemctl step itself must fail here, clearly, and undo everything.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "server_fixture.hpp"
#include "sshd_fixture.hpp"

namespace hwl::itest {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string str(const bj::value& v) { return std::string(v.as_string()); }

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

void makeTraversable(const fs::path& p) {
  fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec);
}

// Every path under `dir`, relative, sorted.
std::vector<std::string> treeOf(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<bj::object> ofType(const std::vector<bj::object>& events, const std::string& type) {
  std::vector<bj::object> out;
  for (const auto& e : events)
    if (str(e.at("type")) == type) out.push_back(e);
  return out;
}

std::string trimmedUname() {
  auto r = run({"uname", "-m"});
  std::string s = r.out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The answer as proto/openapi.yaml describes POST /v1/hosts/ssh (tests/support/openapi_check.py).
void expectMatchesSpec(const Http& r, const fs::path& dir) {
  const std::string repo = HWL_INSTALL_REPO_ROOT;
  const fs::path records = dir / "records.jsonl";
  writeFile(records, bj::serialize(bj::object{{"method", "POST"},
                                              {"path", "/v1/hosts/ssh"},
                                              {"status", r.status},
                                              {"content_type", "application/json"},
                                              {"body", r.body}}) +
                         "\n");
  auto v = run({"python3", repo + "/tests/support/openapi_check.py", "validate",
                repo + "/proto/openapi.yaml", records.string()});
  if (v.status.exited && v.status.code == 77) {
    std::cout << "[  SKIPPED ] the OpenAPI check: " << v.err;
    return;
  }
  EXPECT_TRUE(v.status.success()) << v.out << v.err;
}

// token.created events of enrollment tokens (init's admin token is one too).
std::vector<bj::object> enrollTokens(const std::vector<bj::object>& events) {
  std::vector<bj::object> out;
  for (const auto& t : ofType(events, "token.created")) {
    const auto& d = t.at("data").as_object();
    if (d.contains("kind") && str(d.at("kind")) == "enroll") out.push_back(t);
  }
  return out;
}

class InstallAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = sshdUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    if (::geteuid() != 0)
      GTEST_SKIP() << "the installer's privileged steps need root or passwordless sudo for the "
                      "SSH user (the test's own user here)";
    makeTraversable(root_.path());
    sshd_ = std::make_unique<SshdFixture>(sshdOptions());
    sshd_->start();
    fs::create_directories(hostRoot());
    makeTraversable(hostRoot());
    // A copy without debug sections: the same program, a tenth of the bytes to copy.
    agent_bin_ = root_ / "hwledger-agent";
    runChecked({"objcopy", "--strip-debug", HWL_INSTALL_AGENT_BIN, agent_bin_.string()});
    server_ = std::make_unique<LedgerServer>(root_.path(), "server");
    server_->init();
    startServer("");
  }

  void TearDown() override {
    if (agent_) agent_->kill();
  }

  virtual SshdOptions sshdOptions() { return {}; }

  void startServer(const std::string& public_url) {
    if (server_->running()) server_->stop();
    // key_file must be in ssh_key_dir: the fixture's client keys are there.
    bj::object cfg{{"agent_binary", agent_bin_.string()},
                   {"scrape_timeout_ms", 1000},
                   {"ssh_key_dir", sshd_->dir().string()}};
    if (!public_url.empty()) cfg["public_url"] = public_url;
    const fs::path file = root_ / "server.json";
    writeFile(file, bj::serialize(cfg));
    server_->start({"--config", file.string(), "--telemetry-interval-ms", "500",
                    "--outbox-interval-ms", "300"});
  }

  fs::path hostRoot() const { return root_ / "host-root"; }

  bj::object request() {
    agent_port_ = freeLoopbackPort();
    return bj::object{{"address", "127.0.0.1:" + std::to_string(sshd_->port())},
                      {"user", sshd_->user()},
                      {"key_file", sshd_->clientKey().string()},
                      {"fingerprint", sshd_->hostKeyFingerprint()},
                      {"mode", "install-agent"},
                      {"name", "gpu-installed"},
                      {"install_root", hostRoot().string()},
                      {"job_user", "nobody"},
                      {"agent_listen", "127.0.0.1:" + std::to_string(agent_port_)},
                      {"enable_unit", false}};
  }

  Http install(const bj::object& body) {
    return server_->post("/v1/hosts/ssh", bj::serialize(body));
  }

  // ExecStart= of the installed unit, split as systemd would (it holds no quotes).
  std::vector<std::string> execStart(const fs::path& unit) {
    std::istringstream in(readFile(unit));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("ExecStart=", 0) != 0) continue;
      std::istringstream words(line.substr(10));
      std::vector<std::string> argv;
      for (std::string w; words >> w;) argv.push_back(w);
      return argv;
    }
    return {};
  }

  // The host as GET /v1/hosts/{id} shows it, once `pred` holds (or the last one seen).
  bj::object waitForHost(const std::string& id, const std::function<bool(const bj::object&)>& pred,
                         std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    bj::object last;
    while (std::chrono::steady_clock::now() < until) {
      auto h = server_->get("/v1/hosts/" + id);
      if (h.status == 200) {
        last = h.obj();
        if (pred(last)) return last;
      }
      std::this_thread::sleep_for(200ms);
    }
    return last;
  }

  // After a failed installation: nothing on the host, no host in the ledger, every enrollment
  // token that was made revoked.
  void expectNothingLeft(int64_t events_before, const std::vector<std::string>& tree_before = {}) {
    EXPECT_EQ(treeOf(hostRoot()), tree_before);
    auto events = server_->allEvents();
    std::vector<bj::object> since;
    for (const auto& e : events)
      if (e.at("seq").as_int64() > events_before) since.push_back(e);
    EXPECT_TRUE(ofType(since, "host.enrolled").empty());
    EXPECT_TRUE(ofType(since, "host.agent_installed").empty());
    EXPECT_TRUE(ofType(since, "token.used").empty());
    const auto created = enrollTokens(since);
    const auto revoked = ofType(since, "token.revoked");
    ASSERT_EQ(created.size(), revoked.size());
    for (size_t i = 0; i < created.size(); ++i)
      EXPECT_EQ(str(created[i].at("data").at("id")), str(revoked[i].at("data").at("id")));
    auto hosts = server_->get("/v1/hosts");
    ASSERT_EQ(hosts.status, 200);
    EXPECT_TRUE(hosts.obj().at("hosts").as_array().empty()) << hosts.body;
  }

  TempDir root_{"hwl-install"};
  std::unique_ptr<SshdFixture> sshd_;
  std::unique_ptr<LedgerServer> server_;
  std::unique_ptr<Process> agent_;
  fs::path agent_bin_;
  uint16_t agent_port_ = 0;
};

TEST_F(InstallAgent, IntoATemporaryRootThenScrapedOverMutualTls) {
  // The encrypted key, sent as PEM with its passphrase: used for this connection only.
  bj::object body = request();
  body.erase("key_file");
  body["key_pem"] = readFile(sshd_->encryptedClientKey());
  body["passphrase"] = SshdFixture::kPassphrase;
  auto r = install(body);
  ASSERT_EQ(r.status, 201) << r.body << server_->serverErr();
  expectMatchesSpec(r, root_.path());
  const auto answer = r.obj();
  const std::string id = str(answer.at("host_id"));
  EXPECT_EQ(str(answer.at("kind")), "agent");
  EXPECT_EQ(str(answer.at("address")), "127.0.0.1:" + std::to_string(agent_port_));
  EXPECT_EQ(str(answer.at("host_key_fingerprint")), sshd_->hostKeyFingerprint());

  // The layout of deploy/install-agent.sh, under the install root.
  const fs::path R = hostRoot();
  const fs::path bin = R / "usr/local/bin/hwledger-agent";
  const fs::path unit = R / "etc/systemd/system/hwledger-agent.service";
  const fs::path config = R / "etc/hwledger/agent.json";
  ASSERT_TRUE(fs::exists(bin));
  EXPECT_EQ(readFile(bin), readFile(agent_bin_));
  EXPECT_EQ(fs::status(bin).permissions() & fs::perms::all, static_cast<fs::perms>(0755));
  EXPECT_EQ(fs::status(config).permissions() & fs::perms::all, static_cast<fs::perms>(0640));
  EXPECT_EQ(fs::status(R / "var/lib/hwledger-agent").permissions() & fs::perms::all,
            static_cast<fs::perms>(0700));
  EXPECT_TRUE(fs::exists(R / "var/lib/hwledger-agent/enrollment.json"));
  const auto cfg = bj::parse(readFile(config)).as_object();
  EXPECT_EQ(str(cfg.at("state_dir")), (R / "var/lib/hwledger-agent").string());
  EXPECT_EQ(str(cfg.at("jobs_root")), (R / "var/lib/hwledger-jobs").string());
  EXPECT_EQ(str(cfg.at("job_user")), "nobody");
  EXPECT_EQ(str(cfg.at("listen")), "127.0.0.1:" + std::to_string(agent_port_));
  const std::string unit_text = readFile(unit);
  EXPECT_TRUE(contains(
      unit_text, "ConditionPathExists=" + (R / "var/lib/hwledger-agent/enrollment.json").string()));
  EXPECT_TRUE(contains(unit_text, "NoNewPrivileges=yes"));  // the hardened unit, not another
  const auto argv = execStart(unit);
  ASSERT_EQ(argv, (std::vector<std::string>{bin.string(), "run", "--config", config.string()}));

  if (::access("/usr/bin/systemd-analyze", X_OK) != 0) {
    std::cout << "[  SKIPPED ] systemd-analyze verify: systemd-analyze is not installed\n";
  } else {
    auto v = run({"systemd-analyze", "verify", unit.string()});
    EXPECT_TRUE(v.status.success()) << v.out << v.err;
  }

  // The agent as the unit would start it; the server then scrapes it.
  SpawnOptions so;
  so.stdout_file = root_ / "agent.out";
  so.stderr_file = root_ / "agent.err";
  agent_ = std::make_unique<Process>(argv, so);
  ASSERT_TRUE(agent_->waitForOutput("listening on https://", 20s)) << agent_->err();
  const auto host = waitForHost(
      id, [](const bj::object& h) { return str(h.at("state")) == "reachable"; }, 30s);
  ASSERT_FALSE(host.empty());
  EXPECT_EQ(str(host.at("state")), "reachable") << bj::serialize(host);
  EXPECT_EQ(str(host.at("kind")), "agent");
  EXPECT_EQ(str(host.at("name")), "gpu-installed");
  EXPECT_TRUE(host.at("connected").as_bool());

  const auto events = server_->allEvents();
  const auto installed = ofType(events, "host.agent_installed");
  ASSERT_EQ(installed.size(), 1u);
  const auto& data = installed[0].at("data").as_object();
  EXPECT_EQ(str(installed[0].at("stream")), "host/" + id);
  EXPECT_EQ(str(data.at("host_id")), id);
  EXPECT_EQ(str(data.at("address")), "127.0.0.1:" + std::to_string(sshd_->port()));
  EXPECT_EQ(str(data.at("host_key_fingerprint")), sshd_->hostKeyFingerprint());
  EXPECT_EQ(str(data.at("arch")), trimmedUname());
  EXPECT_EQ(str(data.at("install_root")), R.string());
  EXPECT_FALSE(data.at("unit_enabled").as_bool());
  const auto& steps = data.at("steps").as_array();
  for (const char* s : {"arch", "preflight", "upload binary", "upload config", "upload unit",
                        "install", "token", "enroll", "record"})
    EXPECT_NE(std::find(steps.begin(), steps.end(), bj::value(s)), steps.end()) << s;
  EXPECT_EQ(std::find(steps.begin(), steps.end(), bj::value("enable")), steps.end());
  // The agent enrolled itself with the one token made for it.
  const auto enrolled = ofType(events, "host.enrolled");
  ASSERT_EQ(enrolled.size(), 1u);
  const auto enroll_tokens = enrollTokens(events);
  ASSERT_EQ(enroll_tokens.size(), 1u);
  EXPECT_EQ(str(enrolled[0].at("data").at("token_id")), str(enroll_tokens[0].at("data").at("id")));
  EXPECT_EQ(str(data.at("token_id")), str(enroll_tokens[0].at("data").at("id")));

  // No SSH credential is kept: no key file, and the passphrase is nowhere in what the server
  // wrote.
  const fs::path keys = server_->dataDir() / "ssh" / "keys";
  EXPECT_TRUE(!fs::exists(keys) || fs::is_empty(keys));
  for (const auto& e : fs::recursive_directory_iterator(root_.path())) {
    if (!e.is_regular_file() || e.path() == sshd_->encryptedClientKey()) continue;
    if (e.path().string().rfind(sshd_->dir().string(), 0) == 0) continue;
    EXPECT_FALSE(contains(readFile(e.path()), SshdFixture::kPassphrase)) << e.path();
  }
  EXPECT_FALSE(contains(server_->serverOut() + server_->serverErr(), SshdFixture::kPassphrase));
}

TEST_F(InstallAgent, FromTheCliWithAnOperatorToken) {
  const fs::path pass = root_ / "passphrase";
  writeFile(pass, std::string(SshdFixture::kPassphrase) + "\n");
  const uint16_t port = freeLoopbackPort();
  const auto op = server_->createToken("operator");
  auto r = cli({"hosts", "add-ssh", sshd_->user() + "@127.0.0.1:" + std::to_string(sshd_->port()),
                "--key", sshd_->encryptedClientKey().string(), "--passphrase-file", pass.string(),
                "--fingerprint", sshd_->hostKeyFingerprint(), "--name", "from-cli",
                "--install-agent", "--install-root", hostRoot().string(), "--job-user", "nobody",
                "--agent-listen", "127.0.0.1:" + std::to_string(port), "--no-enable"},
               server_->cliEnv(op.token));
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "(from-cli, agent) at 127.0.0.1:" + std::to_string(port))) << r.out;
  EXPECT_TRUE(
      contains(r.out, "installed " + (hostRoot() / "usr/local/bin/hwledger-agent").string()))
      << r.out;
  EXPECT_TRUE(contains(r.out, "not enabled")) << r.out;
  EXPECT_TRUE(fs::exists(hostRoot() / "var/lib/hwledger-agent/enrollment.json"));
  const auto installed = ofType(server_->allEvents(), "host.agent_installed");
  ASSERT_EQ(installed.size(), 1u);
  EXPECT_EQ(str(installed[0].at("actor")), op.id);

  // The install-agent flags need --install-agent.
  auto bad = cli({"hosts", "add-ssh", sshd_->user() + "@127.0.0.1", "--server-key",
                  sshd_->clientKey().string(), "--install-root", hostRoot().string()},
                 server_->cliEnv(op.token));
  EXPECT_FALSE(bad.status.success());
  EXPECT_TRUE(contains(bad.err, "go with --install-agent")) << bad.err;
}

TEST_F(InstallAgent, SystemctlFailsWithoutSystemdAndLeavesNothing) {
  if (fs::exists("/run/systemd/system"))
    GTEST_SKIP() << "systemd runs on this machine: the installer would enable the unit here";
  const int64_t before = server_->eventCount();
  bj::object body = request();
  body.erase("enable_unit");  // the default: systemctl enable --now
  auto r = install(body);
  ASSERT_EQ(r.status, 412) << r.body;
  expectMatchesSpec(r, root_.path());
  const std::string msg = r.errorMessage();
  EXPECT_TRUE(contains(msg, "step \"systemctl\"")) << msg;
  EXPECT_TRUE(contains(msg, "systemd is not running on this host")) << msg;
  EXPECT_TRUE(contains(msg, "undone")) << msg;
  const auto err = r.obj().at("error").as_object();
  EXPECT_EQ(str(err.at("step")), "systemctl") << r.body;
  EXPECT_FALSE(err.at("removed").as_array().empty()) << r.body;  // files had been copied
  EXPECT_TRUE(err.at("not_undone").as_array().empty()) << r.body;
  expectNothingLeft(before);
  // Nothing was enrolled: no token was even made for a host that cannot run the unit.
  EXPECT_TRUE(enrollTokens(server_->allEvents()).empty());
}

TEST_F(InstallAgent, AFailedEnrollmentRevokesTheTokenAndRemovesEverything) {
  // The agent is sent to a server address where nothing listens.
  startServer("https://127.0.0.1:" + std::to_string(freeLoopbackPort()));
  // Directories that were there before stay: the rollback removes only what it made.
  fs::create_directories(hostRoot() / "usr/local/bin");
  fs::create_directories(hostRoot() / "var/lib/hwledger-jobs");
  writeFile(hostRoot() / "usr/local/bin/other-tool", "not ours");
  const auto tree = treeOf(hostRoot());
  const int64_t before = server_->eventCount();
  auto r = install(request());
  ASSERT_EQ(r.status, 502) << r.body;
  expectMatchesSpec(r, root_.path());
  const std::string msg = r.errorMessage();
  EXPECT_TRUE(contains(msg, "step \"enroll\"")) << msg;
  EXPECT_TRUE(contains(msg, "hwledger-agent enroll failed")) << msg;
  EXPECT_TRUE(contains(msg, "revoked token enr_")) << msg;
  expectNothingLeft(before, tree);
  EXPECT_EQ(readFile(hostRoot() / "usr/local/bin/other-tool"), "not ours");
  const auto created = enrollTokens(server_->allEvents());
  ASSERT_EQ(created.size(), 1u);  // one token, made for this host, and revoked
}

TEST_F(InstallAgent, AWrongPassphraseFailsAtConnectAndAppendsNothing) {
  const int64_t before = server_->eventCount();
  bj::object body = request();
  body.erase("key_file");
  body["key_pem"] = readFile(sshd_->encryptedClientKey());
  body["passphrase"] = "not the passphrase";
  auto r = install(body);
  ASSERT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.errorMessage().rfind("connect: ", 0), 0u) << r.body;
  EXPECT_EQ(server_->eventCount(), before);
  EXPECT_TRUE(treeOf(hostRoot()).empty());
  EXPECT_FALSE(contains(server_->serverOut() + server_->serverErr(), "not the passphrase"));
}

TEST_F(InstallAgent, ARootThatIsNotADirectoryOrAnExistingAgentIsRefusedBeforeCopying) {
  const int64_t before = server_->eventCount();
  bj::object body = request();
  body["install_root"] = (root_ / "no-such-root").string();
  auto r = install(body);
  ASSERT_EQ(r.status, 412) << r.body;
  EXPECT_TRUE(contains(r.errorMessage(), "step \"preflight\"")) << r.body;
  EXPECT_TRUE(contains(r.errorMessage(), "is not a directory")) << r.body;

  fs::create_directories(hostRoot() / "usr/local/bin");
  writeFile(hostRoot() / "usr/local/bin/hwledger-agent", "an older agent");
  r = install(request());
  ASSERT_EQ(r.status, 412) << r.body;
  EXPECT_TRUE(contains(r.errorMessage(), "already exists")) << r.body;
  EXPECT_EQ(readFile(hostRoot() / "usr/local/bin/hwledger-agent"), "an older agent");
  EXPECT_EQ(server_->eventCount(), before);

  // Fields of install-agent are checked before anything is connected to.
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, bj::value>>{{"install_root", "relative/dir"},
                                                      {"install_root", "/tmp/a b"},
                                                      {"install_root", "/tmp/../etc"},
                                                      {"job_user", "root"},
                                                      {"job_user", "Bad User"},
                                                      {"agent_listen", "somewhere:9443"},
                                                      {"agent_listen", "127.0.0.1:0"},
                                                      {"enable_unit", "yes"}}) {
    bj::object bad = request();
    bad[key] = value;
    auto b = install(bad);
    EXPECT_EQ(b.status, 400) << key << " " << bj::serialize(value) << " " << b.body;
  }
  bj::object agentless = request();
  agentless.erase("mode");
  EXPECT_EQ(install(agentless).status, 400);  // install_root without install-agent
  EXPECT_EQ(server_->eventCount(), before);
}

class InstallAgentOtherArch : public InstallAgent {
 protected:
  SshdOptions sshdOptions() override {
    SshdOptions o;
    o.remote_bin = true;
    return o;
  }
};

TEST_F(InstallAgentOtherArch, IsRefusedBeforeAnythingIsCopied) {
  // The host says it is an arm64 machine; this server has only its own architecture's agent.
  writeFile(root_ / "uname.out", "aarch64\n");
  sshd_->addRemoteTool("uname", root_ / "uname.out");
  const int64_t before = server_->eventCount();
  auto r = install(request());
  ASSERT_EQ(r.status, 412) << r.body;
  const std::string msg = r.errorMessage();
  EXPECT_TRUE(contains(msg, "step \"arch\"")) << msg;
  EXPECT_TRUE(contains(msg, "is aarch64")) << msg;
  EXPECT_TRUE(contains(msg, "no matching agent binary")) << msg;
  EXPECT_TRUE(contains(msg, "nothing had been changed")) << msg;
  EXPECT_EQ(str(r.obj().at("error").at("code")), "install_agent_arch");
  EXPECT_EQ(server_->eventCount(), before);
  EXPECT_TRUE(treeOf(hostRoot()).empty());
  // The probe was the only command run on the host: no scp, no mktemp.
  std::this_thread::sleep_for(300ms);
  const std::string log = sshd_->log();
  size_t execs = 0;
  for (size_t p = log.find("request exec"); p != std::string::npos;
       p = log.find("request exec", p + 1))
    ++execs;
  EXPECT_EQ(execs, 1u) << log;
}

}  // namespace
}  // namespace hwl::itest
