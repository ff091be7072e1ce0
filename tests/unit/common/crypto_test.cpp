// Hashing, encodings, Ed25519 and certificate helpers.
#include <gtest/gtest.h>

#include "hwl/crypto.hpp"
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

}  // namespace
}  // namespace hwl
