// X.509 building blocks: the fleet CA, issued certificates, CSRs, pins.
#include "hwl/pki.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "hwl/files.hpp"

namespace hwl::pki {

namespace {
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string bioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return {data, static_cast<size_t>(n)};
}

struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, GeneralNamesFree>;

// One SAN entry as a typed GENERAL_NAME: the value is stored as data, never parsed as text.
bool pushName(GENERAL_NAMES* names, int type, const std::string& value) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  if (gn == nullptr) return false;
  if (type == GEN_IPADD) {
    unsigned char buf[16];
    int len = 0;
    if (inet_pton(AF_INET, value.c_str(), buf) == 1)
      len = 4;
    else if (inet_pton(AF_INET6, value.c_str(), buf) == 1)
      len = 16;
    ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
    if (len == 0 || os == nullptr || ASN1_OCTET_STRING_set(os, buf, len) != 1) {
      ASN1_OCTET_STRING_free(os);
      GENERAL_NAME_free(gn);
      return false;
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
  } else {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s == nullptr || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(gn);
      return false;
    }
    GENERAL_NAME_set0_value(gn, type, s);
  }
  if (sk_GENERAL_NAME_push(names, gn) == 0) {
    GENERAL_NAME_free(gn);
    return false;
  }
  return true;
}

bool addBasicConstraints(X509* cert, bool ca) {
  BASIC_CONSTRAINTS* bc = BASIC_CONSTRAINTS_new();
  if (bc == nullptr) return false;
  bc->ca = ca ? 0xff : 0;
  bool ok = true;
  if (ca) {
    bc->pathlen = ASN1_INTEGER_new();
    ok = bc->pathlen != nullptr && ASN1_INTEGER_set(bc->pathlen, 0) == 1;
  }
  ok = ok && X509_add1_ext_i2d(cert, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE) == 1;
  BASIC_CONSTRAINTS_free(bc);
  return ok;
}

bool addKeyUsage(X509* cert, std::initializer_list<int> bits) {
  ASN1_BIT_STRING* ku = ASN1_BIT_STRING_new();
  if (ku == nullptr) return false;
  bool ok = true;
  for (int b : bits) ok = ok && ASN1_BIT_STRING_set_bit(ku, b, 1) == 1;
  ok = ok && X509_add1_ext_i2d(cert, NID_key_usage, ku, 1, X509V3_ADD_REPLACE) == 1;
  ASN1_BIT_STRING_free(ku);
  return ok;
}

bool addExtKeyUsage(X509* cert, bool server_auth, bool client_auth) {
  EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
  if (eku == nullptr) return false;
  if (server_auth) sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
  if (client_auth) sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
  bool ok = X509_add1_ext_i2d(cert, NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE) == 1;
  sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
  return ok;
}

// Subject key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2, method 1).
bool addKeyIds(X509* cert, X509* issuer_or_null) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_pubkey_digest(cert, EVP_sha1(), md, &len) != 1) return false;
  ASN1_OCTET_STRING* ski = ASN1_OCTET_STRING_new();
  bool ok = ski != nullptr && ASN1_OCTET_STRING_set(ski, md, static_cast<int>(len)) == 1 &&
            X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE) == 1;
  ASN1_OCTET_STRING_free(ski);
  if (!ok || issuer_or_null == nullptr) return ok;
  const ASN1_OCTET_STRING* issuer_ski = X509_get0_subject_key_id(issuer_or_null);
  if (issuer_ski == nullptr) return false;
  AUTHORITY_KEYID* aki = AUTHORITY_KEYID_new();
  if (aki == nullptr) return false;
  aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
  ok = aki->keyid != nullptr &&
       X509_add1_ext_i2d(cert, NID_authority_key_identifier, aki, 0, X509V3_ADD_REPLACE) == 1;
  AUTHORITY_KEYID_free(aki);
  return ok;
}

Result<X509Ptr> build(X509* issuer_or_null, EVP_PKEY* sign_key, EVP_PKEY* subject_key,
                      const CertSpec& spec) {
  X509Ptr cert(X509_new());
  if (!cert) return internal("X509_new failed");
  X509_set_version(cert.get(), 2);
  // 159-bit random serial (positive, as RFC 5280 asks).
  std::string rnd = crypto::randomBytes(20);
  rnd[0] = static_cast<char>(rnd[0] & 0x7f);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(rnd.data()), 20, nullptr);
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
  X509_set_serialNumber(cert.get(), serial);
  ASN1_INTEGER_free(serial);
  BN_free(bn);

  int64_t nb = spec.not_before_ms != 0 ? spec.not_before_ms / 1000
                                       : static_cast<int64_t>(std::time(nullptr)) - 60;
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(nb));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(nb + 60 + spec.lifetime_s));

  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("hwLedger"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509* issuer = issuer_or_null != nullptr ? issuer_or_null : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));
  X509_set_pubkey(cert.get(), subject_key);

  for (const auto& d : spec.dns)
    if (!validDnsName(d))
      return invalidArgument("not a DNS name for a certificate: " + d.substr(0, 64));
  for (const auto& i : spec.ips)
    if (!validIpLiteral(i)) return invalidArgument("not an IP address: " + i.substr(0, 64));
  for (const auto& u : spec.uris)
    if (!validUri(u)) return invalidArgument("not a URI for a certificate: " + u.substr(0, 64));

  bool ok = addBasicConstraints(cert.get(), spec.is_ca);
  if (spec.is_ca) {
    ok = ok && addKeyUsage(cert.get(), {5 /* keyCertSign */, 6 /* cRLSign */});
  } else {
    ok = ok && addKeyUsage(cert.get(), {0 /* digitalSignature */});
    if (spec.server_auth || spec.client_auth)
      ok = ok && addExtKeyUsage(cert.get(), spec.server_auth, spec.client_auth);
  }
  ok = ok && addKeyIds(cert.get(), issuer_or_null);
  if (!spec.dns.empty() || !spec.ips.empty() || !spec.uris.empty()) {
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    ok = ok && names != nullptr;
    for (const auto& d : spec.dns) ok = ok && pushName(names.get(), GEN_DNS, d);
    for (const auto& i : spec.ips) ok = ok && pushName(names.get(), GEN_IPADD, i);
    for (const auto& u : spec.uris) ok = ok && pushName(names.get(), GEN_URI, u);
    ok = ok && X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0,
                                 X509V3_ADD_REPLACE) == 1;
  }
  if (!ok) return internal("cannot add certificate extensions");

  const EVP_MD* md = EVP_PKEY_get_id(sign_key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), sign_key, md) <= 0) return internal("certificate signing failed");
  return cert;
}
}  // namespace

