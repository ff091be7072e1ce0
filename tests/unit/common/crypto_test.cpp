// Hashing, encodings, Ed25519 and certificate helpers.
#include "hwl/crypto.hpp"

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "hwl/pki.hpp"

namespace hwl {
namespace {

TEST(Crypto, Sha256KnownAnswer) {
  EXPECT_EQ(crypto::hex(crypto::sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  crypto::Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.finish(), crypto::sha256("abc"));
  // finish() resets, so the context is reusable.
  h.update("abc");
  EXPECT_EQ(h.finish(), crypto::sha256("abc"));
}

TEST(Crypto, HexAndBase64Url) {
  EXPECT_EQ(crypto::hex(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(crypto::unhex("00ff10").value(), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(crypto::unhex("0g").has_value());
  EXPECT_FALSE(crypto::unhex("abc").has_value());
  EXPECT_EQ(crypto::base64url("\xfb\xff"), "-_8");
  EXPECT_EQ(crypto::base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(crypto::base64url("fooba"), "Zm9vYmE");
}

TEST(Crypto, Ed25519SignVerifyAndPemRoundTrip) {
  auto key = crypto::generateEd25519();
  auto sig = crypto::sign(key.get(), "checkpoint 42");
  ASSERT_TRUE(sig.has_value());
  EXPECT_EQ(sig->size(), 64u);
  auto pub = crypto::publicKeyFromPem(crypto::publicKeyPem(key.get()));
  ASSERT_TRUE(pub.has_value());
  EXPECT_TRUE(crypto::verify(pub->get(), "checkpoint 42", *sig));
  EXPECT_FALSE(crypto::verify(pub->get(), "checkpoint 43", *sig));
  auto other = crypto::generateEd25519();
  EXPECT_FALSE(crypto::verify(other.get(), "checkpoint 42", *sig));
}

TEST(Pki, IssuedCertificateCarriesSpecAndChains) {
  auto ca_key = pki::generateP256();
  auto ca = pki::makeCa(ca_key.get(), {.common_name = "test CA", .lifetime_s = 3600});
  ASSERT_TRUE(ca.has_value());
  auto key = pki::generateP256();
  pki::CertSpec spec{.common_name = "host-1",
                     .uris = {"hwledger://host/host-1"},
                     .client_auth = true,
                     .lifetime_s = 600};
  auto cert = pki::issue(ca->get(), ca_key.get(), key.get(), spec);
  ASSERT_TRUE(cert.has_value());
  EXPECT_EQ(pki::spkiPin(cert->get()), "sha256:" + pki::spkiSha256Hex(key.get()));
  EXPECT_NE(pki::serialHex(cert->get()), pki::serialHex(ca->get()));
  auto pem = pki::certPem(cert->get());
  auto back = pki::certFromPem(pem);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(pki::serialHex(back->get()), pki::serialHex(cert->get()));
  int64_t now_ms = static_cast<int64_t>(std::time(nullptr)) * 1000;
  EXPECT_NEAR(static_cast<double>(pki::notAfterMs(cert->get())),
              static_cast<double>(now_ms + 600'000), 5000.0);
}

// The SANs of a certificate as "DNS:x" / "IP:1.2.3.4" / "URI:u", read back with the ASN.1 API.
std::vector<std::string> sansOf(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    auto* v = static_cast<ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
    std::string data(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                     static_cast<size_t>(ASN1_STRING_length(v)));
    if (type == GEN_DNS) out.push_back("DNS:" + data);
    if (type == GEN_URI) out.push_back("URI:" + data);
    if (type == GEN_IPADD) out.push_back("IP:" + crypto::hex(data));
  }
  GENERAL_NAMES_free(names);
  return out;
}

TEST(Pki, SansAreTypedValuesNeverConfigText) {
  auto ca_key = pki::generateP256();
  pki::CertSpec ca_spec;
  ca_spec.common_name = "test CA";
  ca_spec.lifetime_s = 3600;
  auto ca = pki::makeCa(ca_key.get(), ca_spec);
  ASSERT_TRUE(ca.has_value());
  auto key = pki::generateP256();
  pki::CertSpec spec;
  spec.common_name = "leaf";
  spec.dns = {"agent-1.example.org"};
  spec.ips = {"127.0.0.1", "::1"};
  spec.uris = {"hwledger://host/host-1"};
  spec.client_auth = spec.server_auth = true;
  spec.lifetime_s = 600;
  auto c = pki::issue(ca->get(), ca_key.get(), key.get(), spec);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(sansOf(c->get()), (std::vector<std::string>{"DNS:agent-1.example.org", "IP:7f000001",
                                                        "IP:00000000000000000000000000000001",
                                                        "URI:hwledger://host/host-1"}));
  // The chain verifies (key ids and constraints are well formed).
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca->get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, c->get(), nullptr);
  EXPECT_EQ(X509_verify_cert(ctx), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  EXPECT_EQ(X509_check_ca(c->get()), 0);
  EXPECT_EQ(X509_check_ca(ca->get()), 1);

  // What the old config-string builder turned into extra SANs is refused outright.
  const std::vector<std::string> bad_dns = {"x,URI:hwledger://admin/pwned,URI:hwledger://server",
                                            "a b",
                                            "under_score",
                                            "-lead",
                                            "trail-",
                                            "a..b",
                                            "",
                                            std::string(64, 'a') + ".example",
                                            "\xc3\xa9t\xc3\xa9"};
  for (const auto& d : bad_dns) {
    SCOPED_TRACE(d);
    pki::CertSpec s = spec;
    s.dns = {d};
    auto r = pki::issue(ca->get(), ca_key.get(), key.get(), s);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  }
  for (const auto& ip :
       std::vector<std::string>{"1.2.3", "1.2.3.4,URI:x://y", "fe80::1%eth0", "localhost"}) {
    SCOPED_TRACE(ip);
    pki::CertSpec s = spec;
    s.ips = {ip};
    EXPECT_FALSE(pki::issue(ca->get(), ca_key.get(), key.get(), s).has_value());
  }
  for (const auto& u : std::vector<std::string>{"hwledger://host/a,URI:hwledger://server",
                                                "hwledger://host/a b", "no-scheme"}) {
    SCOPED_TRACE(u);
    pki::CertSpec s = spec;
    s.uris = {u};
    EXPECT_FALSE(pki::issue(ca->get(), ca_key.get(), key.get(), s).has_value());
  }
  EXPECT_TRUE(pki::validDnsName(std::string(63, 'a') + "." + std::string(63, 'b')));
  EXPECT_FALSE(pki::validDnsName(std::string(254, 'a')));
}

}  // namespace
}  // namespace hwl
