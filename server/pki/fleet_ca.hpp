// The fleet CA held by the server: it issues host certificates from CSRs (taking nothing from the
// CSR but its public key), admin client certificates, and answers the CA pin.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/http.hpp"
#include "hwl/pki.hpp"
#include "hwl/result.hpp"

namespace hwl::server {

inline constexpr const char* kServerUri = "hwledger://server";
inline constexpr const char* kHostUriPrefix = "hwledger://host/";
inline constexpr const char* kAdminUriPrefix = "hwledger://admin/";
using pki::kMetricsUriPrefix;

// The client certificates an operator issues from the data directory: an admin (every operator
// route) or a metrics scraper (GET /metrics only, on the server and on agents).
enum class ClientRole { kAdmin, kMetrics };
std::string_view clientRoleName(ClientRole role);  // "admin", "metrics"
std::string clientUriPrefix(ClientRole role);
// "[" 45-byte IPv6 literal "]:65535", or a 253-byte host name and a port.
inline constexpr size_t kMaxAdvertiseBytes = 261;

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

  // Checks a PKCS#10 request: PEM, self-signature valid, key ECDSA on the named curves P-256 or
  // P-384, Ed25519, or RSA of 2048 to 8192 bits. Requested extensions (CA:TRUE, SANs, EKUs) are
  // ignored, never copied.
  Result<pki::ReqPtr> checkCsr(std::string_view pem) const;
  // A host certificate: CN and SAN URI from the host id, EKU clientAuth + serverAuth, and the
  // advertised address (HOST:PORT; IP or DNS SAN) so ordinary TLS clients can reach the agent.
  // The address must pass parseAdvertise().
  Result<IssuedCert> issueHost(X509_REQ* csr, const std::string& host_id, int64_t lifetime_s,
                               const std::string& advertise = {}) const;
  // A client certificate for `role` (SAN URI hwledger://admin/<name> or hwledger://metrics/<name>,
  // EKU clientAuth), with a new key. The issue is recorded as <role>-certs/<serial>.json beside
  // the CA certificate (the data dir); the server grants only certificates recorded there
  // (deleting the record revokes it on the server).
  Result<std::pair<IssuedCert, std::string>> issueClient(ClientRole role, const std::string& name,
                                                         int64_t lifetime_s) const;
  // The name when `peer` is a certificate this CA recorded as issued for `role`: same serial,
  // same public key, and no SAN URI but that identity's. nullopt for anything else.
  [[nodiscard]] std::optional<std::string> clientNameFor(ClientRole role,
                                                         const http::PeerCert& peer) const;

 private:
  pki::X509Ptr cert_;
  crypto::PkeyPtr key_;
  std::string cert_pem_;
  std::string pin_;
  std::filesystem::path data_dir_;
};

// True for ECDSA on P-256 or P-384 (by curve, not by size), Ed25519, and RSA of 2048-8192 bits.
bool keyAllowed(EVP_PKEY* pub);
// The host part of an agent's advertised "HOST:PORT" / "[IPv6]:PORT" when HOST is an IP literal
// or an RFC 1123 host name, the port is 1-65535 and the whole is at most kMaxAdvertiseBytes.
Result<std::string> parseAdvertise(std::string_view advertise);
// Admin names: 1 to 64 of [A-Za-z0-9._-].
bool validAdminName(std::string_view name);

// The host id in a verified peer certificate's SAN URIs, or empty.
std::string hostIdOf(const std::vector<std::string>& uris);
std::string adminNameOf(const std::vector<std::string>& uris);

}  // namespace hwl::server
