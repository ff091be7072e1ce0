// Private keys that enrollment requests carried as PEM, for agentless hosts the server must reach
// again: DATA/ssh/keys/<host-id>.key, mode 0600 in a 0700 directory, written atomically. Never in
// the ledger (which is exported and verified by others), never logged. A key is removed when its
// host is revoked. Encrypted keys are not kept: their passphrase is used once and never stored.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "hwl/result.hpp"
#include "ssh/secret.hpp"

namespace hwl::agentless {

class KeyStore {
 public:
  explicit KeyStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  // The file the key of `host_id` is (or would be) kept in. host_id must be a host id
  // (letters, digits, '-', '_'): anything else is refused, so no path can be built from it.
  [[nodiscard]] Result<std::filesystem::path> pathFor(std::string_view host_id) const;
  [[nodiscard]] Status put(std::string_view host_id, const ssh::Secret& pem) const;
  void remove(std::string_view host_id) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace hwl::agentless
