#include "agentless/ssh_target.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "agentless/enroll_ssh.hpp"

namespace hwl::agentless {
namespace {

namespace bj = boost::json;

TEST(SshTarget, AddressesAndUsersThatReachNoParserAsSyntax) {
  for (const char* ok : {"gpu7", "gpu7.example.org", "10.0.0.7", "::1", "fe80::1"})
    EXPECT_TRUE(validateHost(ok)) << ok;
  for (const char* bad :
       {"", "-oProxyCommand=id", "gpu 7", "gpu7;id", "$(id)", "a\nb", ".x", "gpu7/../x", "[::1]"})
    EXPECT_FALSE(validateHost(bad)) << bad;
  for (const char* ok : {"root", "hwl", "ubuntu-22", "a.b_c"}) EXPECT_TRUE(validateUser(ok)) << ok;
  for (const char* bad : {"", "-l", "root;id", "a b", "$(id)", "us@er", "a\"b",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
    EXPECT_FALSE(validateUser(bad)) << bad;

  auto a = parseAddress("gpu7");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->second, 22);
  a = parseAddress("10.0.0.7:2222");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "10.0.0.7");
  EXPECT_EQ(a->second, 2222);
  a = parseAddress("[::1]:2200");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "::1");
  EXPECT_EQ(a->second, 2200);
  for (const char* bad : {"gpu7:0", "gpu7:65536", "gpu7:22x", "[gpu7]:22", "[::1",
                          "gpu7:", "[::1%0,victim.example]:22", "fe80::1%eth0"})
    EXPECT_FALSE(parseAddress(bad)) << bad;
  // One spelling per host, since known_hosts compares names exactly: a changed key cannot be
  // slipped in under "GPU7." when "gpu7" is recorded.
  a = parseAddress("GPU7.Example.ORG.:22");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "gpu7.example.org");
  a = parseAddress("[0:0::0:1]:22");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "::1");
}

TEST(SshTarget, RecordedConnectionRoundTripsAndIsCheckedWhenRead) {
  SshTarget t;
  t.user = "hwl";
  t.host = "::1";
  t.port = 2200;
  t.host_key = "SHA256:wmCDizAahFU5qbdl4T3dFHj5ncdY60937b9eRwwHV9M";
  t.host_key_alg = "ecdsa-sha2-nistp256";
  t.jump = "ops@bastion:2222";
  t.jump_host_key = "SHA256:MCDH0L6y/ADkAwXTv2Nnb2GnkaNx20nns6UF9K3v+5E";
  t.key = KeyKind::kFile;
  t.key_file = "/etc/hwledger/id_ed25519";
  EXPECT_EQ(t.address(), "[::1]:2200");
  auto back = sshTargetFromJson(toJson(t));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->jump_host_key, t.jump_host_key);
  EXPECT_EQ(back->key_file, t.key_file);
  // Settings pin both keys: known_hosts no longer decides for an enrolled host.
  auto s = settingsFor(*back, "/unused");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->pinned_fingerprint, t.host_key);
  EXPECT_EQ(s->host_key_algorithm, "ecdsa-sha2-nistp256") << "only the pinned key's type is asked";
  ASSERT_TRUE(s->jump);
  EXPECT_EQ(s->jump->pinned_fingerprint, t.jump_host_key);

  // A row that lost its host key, or names a relative key file, is not used.
  auto o = toJson(t);
  o["host_key"] = "";
  EXPECT_FALSE(sshTargetFromJson(o));
  o = toJson(t);
  o["key_file"] = "id";
  EXPECT_FALSE(sshTargetFromJson(o));
  o = toJson(t);
  o["user"] = "x;id";
  EXPECT_FALSE(sshTargetFromJson(o));
  o = toJson(t);
  o["host_key_alg"] = "ssh-ed25519,ssh-rsa";
  EXPECT_FALSE(sshTargetFromJson(o));
}

TEST(SshEnrollRequest, EachFieldIsCheckedAndSecretsStayOutOfTheTarget) {
  auto parse = [](const char* text) { return parseSshEnrollRequest(bj::parse(text).as_object()); };
  auto r = parse(R"({"address":"gpu7:2222","user":"hwl","key_pem":"-----BEGIN OPENSSH PRIVATE )"
                 R"(KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n","mode":"install-agent",)"
                 R"("passphrase":"pw","trust_on_first_use":true})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->target.key, KeyKind::kStored);
  EXPECT_EQ(r->mode, EnrollMode::kInstallAgent);
  EXPECT_EQ(r->passphrase.reveal(), "pw");
  EXPECT_EQ(r->name, "gpu7");
  const std::string recorded = bj::serialize(toJson(r->target));
  EXPECT_EQ(recorded.find("PRIVATE"), std::string::npos);
  EXPECT_EQ(recorded.find("pw"), std::string::npos);

  for (const char* bad : {
           R"({"address":"gpu7","user":"hwl"})",                                   // no key
           R"({"address":"gpu7","user":"hwl","key_file":"/k","use_agent":true})",  // two keys
           R"({"address":"gpu7","user":"hwl","key_file":"/k","password":"x"})",    // unknown key
           R"({"address":"gpu7","user":"hwl","key_pem":"not a key"})",
           R"({"address":"gpu7","user":"hwl","use_agent":true,"passphrase":"x"})",
           R"({"address":"gpu7","user":"hwl","key_file":"/k","passphrase":"x"})",  // agentless
           R"({"address":"gpu7","user":"hwl","key_file":"/k","fingerprint":"SHA256:short"})",
           R"({"address":"gpu7","user":"hwl","key_file":"/k","jump_fingerprint":"SHA256:x"})",
           R"({"address":"gpu7","user":"hwl","key_file":"/k","jump":"nobody"})",
           R"({"address":"gpu7","user":"hwl","key_file":"/k","name":"a\u0007b"})",
           R"({"address":"gpu7","user":"hwl","key_file":"/k","agent_socket":"/s"})",
           R"({"address":"gpu7","user":"hwl","key_file":"/k","trust_on_first_use":"yes"})",
       })
    EXPECT_FALSE(parse(bad)) << bad;
}

}  // namespace
}  // namespace hwl::agentless
