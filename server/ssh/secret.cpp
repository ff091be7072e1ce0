// Wiping secrets (see secret.hpp).
#include "ssh/secret.hpp"

#include <openssl/crypto.h>

namespace hwl::ssh {

Secret::Secret(std::string&& value) noexcept : value_(std::move(value)) {
  // A heap buffer moved over leaves the source empty; a short one is copied and stays behind.
  // NOLINTNEXTLINE(bugprone-use-after-move): wiping the moved-from source is the point.
  if (value.capacity() > 0) OPENSSL_cleanse(value.data(), value.capacity());
  value.clear();
}

void Secret::wipe() noexcept {
  // OPENSSL_cleanse is not optimized away as a dead store would be. The whole capacity is wiped:
  // bytes past size() may hold a longer value this string held before.
  if (value_.capacity() > 0) OPENSSL_cleanse(value_.data(), value_.capacity());
  value_.clear();
}

}  // namespace hwl::ssh
