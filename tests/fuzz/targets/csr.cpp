// Certificate signing requests as the fleet CA checks them (enrollment and renewal): PEM, or DER
// (any input that is not PEM is wrapped into PEM, so mutations reach the ASN.1). Invariants: a
// CSR is accepted only with a valid self-signature on an allowed key; the certificate issued from
// it carries the CSR's public key and only what the CA chose (the host URI, the given address),
// never a name or extension the CSR requested.
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "api_world.hpp"
#include "hwl/crypto.hpp"
#include "hwl/pki.hpp"

using namespace hwl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = fuzz::text(data, size);
  std::string pem;
  if (in.find("-----BEGIN") != std::string_view::npos) {
    pem = std::string(in);
  } else {
    std::string b64(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), data, static_cast<int>(size));
    b64.resize(static_cast<size_t>(n));
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n";
    for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
    pem += "-----END CERTIFICATE REQUEST-----\n";
  }
  auto& w = fuzz::ApiWorld::get();
  auto req = w.ca->checkCsr(pem);
  if (!req) {
    HWL_FUZZ_CHECK(req.error().code == Code::kInvalidArgument, req.error().message);
    return 0;
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req->get());
  HWL_FUZZ_CHECK(pub != nullptr && X509_REQ_verify(req->get(), pub) == 1, "accepted a bad CSR");
  auto cert = w.ca->issueHost(req->get(), "host-0a0b0c", 3600, "10.1.2.3:9443");
  HWL_FUZZ_CHECK(cert.has_value(), cert ? "" : cert.error().message);
  auto x = pki::certFromPem(cert->pem);
  HWL_FUZZ_CHECK(x.has_value(), "issued certificate does not parse");
  HWL_FUZZ_CHECK(EVP_PKEY_eq(X509_get0_pubkey(x->get()), pub) == 1, "issued for another key");
  HWL_FUZZ_CHECK(X509_check_ca(x->get()) == 0, "a host certificate that is a CA");
  auto sans = fuzz::subjectAltNames(cert->pem);
  std::string all;
  for (const auto& s : sans) all += s + " ";
  std::sort(sans.begin(), sans.end());
  HWL_FUZZ_CHECK(
      sans.size() == 2 && sans[0] == "IP:0a010203" && sans[1] == "URI:hwledger://host/host-0a0b0c",
      all);
  // Extensions: only those the CA adds (no CSR extension is copied).
  for (int i = 0; i < X509_get_ext_count(x->get()); ++i) {
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x->get(), i)));
    HWL_FUZZ_CHECK(nid == NID_subject_alt_name || nid == NID_basic_constraints ||
                       nid == NID_key_usage || nid == NID_ext_key_usage ||
                       nid == NID_subject_key_identifier || nid == NID_authority_key_identifier,
                   std::string("extension ") + OBJ_nid2sn(nid));
  }
  return 0;
}
