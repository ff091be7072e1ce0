// Issuing certificates from the fleet CA.
#include "fleet_ca.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "hwl/files.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"

namespace hwl::server {

Result<std::unique_ptr<FleetCa>> FleetCa::load(const std::filesystem::path& cert,
                                               const std::filesystem::path& key) {
  auto c = pki::loadCert(cert);
  if (!c) return c.error();
  auto k = crypto::loadPrivateKeyPem(key);
  if (!k) return k.error();
  auto ca = std::make_unique<FleetCa>();
  ca->cert_pem_ = pki::certPem(c->get());
  ca->pin_ = pki::spkiPin(c->get());
  ca->data_dir_ = cert.parent_path();
  ca->cert_ = std::move(*c);
  ca->key_ = std::move(*k);
  return ca;
}

Result<pki::ReqPtr> FleetCa::checkCsr(std::string_view pem) const {
  if (pem.size() > 16 * 1024) return invalidArgument("field \"csr\" is too large");
  auto req = pki::csrFromPem(pem);
  if (!req) return invalidArgument("field \"csr\" is not a PEM certificate request");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req->get());
  if (pub == nullptr) return invalidArgument("field \"csr\" has no public key");
  if (X509_REQ_verify(req->get(), pub) != 1)
    return invalidArgument("field \"csr\" has an invalid signature");
  if (!keyAllowed(pub))
    return invalidArgument(
        "field \"csr\": key type not allowed (use ECDSA P-256/P-384, "
        "Ed25519 or RSA >= 2048)");
  return req;
}

namespace {
IssuedCert describe(X509* cert) {
  return {pki::certPem(cert), pki::serialHex(cert), pki::spkiSha256Hex(X509_get0_pubkey(cert)),
          pki::notAfterMs(cert)};
}
}  // namespace

bool keyAllowed(EVP_PKEY* pub) {
  switch (EVP_PKEY_get_id(pub)) {
    case EVP_PKEY_ED25519:
      return true;
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(pub);
      return bits >= 2048 && bits <= 8192;
    }
    case EVP_PKEY_EC: {
      // The named curve, not the size: secp256k1 and brainpoolP256r1 are 256-bit too.
      char encoding[32] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                         sizeof encoding, &len) != 1 ||
          std::string_view(encoding) != OSSL_PKEY_EC_ENCODING_GROUP)
        return false;  // explicit parameters, even when they spell out P-256
      char name[64] = {};
      if (EVP_PKEY_get_group_name(pub, name, sizeof name, &len) != 1) return false;
      int nid = OBJ_txt2nid(name);
      if (nid == NID_undef) nid = EC_curve_nist2nid(name);
      return nid == NID_X9_62_prime256v1 || nid == NID_secp384r1;
    }
    default:
      return false;
  }
}

Result<std::string> parseAdvertise(std::string_view advertise) {
  if (advertise.size() > kMaxAdvertiseBytes)
    return invalidArgument("field \"advertise\" is longer than " +
                           std::to_string(kMaxAdvertiseBytes) + " bytes");
  auto hp = http::splitHostPort(advertise);
  if (!hp) return invalidArgument("field \"advertise\" must be HOST:PORT");
  const std::string& host = hp->first;
  bool bracketed = advertise.front() == '[';
  bool ok = bracketed ? host.find(':') != std::string::npos && pki::validIpLiteral(host)
                      : host.find(':') == std::string::npos &&
                            (pki::validIpLiteral(host) || pki::validDnsName(host));
  if (!ok)
    return invalidArgument(
        "field \"advertise\" must be an IP address or an RFC 1123 host name "
        "with a port (HOST:PORT or [IPv6]:PORT)");
  if (hp->second == 0) return invalidArgument("field \"advertise\" has port 0");
  return host;
}

