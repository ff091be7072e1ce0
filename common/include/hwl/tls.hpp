// TLS contexts (TLS 1.3 only) and peer certificate inspection, shared by server and clients.
// Includes Asio SSL: only for translation units that already use Beast.
#pragma once

#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <string>

#include "hwl/http.hpp"

namespace hwl::http::tls {

Result<boost::asio::ssl::context> makeServerContext(const std::string& cert_file,
                                                    const std::string& key_file,
                                                    const std::string& client_ca_file,
                                                    ClientCertMode mode);
Result<boost::asio::ssl::context> makeClientContext(const ClientSettings& s);
void describe(X509* cert, PeerCert& out);

}  // namespace hwl::http::tls
