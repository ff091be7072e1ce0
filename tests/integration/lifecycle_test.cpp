// The server's life cycle: init, refusing to overwrite a data directory, graceful SIGTERM with a
// final signed checkpoint, config files and flags.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "server_fixture.hpp"

namespace hwl::itest {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;
using namespace std::chrono_literals;

unsigned modeOf(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

// name → (mode, size, content, mtime in ns) of every file in a directory.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    struct stat st {};
    ::stat(e.path().c_str(), &st);
    out[e.path().filename().string()] =
        std::to_string(st.st_mode) + "|" + std::to_string(st.st_size) + "|" +
        std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "|" +
        readFile(e.path());
  }
  return out;
}

int64_t lastCheckpointSeq(const fs::path& log) {
  auto ls = lines(readFile(log));
  if (ls.empty()) return 0;
  return bj::parse(ls.back()).as_object().at("seq").as_int64();
}

TEST(Lifecycle, InitCreatesAPrivateDataDirectory) {
  TempDir tmp;
  const fs::path dir = tmp / "data";
  auto r = run({serverBin(), "init", "--data-dir", dir.string(), "--admin-token-file",
                (tmp / "admin.token").string()});
  ASSERT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(modeOf(dir), 0700U);
  for (const char* f : {"ledger.db", "ca.crt", "server.crt", "checkpoint.pub", "checkpoints.log"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  for (const char* f : {"ca.key", "server.key", "checkpoint.key"})
    EXPECT_EQ(modeOf(dir / f), 0600U) << f;
  EXPECT_EQ(modeOf(tmp / "admin.token"), 0600U);
  std::string token = readFile(tmp / "admin.token");
  ASSERT_EQ(token.rfind("tok_", 0), 0U) << token;
  token.pop_back();
  // Printed once on stdout, the same as in the file; stored only as a hash.
  EXPECT_NE(r.out.find(token), std::string::npos) << r.out;
  const std::string secret = token.substr(token.find('.') + 1);
  EXPECT_EQ(readFile(dir / "ledger.db").find(secret), std::string::npos);
  EXPECT_EQ(sqlite(dir / "ledger.db", "SELECT role || ' ' || note FROM tokens"),
            "admin created by init");
  // The server certificate is for localhost and the loopback addresses, signed by the CA.
  auto cert = run({"openssl", "x509", "-in", (dir / "server.crt").string(), "-noout", "-ext",
                   "subjectAltName"});
  EXPECT_NE(cert.out.find("DNS:localhost"), std::string::npos) << cert.out;
  EXPECT_NE(cert.out.find("IP Address:127.0.0.1"), std::string::npos) << cert.out;
  auto chain = run(
      {"openssl", "verify", "-CAfile", (dir / "ca.crt").string(), (dir / "server.crt").string()});
  EXPECT_EQ(chain.code(), 0) << chain.out << chain.err;
}

TEST(Lifecycle, InitRefusesANonEmptyDirectoryAndChangesNothing) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  const auto before = snapshot(srv.dataDir());
  const auto parent_before = snapshot(tmp.path());
  auto again = run({serverBin(), "init", "--data-dir", srv.dataDir().string(), "--admin-token-file",
                    (tmp / "second.token").string()});
  EXPECT_EQ(again.code(), 3) << again.out << again.err;
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
  EXPECT_EQ(again.out.find("tok_"), std::string::npos) << "a token was printed: " << again.out;
  EXPECT_EQ(snapshot(srv.dataDir()), before);
  EXPECT_EQ(snapshot(tmp.path()), parent_before) << "init left something beside the data dir";
  EXPECT_FALSE(fs::exists(tmp / "second.token"));

  // A directory holding someone else's file is refused the same way.
  fs::create_directory(tmp / "other");
  writeFile(tmp / "other" / "notes.txt", "keep me");
  auto other = run({serverBin(), "init", "--data-dir", (tmp / "other").string()});
  EXPECT_EQ(other.code(), 3) << other.err;
  EXPECT_EQ(snapshot(tmp / "other").size(), 1U);
  EXPECT_EQ(readFile(tmp / "other" / "notes.txt"), "keep me");
}

TEST(Lifecycle, InitThatCannotWriteTheTokenFileLeavesNoDataDirectory) {
  TempDir tmp;
  const fs::path dir = tmp / "data";
  auto r = run({serverBin(), "init", "--data-dir", dir.string(), "--admin-token-file",
                (tmp / "missing-dir" / "admin.token").string()});
  EXPECT_NE(r.code(), 0) << r.out;
  EXPECT_NE(r.err.find("admin.token"), std::string::npos) << r.err;
  // A failed init must not leave a ledger whose only admin token nobody holds: a second init
  // with a good path has to be possible.
  EXPECT_FALSE(fs::exists(dir)) << "init failed but left " << dir << " behind";
  auto again = run({serverBin(), "init", "--data-dir", dir.string(), "--admin-token-file",
                    (tmp / "admin.token").string()});
  EXPECT_EQ(again.code(), 0) << again.err;
}

TEST(Lifecycle, SigtermUnderLoadExitsZeroAndCheckpointsTheHead) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  EXPECT_EQ(readFile(srv.dataDir() / "listen.addr"), srv.address() + "\n");

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acked;
  std::map<int, int> other;
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        Http h = srv.post("/v1/tokens", R"({"role":"viewer"})");
        std::lock_guard lk(mu);
        auto at = h.body.find(R"("id":")");
        if (h.status == 201 && at != std::string::npos)
          acked.insert(h.body.substr(at + 6, h.body.find('"', at + 6) - (at + 6)));
        else if (h.status != 0)
          ++other[h.status];
      }
    });
  }
  std::this_thread::sleep_for(1500ms);
  auto st = srv.stop();
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_TRUE(st.success()) << st.describe() << srv.serverErr();
  EXPECT_TRUE(other.empty()) << "a request got status " << other.begin()->first;
  ASSERT_GE(acked.size(), 10U);
  const int64_t head = std::stoll(sqlite(srv.db(), "SELECT max(seq) FROM events"));
  EXPECT_NE(srv.serverOut().find("stopped at seq " + std::to_string(head)), std::string::npos)
      << srv.serverOut();
  EXPECT_EQ(lastCheckpointSeq(srv.checkpointLog()), head);
  EXPECT_EQ(sqlite(srv.db(), "SELECT max(seq) FROM checkpoints"), std::to_string(head));
  EXPECT_FALSE(fs::exists(srv.dataDir() / "listen.addr"));
  auto ids = lines(sqlite(srv.db(), "SELECT id FROM tokens"));
  const std::set<std::string> stored(ids.begin(), ids.end());
  for (const auto& id : acked) EXPECT_TRUE(stored.count(id)) << id << " was acknowledged";
  auto v = cli({"ledger", "verify", "--db", srv.db().string()});
  EXPECT_EQ(v.code(), 0) << v.out;
}

