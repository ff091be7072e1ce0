#include "rentals/ssh_keygen.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdint>
#include <memory>

#include "hwl/crypto.hpp"

namespace hwl::rentals {

namespace {

void putU32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
void putString(std::string& out, std::string_view s) {
  putU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

}  // namespace

Result<SshKeyPair> makeEd25519KeyPair(const std::string& comment) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return internal("could not generate an Ed25519 key");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, EVP_PKEY_free);
  unsigned char pub[32];
  unsigned char priv[32];
  size_t pub_len = sizeof pub;
  size_t priv_len = sizeof priv;
  if (EVP_PKEY_get_raw_public_key(key.get(), pub, &pub_len) != 1 ||
      EVP_PKEY_get_raw_private_key(key.get(), priv, &priv_len) != 1 || pub_len != 32 ||
      priv_len != 32)
    return internal("could not read the Ed25519 key");
  std::string_view pub_sv(reinterpret_cast<const char*>(pub), 32);

  std::string pub_blob;
  putString(pub_blob, "ssh-ed25519");
  putString(pub_blob, pub_sv);

  // openssh-key-v1 (OpenSSH's PROTOCOL.key): magic, cipher "none", kdf "none", no kdf options,
  // one key, its public blob, then the private section padded to the cipher block size (8).
  uint32_t check = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&check), sizeof check);
  std::string priv_section;
  putU32(priv_section, check);
  putU32(priv_section, check);
  putString(priv_section, "ssh-ed25519");
  putString(priv_section, pub_sv);
  std::string seed_pub(reinterpret_cast<const char*>(priv), 32);
  seed_pub.append(pub_sv);
  putString(priv_section, seed_pub);
  putString(priv_section, comment);
  for (char pad = 1; priv_section.size() % 8 != 0; ++pad) priv_section.push_back(pad);
  OPENSSL_cleanse(priv, sizeof priv);

  std::string body("openssh-key-v1", 14);
  body.push_back('\0');
  putString(body, "none");
  putString(body, "none");
  putString(body, "");
  putU32(body, 1);
  putString(body, pub_blob);
  putString(body, priv_section);
  OPENSSL_cleanse(seed_pub.data(), seed_pub.size());
  OPENSSL_cleanse(priv_section.data(), priv_section.size());

  SshKeyPair out;
  std::string b64 = crypto::base64(body);
  OPENSSL_cleanse(body.data(), body.size());
  out.private_openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 70) out.private_openssh += b64.substr(i, 70) + "\n";
  out.private_openssh += "-----END OPENSSH PRIVATE KEY-----\n";
  OPENSSL_cleanse(b64.data(), b64.size());
  out.public_line = "ssh-ed25519 " + crypto::base64(pub_blob) + " " + comment;
  return out;
}

}  // namespace hwl::rentals
