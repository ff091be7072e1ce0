// The fleet CA held by the server: it issues host certificates from CSRs (taking nothing from the
// CSR but its public key), admin client certificates, and answers the CA pin.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "hwl/pki.hpp"
#include "hwl/result.hpp"

namespace hwl::server {

inline constexpr const char* kServerUri = "hwledger://server";
inline constexpr const char* kHostUriPrefix = "hwledger://host/";
inline constexpr const char* kAdminUriPrefix = "hwledger://admin/";

struct IssuedCert {
  std::string pem;
  std::string serial_hex;
  std::string spki_sha256_hex;
  int64_t not_after_ms = 0;
};

class FleetCa {
 public:
  static Result<std::unique_ptr<FleetCa>> load(const std::filesystem::path& cert,
                                               const std::filesystem::path& key);
  [[nodiscard]] const std::string& certPem() const { return cert_pem_; }
  // "sha256:<hex of the CA's SubjectPublicKeyInfo>"
  [[nodiscard]] const std::string& pin() const { return pin_; }

  // Checks a PKCS#10 request: PEM, self-signature valid, key ECDSA P-256/P-384, Ed25519 or RSA of
  // at least 2048 bits. Requested extensions (CA:TRUE, SANs, EKUs) are ignored, never copied.
  Result<pki::ReqPtr> checkCsr(std::string_view pem) const;
  // A host certificate: CN and SAN URI from the host id, EKU clientAuth + serverAuth, and the
  // advertised address (HOST:PORT; IP or DNS SAN) so ordinary TLS clients can reach the agent.
  Result<IssuedCert> issueHost(X509_REQ* csr, const std::string& host_id, int64_t lifetime_s,
                               const std::string& advertise = {}) const;
  // An operator's admin client certificate (SAN URI hwledger://admin/<name>), with a new key.
  Result<std::pair<IssuedCert, std::string>> issueAdmin(const std::string& name,
                                                        int64_t lifetime_s) const;

 private:
  pki::X509Ptr cert_;
  crypto::PkeyPtr key_;
  std::string cert_pem_;
  std::string pin_;
};

// The host id in a verified peer certificate's SAN URIs, or empty.
std::string hostIdOf(const std::vector<std::string>& uris);
std::string adminNameOf(const std::vector<std::string>& uris);

}  // namespace hwl::server