Result<IssuedCert> FleetCa::issueHost(X509_REQ* csr, const std::string& host_id, int64_t lifetime_s,
                                      const std::string& advertise) const {
  pki::CertSpec spec;
  spec.common_name = host_id;
  spec.uris = {kHostUriPrefix + host_id};
  if (!advertise.empty()) {
    auto host = parseAdvertise(advertise);
    if (!host) return host.error();
    if (pki::validIpLiteral(*host))
      spec.ips.push_back(*host);
    else
      spec.dns.push_back(*host);
  }
  spec.client_auth = true;
  spec.server_auth = true;
  spec.lifetime_s = lifetime_s;
  auto c = pki::issue(cert_.get(), key_.get(), X509_REQ_get0_pubkey(csr), spec);
  if (!c) return c.error();
  return describe(c->get());
}

std::string_view clientRoleName(ClientRole role) {
  return role == ClientRole::kAdmin ? "admin" : "metrics";
}

std::string clientUriPrefix(ClientRole role) {
  return role == ClientRole::kAdmin ? kAdminUriPrefix : kMetricsUriPrefix;
}

namespace {
std::filesystem::path recordDir(const std::filesystem::path& data_dir, ClientRole role) {
  return data_dir / (std::string(clientRoleName(role)) + "-certs");
}
}  // namespace

Result<std::pair<IssuedCert, std::string>> FleetCa::issueClient(ClientRole role,
                                                                const std::string& name,
                                                                int64_t lifetime_s) const {
  const std::string kind(clientRoleName(role));
  if (!validAdminName(name))
    return invalidArgument("a " + kind + " name is 1 to 64 letters, digits, '.', '_' or '-'");
  auto key = pki::generateP256();
  pki::CertSpec spec;
  spec.common_name = kind + " " + name;
  spec.uris = {clientUriPrefix(role) + name};
  spec.client_auth = true;
  spec.lifetime_s = lifetime_s;
  auto c = pki::issue(cert_.get(), key_.get(), key.get(), spec);
  if (!c) return c.error();
  auto issued = describe(c->get());
  // The record of the issue, without which the server grants the certificate nothing.
  const auto dir = recordDir(data_dir_, role);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  boost::json::object record{{"kind", kind},
                             {"name", name},
                             {"serial", issued.serial_hex},
                             {"spki_sha256", issued.spki_sha256_hex},
                             {"not_after_ms", issued.not_after_ms}};
  if (auto s = files::writeFileAtomic(dir / (issued.serial_hex + ".json"),
                                      boost::json::serialize(record), 0600);
      !s)
    return s.error();
  return std::make_pair(std::move(issued), crypto::privateKeyPem(key.get()));
}

std::optional<std::string> FleetCa::clientNameFor(ClientRole role,
                                                  const http::PeerCert& peer) const {
  const std::string& serial = peer.serial_hex;
  if (serial.empty() || serial.size() > 64) return std::nullopt;
  for (char c : serial)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  auto text = files::readFile(recordDir(data_dir_, role) / (serial + ".json"), 4096);
  if (!text) return std::nullopt;
  auto o = json::parseObject(*text);
  if (!o) return std::nullopt;
  auto kind = json::requiredString(*o, "kind");
  auto name = json::requiredString(*o, "name");
  auto rs = json::requiredString(*o, "serial");
  auto spki = json::requiredString(*o, "spki_sha256");
  if (!kind || !name || !rs || !spki || *kind != clientRoleName(role) || *rs != serial ||
      !crypto::constantTimeEqual(*spki, peer.spki_sha256_hex))
    return std::nullopt;
  // The certificate must carry the identity it was issued with, and no other.
  for (const auto& u : peer.uris)
    if (u != clientUriPrefix(role) + *name) return std::nullopt;
  if (peer.uris.empty()) return std::nullopt;
  return *name;
}

bool validAdminName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string hostIdOf(const std::vector<std::string>& uris) {
  for (const auto& u : uris)
    if (u.rfind(kHostUriPrefix, 0) == 0) return u.substr(std::string_view(kHostUriPrefix).size());
  return {};
}

std::string adminNameOf(const std::vector<std::string>& uris) {
  for (const auto& u : uris)
    if (u.rfind(kAdminUriPrefix, 0) == 0) return u.substr(std::string_view(kAdminUriPrefix).size());
  return {};
}

}  // namespace hwl::server
