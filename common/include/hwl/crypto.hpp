// Hashing, randomness, encodings and Ed25519 signatures over OpenSSL 3 (EVP interfaces only).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

using EVP_PKEY = struct evp_pkey_st;
using EVP_MD_CTX = struct evp_md_ctx_st;

namespace hwl::crypto {

using Digest = std::array<uint8_t, 32>;

Digest sha256(std::string_view data);

// Incremental SHA-256 that reuses one EVP context (the ledger's hot path).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void reset();
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish();

 private:
  EVP_MD_CTX* ctx_;
};

std::string randomBytes(size_t n);
std::string hex(std::string_view bytes);
std::string hex(const Digest& d);
Result<std::string> unhex(std::string_view text);
std::string base64url(std::string_view bytes);  // no padding
std::string base64(std::string_view bytes);     // RFC 4648 alphabet, padded
bool constantTimeEqual(std::string_view a, std::string_view b);

// A fresh random identifier: `prefix` followed by `nbytes` random bytes in hex.
std::string newId(std::string_view prefix = {}, size_t nbytes = 16);

struct PkeyFree {
  void operator()(EVP_PKEY* p) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Ed25519 keys (checkpoint signing).
PkeyPtr generateEd25519();
Result<PkeyPtr> loadPrivateKeyPem(const std::filesystem::path& path);
Result<PkeyPtr> loadPublicKeyPem(const std::filesystem::path& path);
Result<PkeyPtr> publicKeyFromPem(std::string_view pem);
std::string privateKeyPem(EVP_PKEY* key);
std::string publicKeyPem(EVP_PKEY* key);
Result<std::string> sign(EVP_PKEY* key, std::string_view message);  // raw Ed25519 signature
bool verify(EVP_PKEY* key, std::string_view message, std::string_view signature);

}  // namespace hwl::crypto
