// Issuing certificates from the fleet CA.
#include "fleet_ca.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <boost/asio/ip/address.hpp>

#include "hwl/http.hpp"

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
  int id = EVP_PKEY_get_id(pub);
  int bits = EVP_PKEY_get_bits(pub);
  bool ok = (id == EVP_PKEY_EC && (bits == 256 || bits == 384)) || id == EVP_PKEY_ED25519 ||
            (id == EVP_PKEY_RSA && bits >= 2048 && bits <= 8192);
  if (!ok)
    return invalidArgument("field \"csr\": key type not allowed (use ECDSA P-256/P-384, "
                           "Ed25519 or RSA >= 2048)");
  return req;
}

namespace {
IssuedCert describe(X509* cert) {
  return {pki::certPem(cert), pki::serialHex(cert), pki::spkiSha256Hex(X509_get0_pubkey(cert)),
          pki::notAfterMs(cert)};
}
}  // namespace

Result<IssuedCert> FleetCa::issueHost(X509_REQ* csr, const std::string& host_id,
                                      int64_t lifetime_s, const std::string& advertise) const {
  pki::CertSpec spec;
  spec.common_name = host_id;
  spec.uris = {kHostUriPrefix + host_id};
  if (auto hp = http::splitHostPort(advertise); hp) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(hp->first, ec);
    if (!ec)
      spec.ips.push_back(hp->first);
    else
      spec.dns.push_back(hp->first);
  }
  spec.client_auth = true;
  spec.server_auth = true;
  spec.lifetime_s = lifetime_s;
  auto c = pki::issue(cert_.get(), key_.get(), X509_REQ_get0_pubkey(csr), spec);
  if (!c) return c.error();
  return describe(c->get());
}

Result<std::pair<IssuedCert, std::string>> FleetCa::issueAdmin(const std::string& name,
                                                               int64_t lifetime_s) const {
  auto key = pki::generateP256();
  pki::CertSpec spec;
  spec.common_name = "admin " + name;
  spec.uris = {kAdminUriPrefix + name};
  spec.client_auth = true;
  spec.lifetime_s = lifetime_s;
  auto c = pki::issue(cert_.get(), key_.get(), key.get(), spec);
  if (!c) return c.error();
  return std::make_pair(describe(c->get()), crypto::privateKeyPem(key.get()));
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
