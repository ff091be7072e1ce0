// TLS 1.3-only contexts for the server and the client, and what a verified peer certificate says.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hwl/pki.hpp"
#include "hwl/tls.hpp"

namespace hwl::http::tls {

namespace ssl = boost::asio::ssl;

Result<ssl::context> makeServerContext(const std::string& cert_file, const std::string& key_file,
                                       const std::string& client_ca_file, ClientCertMode mode) {
  ssl::context ctx(ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) return invalidArgument("cannot load certificate " + cert_file + ": " + ec.message());
  ctx.use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) return invalidArgument("cannot load key " + key_file + ": " + ec.message());
  // Resumed sessions keep the verified client certificate; the per-request peer check (and the
  // revocation sweep) still applies to them.
  static constexpr unsigned char kSessionContext[] = "hwledger";
  SSL_CTX_set_session_id_context(ctx.native_handle(), kSessionContext, sizeof kSessionContext - 1);
  if (mode != ClientCertMode::kNone) {
    ctx.load_verify_file(client_ca_file, ec);
    if (ec) return invalidArgument("cannot load CA " + client_ca_file + ": " + ec.message());
    int flags = SSL_VERIFY_PEER;
    if (mode == ClientCertMode::kRequired) flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx.native_handle(), flags, nullptr);
    // Clients are told which CA to use (certificate_authorities in the CertificateRequest).
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx.native_handle(), names);
  }
  return ctx;
}

Result<ssl::context> makeClientContext(const ClientSettings& s) {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  if (!s.ca_pem.empty()) {
    ctx.add_certificate_authority(boost::asio::buffer(s.ca_pem), ec);
    if (ec) return invalidArgument("cannot use the CA certificate: " + ec.message());
  } else if (!s.ca_file.empty()) {
    ctx.load_verify_file(s.ca_file, ec);
    if (ec) return invalidArgument("cannot load CA " + s.ca_file + ": " + ec.message());
  } else {
    ctx.set_default_verify_paths(ec);
  }
  ctx.set_verify_mode(s.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);
  if (!s.cert_file.empty()) {
    ctx.use_certificate_chain_file(s.cert_file, ec);
    if (ec) return invalidArgument("cannot load certificate " + s.cert_file + ": " + ec.message());
    ctx.use_private_key_file(s.key_file, ssl::context::pem, ec);
    if (ec) return invalidArgument("cannot load key " + s.key_file + ": " + ec.message());
  }
  return ctx;
}

void describe(X509* cert, PeerCert& out) {
  out.present = true;
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  out.subject = buf;
  out.serial_hex = pki::serialHex(cert);
  out.spki_sha256_hex = pki::spkiSha256Hex(X509_get0_pubkey(cert));
  out.not_after_ms = pki::notAfterMs(cert);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
      if (gn->type == GEN_URI) {
        const auto* s = gn->d.uniformResourceIdentifier;
        out.uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                              static_cast<size_t>(ASN1_STRING_length(s)));
      }
    }
    GENERAL_NAMES_free(names);
  }
}

}  // namespace hwl::http::tls
