// X.509 building blocks: the fleet CA, issued certificates, CSRs, pins.
#include "hwl/pki.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

namespace hwl::pki {

namespace {
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string bioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

bool addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
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

  bool ok = true;
  if (spec.is_ca) {
    ok &= addExt(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    ok &= addExt(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    ok &= addExt(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    ok &= addExt(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
    std::string eku;
    if (spec.server_auth) eku += "serverAuth";
    if (spec.client_auth) eku += std::string(eku.empty() ? "" : ",") + "clientAuth";
    if (!eku.empty()) ok &= addExt(cert.get(), issuer, NID_ext_key_usage, eku);
  }
  ok &= addExt(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (issuer_or_null != nullptr)
    ok &= addExt(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  std::string san;
  auto addSan = [&](const char* kind, const std::string& v) {
    if (!san.empty()) san += ",";
    san += kind;
    san += ":";
    san += v;
  };
  for (const auto& d : spec.dns) addSan("DNS", d);
  for (const auto& i : spec.ips) addSan("IP", i);
  for (const auto& u : spec.uris) addSan("URI", u);
  if (!san.empty()) ok &= addExt(cert.get(), issuer, NID_subject_alt_name, san);
  if (!ok) return internal("cannot add certificate extensions");

  const EVP_MD* md = EVP_PKEY_get_id(sign_key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), sign_key, md) <= 0) return internal("certificate signing failed");
  return cert;
}
}  // namespace

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
  auto text = crypto::readFile(path);
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
  PKCS12* p12 = PKCS12_create("", friendly_name.c_str(), key.get(), cert->get(), chain, 0, 0, 0,
                              0, 0);
  sk_X509_free(chain);
  if (p12 == nullptr) return internal("cannot build the PKCS#12 file");
  BioPtr out(BIO_new(BIO_s_mem()));
  i2d_PKCS12_bio(out.get(), p12);
  PKCS12_free(p12);
  return bioString(out.get());
}

}  // namespace hwl::pki
