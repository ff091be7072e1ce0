// The agent installer's pure parts: request fields, ELF machines, the unit and config it writes.
#include "agentless/installer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace hwl::agentless {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;

std::string readRepoFile(const std::string& rel) {
  std::ifstream in(std::string(HWL_INSTALLER_REPO_ROOT) + "/" + rel, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class TempFile {
 public:
  explicit TempFile(const std::string& bytes) {
    char name[] = "/tmp/hwl-elf-XXXXXX";
    const int fd = ::mkstemp(name);
    path_ = name;
    if (fd >= 0) ::close(fd);
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The first 20 bytes of an ELF header: class, byte order, e_type, e_machine.
std::string elfHeader(bool is64, bool lsb, unsigned machine) {
  std::string h(64, '\0');
  h[0] = 0x7f, h[1] = 'E', h[2] = 'L', h[3] = 'F';
  h[4] = static_cast<char>(is64 ? 2 : 1);
  h[5] = static_cast<char>(lsb ? 1 : 2);
  h[6] = 1;
  h[lsb ? 16 : 17] = 2;  // ET_EXEC
  h[lsb ? 18 : 19] = static_cast<char>(machine & 0xff);
  h[lsb ? 19 : 18] = static_cast<char>(machine >> 8);
  return h;
}

TEST(AgentInstaller, ElfMachinesAreNamedAsUnameNamesThem) {
  EXPECT_EQ(*elfArch(TempFile(elfHeader(true, true, 62)).path()), "x86_64");
  EXPECT_EQ(*elfArch(TempFile(elfHeader(true, true, 183)).path()), "aarch64");
  EXPECT_EQ(*elfArch(TempFile(elfHeader(true, true, 21)).path()), "ppc64le");
  EXPECT_EQ(*elfArch(TempFile(elfHeader(true, false, 21)).path()), "ppc64");
  EXPECT_EQ(*elfArch(TempFile(elfHeader(true, false, 22)).path()), "s390x");
  EXPECT_EQ(*elfArch(TempFile(elfHeader(true, true, 243)).path()), "riscv64");
  // This very test program is for the machine it runs on.
  char self[4096] = {};
  ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
  auto mine = elfArch(self);
  ASSERT_TRUE(mine.has_value()) << mine.error().message;
  std::string uname;
  {
    FILE* p = ::popen("uname -m", "r");
    ASSERT_NE(p, nullptr);
    char buf[64] = {};
    if (std::fgets(buf, sizeof buf, p) != nullptr) uname = buf;
    ::pclose(p);
  }
  EXPECT_EQ(*mine, normaliseArch(uname));

  EXPECT_FALSE(elfArch(TempFile("#!/bin/sh\necho not elf\n").path()).has_value());
  EXPECT_FALSE(elfArch(TempFile("\x7f"
                                "ELF")
                           .path())
                   .has_value());  // too short
  EXPECT_FALSE(elfArch(TempFile(elfHeader(true, true, 9999)).path()).has_value());
  auto missing = elfArch("/nonexistent/hwledger-agent");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Code::kNotFound);
}

TEST(AgentInstaller, UnameSpellingsAreNormalised) {
  EXPECT_EQ(normaliseArch("x86_64\n"), "x86_64");
  EXPECT_EQ(normaliseArch("amd64"), "x86_64");
  EXPECT_EQ(normaliseArch("arm64"), "aarch64");
  EXPECT_EQ(normaliseArch("aarch64"), "aarch64");
  EXPECT_EQ(normaliseArch("i386"), "i686");
  EXPECT_EQ(normaliseArch("armv7hl"), "armv7l");
  EXPECT_EQ(normaliseArch(""), "");
}

TEST(AgentInstaller, TheBuiltInFilesAreTheRepositorysOwn) {
  const auto files = agentInstallFiles();
  EXPECT_EQ(files.unit, readRepoFile("systemd/hwledger-agent.service"));
  EXPECT_EQ(files.config, readRepoFile("deploy/agent.example.json"));
}

TEST(AgentInstaller, IntoSlashTheUnitIsInstallAgentShsUnit) {
  const auto files = agentInstallFiles();
  auto unit = unitFor(files.unit, agentPaths("/"));
  ASSERT_TRUE(unit.has_value()) << unit.error().message;
  EXPECT_EQ(*unit, files.unit);
  const auto p = agentPaths("/");
  EXPECT_EQ(p.binary, "/usr/local/bin/hwledger-agent");
  EXPECT_EQ(p.config, "/etc/hwledger/agent.json");
  EXPECT_EQ(p.unit, "/etc/systemd/system/hwledger-agent.service");
  EXPECT_EQ(p.state_dir, "/var/lib/hwledger-agent");
  EXPECT_EQ(p.jobs_dir, "/var/lib/hwledger-jobs");
}

TEST(AgentInstaller, UnderARootEveryPathOfTheUnitMoves) {
  const auto files = agentInstallFiles();
  const auto p = agentPaths("/opt/hwl");
  auto unit = unitFor(files.unit, p);
  ASSERT_TRUE(unit.has_value()) << unit.error().message;
  std::istringstream in(*unit);
  int settings = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == '[') continue;
    ++settings;
    for (const char* path : {"/usr/local/bin/", "/etc/hwledger", "/var/lib/hwledger"}) {
      for (size_t at = line.find(path); at != std::string::npos; at = line.find(path, at + 1))
        EXPECT_EQ(line.substr(at >= 8 ? at - 8 : 0, 8).find("/opt/hwl"), 0u) << line;
    }
    EXPECT_NE(line.rfind("StateDirectory", 0), 0u) << line;  // always /var/lib: replaced
  }
  EXPECT_GT(settings, 40);
  EXPECT_NE(unit->find("ExecStart=/opt/hwl/usr/local/bin/hwledger-agent run --config "
                       "/opt/hwl/etc/hwledger/agent.json\n"),
            std::string::npos);
  EXPECT_NE(unit->find("ReadWritePaths=/opt/hwl/var/lib/hwledger-agent\n"), std::string::npos);
  EXPECT_NE(unit->find("ConditionPathExists=/opt/hwl/var/lib/hwledger-agent/enrollment.json\n"),
            std::string::npos);

  // A template the installer does not know how to move is an error, not a half-moved unit.
  std::string changed(files.unit);
  changed.replace(changed.find("ExecStart="), 10, "ExecStart=-");
  EXPECT_FALSE(unitFor(changed, p).has_value());
}

TEST(AgentInstaller, TheConfigIsTheExampleWithTheInstallationsValues) {
  const auto files = agentInstallFiles();
  InstallOptions o;
  o.job_user = "nobody";
  o.agent_listen = "127.0.0.1:19443";
  auto text = configFor(files.config, agentPaths("/srv/r"), o);
  ASSERT_TRUE(text.has_value()) << text.error().message;
  const auto c = bj::parse(*text).as_object();
  const auto example = bj::parse(files.config).as_object();
  EXPECT_EQ(c.size(), example.size());
  EXPECT_EQ(c.at("state_dir").as_string(), "/srv/r/var/lib/hwledger-agent");
  EXPECT_EQ(c.at("jobs_root").as_string(), "/srv/r/var/lib/hwledger-jobs");
  EXPECT_EQ(c.at("listen").as_string(), "127.0.0.1:19443");
  EXPECT_EQ(c.at("job_user").as_string(), "nobody");
  EXPECT_EQ(c.at("probe"), example.at("probe"));
  EXPECT_EQ(c.at("log_keep"), example.at("log_keep"));
  EXPECT_FALSE(configFor("[1]", agentPaths("/"), o).has_value());
  EXPECT_FALSE(configFor("{\"listen\": \"x\"}", agentPaths("/"), o).has_value());
}

TEST(AgentInstaller, InstallFieldsAreCheckedAndDefaulted) {
  auto d = parseInstallOptions(bj::object{});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->install_root, "/");
  EXPECT_EQ(d->job_user, "hwledger-job");
  EXPECT_EQ(d->agent_listen, "0.0.0.0:9443");
  EXPECT_TRUE(d->enable_unit);

  auto ok = parseInstallOptions(bj::object{{"install_root", "/srv/agents/"},
                                           {"job_user", "gpu_jobs"},
                                           {"agent_listen", "[::1]:9444"},
                                           {"enable_unit", false}});
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->install_root, "/srv/agents");
  EXPECT_EQ(ok->agent_listen, "[::1]:9444");
  EXPECT_FALSE(ok->enable_unit);
  EXPECT_EQ(parseInstallOptions(bj::object{{"install_root", "/"}})->install_root, "/");

  for (const auto& [k, v] :
       std::vector<std::pair<std::string, bj::value>>{{"install_root", ""},
                                                      {"install_root", "relative"},
                                                      {"install_root", "/a/../etc"},
                                                      {"install_root", "/a/./b"},
                                                      {"install_root", "/a//b"},
                                                      {"install_root", "/a b"},
                                                      {"install_root", "/a'b"},
                                                      {"install_root", "/a\nb"},
                                                      {"install_root", "/$(id)"},
                                                      {"install_root", 7},
                                                      {"job_user", "root"},
                                                      {"job_user", "hwledger-agent"},
                                                      {"job_user", "-x"},
                                                      {"job_user", "Jobs"},
                                                      {"job_user", ""},
                                                      {"agent_listen", "localhost:9443"},
                                                      {"agent_listen", "127.0.0.1"},
                                                      {"agent_listen", "127.0.0.1:0"},
                                                      {"agent_listen", "127.0.0.1:65536"},
                                                      {"agent_listen", "::1:9443"},
                                                      {"agent_listen", "[::1]"},
                                                      {"enable_unit", "true"}}) {
    auto r = parseInstallOptions(bj::object{{k, v}});
    EXPECT_FALSE(r.has_value()) << k << " " << bj::serialize(v);
    if (!r) {
      EXPECT_EQ(r.error().code, Code::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace hwl::agentless