TEST(Lifecycle, SigtermWithAnOpenEventStreamExitsPromptly) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  srv.start();
  SpawnOptions so;
  so.env = srv.cliEnv(srv.adminToken());
  so.stdout_file = tmp / "follow.out";
  so.stderr_file = tmp / "follow.err";
  Process follow({cliBin(), "--json", "events", "--follow"}, so);
  ASSERT_TRUE(follow.waitForOutput("token.created", 10s)) << follow.err();
  auto t = srv.createToken("viewer");
  ASSERT_TRUE(follow.waitForOutput(t.id, 10s)) << follow.out();

  const auto asked = std::chrono::steady_clock::now();
  auto st = srv.stop();
  EXPECT_TRUE(st.success()) << st.describe() << srv.serverErr();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);
  EXPECT_EQ(lastCheckpointSeq(srv.checkpointLog()), t.seq);
  // The follower sees the stream end rather than hanging on a dead connection.
  auto fst = follow.wait(10s);
  EXPECT_TRUE(fst.has_value()) << "the follower is still waiting";
}

TEST(Lifecycle, UnknownConfigKeyExits2NamingIt) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  auto runWith = [&](const std::string& config) {
    writeFile(tmp / "config.json", config);
    return run({serverBin(), "run", "--data-dir", srv.dataDir().string(), "--config",
                (tmp / "config.json").string()},
               {.env = {}, .input = {}, .timeout = std::chrono::seconds(20)});
  };
  auto r = runWith(R"({"listen":"127.0.0.1:0","header_timeout_msec":500})");
  EXPECT_EQ(r.code(), 2) << r.out << r.err;
  EXPECT_NE(r.err.find("\"header_timeout_msec\""), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;

  auto range = runWith(R"({"listen":"127.0.0.1:0","header_timeout_ms":5})");
  EXPECT_EQ(range.code(), 2) << range.err;
  EXPECT_NE(range.err.find("\"header_timeout_ms\""), std::string::npos) << range.err;

  auto type = runWith(R"({"listen":"127.0.0.1:0","worker_threads":"four"})");
  EXPECT_EQ(type.code(), 2) << type.err;
  EXPECT_NE(type.err.find("\"worker_threads\""), std::string::npos) << type.err;

  auto broken = runWith(R"({"listen":)");
  EXPECT_EQ(broken.code(), 2) << broken.err;

  // The planner's model_dir must be an absolute directory.
  for (const std::string& dir : {std::string("models"), (tmp / "missing").string()}) {
    auto models = runWith(R"({"listen":"127.0.0.1:0","model_dir":")" + dir + R"("})");
    EXPECT_EQ(models.code(), 2) << models.err;
    EXPECT_NE(models.err.find("\"model_dir\""), std::string::npos) << models.err;
  }
}

