// X.509 helpers over OpenSSL 3: keys, a CA, certificates it issues, CSRs, and fingerprints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/crypto.hpp"
#include "hwl/result.hpp"

using X509 = struct x509_st;
using X509_REQ = struct X509_req_st;

namespace hwl::pki {

struct X509Free {
  void operator()(X509* x) const;
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
struct ReqFree {
  void operator()(X509_REQ* r) const;
};
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;

crypto::PkeyPtr generateP256();

// What may go into a certificate's SANs. A DNS name is an RFC 1123 host name (letters, digits
// and hyphens in dot-separated labels of 1 to 63 bytes, at most 253 in all); an IP literal is what
// inet_pton takes for IPv4 or IPv6 (no zone); a URI is printable ASCII without spaces, commas,
// quotes or backslashes, with a scheme. issue() and makeCa() refuse anything else.
bool validDnsName(std::string_view name);
bool validIpLiteral(std::string_view ip);
bool validUri(std::string_view uri);

// Extensions and SANs are built as typed ASN.1 values (GENERAL_NAME, BASIC_CONSTRAINTS...), never
// from an OpenSSL configuration string.
struct CertSpec {
  std::string common_name;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  std::vector<std::string> uris;
  bool is_ca = false;
  bool server_auth = false;
  bool client_auth = false;
  int64_t not_before_ms = 0;  // 0: now minus a minute of clock skew
  int64_t lifetime_s = 0;
};

// Self-signed CA certificate.
Result<X509Ptr> makeCa(EVP_PKEY* key, const CertSpec& spec);
// A certificate for `subject_key` signed by the CA; the content comes from `spec` only.
Result<X509Ptr> issue(X509* ca, EVP_PKEY* ca_key, EVP_PKEY* subject_key, const CertSpec& spec);

std::string certPem(X509* cert);
Result<X509Ptr> certFromPem(std::string_view pem);
Result<X509Ptr> loadCert(const std::filesystem::path& path);

// "sha256:<hex>" of the certificate's SubjectPublicKeyInfo (DER).
std::string spkiPin(X509* cert);
std::string spkiSha256Hex(EVP_PKEY* key);
std::string serialHex(X509* cert);
int64_t notAfterMs(X509* cert);

// PKCS#10 requests.
Result<ReqPtr> makeCsr(EVP_PKEY* key, std::string_view common_name);
std::string csrPem(X509_REQ* req);
Result<ReqPtr> csrFromPem(std::string_view pem);

// A PKCS#12 bundle (certificate, key, CA) with an empty password, as curl --cert-type P12 takes.
Result<std::string> pkcs12(std::string_view cert_pem, std::string_view key_pem,
                           std::string_view ca_pem, const std::string& friendly_name);

// A metrics scraper's identity: SAN URI hwledger://metrics/<name>. It may read GET /metrics on
// the server and on agents, and nothing else.
inline constexpr const char* kMetricsUriPrefix = "hwledger://metrics/";
// True when a verified peer certificate's only SAN URI is hwledger://metrics/<name>, the name 1
// to 64 of [A-Za-z0-9._-].
bool isMetricsIdentity(const std::vector<std::string>& uris);

}  // namespace hwl::pki
