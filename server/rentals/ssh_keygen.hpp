// A fresh Ed25519 key pair for the server to reach a rented instance: the private key in
// OpenSSH's "openssh-key-v1" format (unencrypted, as libssh2 and OpenSSH read it) and the public
// key as an authorized_keys line. Made with OpenSSL's generator; the private key never leaves the
// server's key directory.
#pragma once

#include <string>

#include "hwl/result.hpp"

namespace hwl::rentals {

struct SshKeyPair {
  std::string private_openssh;  // "-----BEGIN OPENSSH PRIVATE KEY-----\n…"
  std::string public_line;      // "ssh-ed25519 AAAA… comment"
};

Result<SshKeyPair> makeEd25519KeyPair(const std::string& comment);

}  // namespace hwl::rentals