TEST(Lifecycle, FlagsOverrideTheConfigFile) {
  TempDir tmp;
  LedgerServer srv(tmp.path(), "data");
  srv.init();
  // data_dir comes only from the file; listen names an address this host does not have.
  bj::object cfg{
      {"data_dir", srv.dataDir().string()}, {"listen", "203.0.113.7:1"}, {"checkpoint_every", 5}};
  writeFile(tmp / "config.json", bj::serialize(cfg));
  auto alone = run({serverBin(), "run", "--config", (tmp / "config.json").string()},
                   {.env = {}, .input = {}, .timeout = std::chrono::seconds(20)});
  EXPECT_EQ(alone.code(), 1) << alone.out << alone.err;
  EXPECT_NE(alone.err.find("203.0.113.7:1"), std::string::npos) << alone.err;

  srv.startRaw({"--config", (tmp / "config.json").string(), "--listen", "127.0.0.1:0",
                "--checkpoint-every", "3", "--log-level", "warn"});
  EXPECT_EQ(srv.address().rfind("127.0.0.1:", 0), 0U) << srv.address();
  EXPECT_EQ(readFile(srv.dataDir() / "listen.addr"), srv.address() + "\n");
  EXPECT_EQ(srv.get("/v1/health").status, 200);
  for (int i = 0; i < 6; ++i) srv.createToken("viewer");  // seq 2..7
  auto cps = srv.get("/v1/ledger/checkpoints");
  ASSERT_EQ(cps.status, 200);
  std::vector<int64_t> seqs;
  const auto cp_list = cps.obj();
  for (const auto& c : cp_list.at("checkpoints").as_array())
    seqs.push_back(c.as_object().at("seq").as_int64());
  // init signs seq 1; then every 3 events (the flag), not every 5 (the file).
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 3, 6}));
  auto st = srv.stop();
  EXPECT_TRUE(st.success()) << st.describe() << srv.serverErr();
}

}  // namespace
}  // namespace hwl::itest