bool validDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  char prev = '.';
  for (char c : name) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else {
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && c != '-') return false;
      if (c == '-' && label == 0) return false;
      if (++label > 63) return false;
    }
    prev = c;
  }
  return label > 0 && prev != '-';
}

bool validIpLiteral(std::string_view ip) {
  if (ip.empty() || ip.size() > 45) return false;
  std::string s(ip);
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool validUri(std::string_view uri) {
  if (uri.empty() || uri.size() > 512) return false;
  for (char c : uri) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ',' || c == '"' || c == '\\') return false;
  }
  return uri.find("://") != std::string_view::npos;
}

void X509Free::operator()(X509* x) const { X509_free(x); }
void ReqFree::operator()(X509_REQ* r) const { X509_REQ_free(r); }

crypto::PkeyPtr generateP256() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (k == nullptr) std::abort();
  return crypto::PkeyPtr(k);
}

Result<X509Ptr> makeCa(EVP_PKEY* key, const CertSpec& spec) {
  CertSpec s = spec;
  s.is_ca = true;
  return build(nullptr, key, key, s);
}

Result<X509Ptr> issue(X509* ca, EVP_PKEY* ca_key, EVP_PKEY* subject_key, const CertSpec& spec) {
  return build(ca, ca_key, subject_key, spec);
}

std::string certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bioString(bio.get());
}

Result<X509Ptr> certFromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!c) return invalidArgument("not a PEM certificate");
  return c;
}

Result<X509Ptr> loadCert(const std::filesystem::path& path) {
  auto text = files::readFile(path);
  if (!text) return text.error();
  auto c = certFromPem(*text);
  if (!c) return invalidArgument("not a PEM certificate: " + path.string());
  return c;
}

std::string spkiSha256Hex(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return {};
  auto d = crypto::sha256(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  return crypto::hex(d);
}

std::string spkiPin(X509* cert) { return "sha256:" + spkiSha256Hex(X509_get0_pubkey(cert)); }

std::string serialHex(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* h = BN_bn2hex(bn);
  std::string out(h);
  OPENSSL_free(h);
  BN_free(bn);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int64_t notAfterMs(X509* cert) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

Result<ReqPtr> makeCsr(EVP_PKEY* key, std::string_view common_name) {
  ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  std::string cn(common_name);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key);
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) return internal("CSR signing failed");
  return req;
}

std::string csrPem(X509_REQ* req) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req);
  return bioString(bio.get());
}

Result<ReqPtr> csrFromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ReqPtr r(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!r) return invalidArgument("not a PEM certificate request");
  return r;
}

Result<std::string> pkcs12(std::string_view cert_pem, std::string_view key_pem,
                           std::string_view ca_pem, const std::string& friendly_name) {
  auto cert = certFromPem(cert_pem);
  if (!cert) return cert.error();
  auto ca = certFromPem(ca_pem);
  if (!ca) return ca.error();
  BioPtr kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  crypto::PkeyPtr key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!key) return invalidArgument("not a PEM private key");
  STACK_OF(X509)* chain = sk_X509_new_null();
  sk_X509_push(chain, ca->get());
  PKCS12* p12 =
      PKCS12_create("", friendly_name.c_str(), key.get(), cert->get(), chain, 0, 0, 0, 0, 0);
  sk_X509_free(chain);
  if (p12 == nullptr) return internal("cannot build the PKCS#12 file");
  BioPtr out(BIO_new(BIO_s_mem()));
  i2d_PKCS12_bio(out.get(), p12);
  PKCS12_free(p12);
  return bioString(out.get());
}

bool isMetricsIdentity(const std::vector<std::string>& uris) {
  if (uris.size() != 1) return false;
  const std::string_view prefix = kMetricsUriPrefix;
  const std::string_view u = uris[0];
  if (u.substr(0, prefix.size()) != prefix) return false;
  const std::string_view name = u.substr(prefix.size());
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  return true;
}

}  // namespace hwl::pki
