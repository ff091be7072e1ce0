// A secret held in memory only as long as it is needed (a key passphrase, a PEM private key):
// wiped when it is destroyed, moved from or reassigned, and never printed.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace hwl::ssh {

class Secret {
 public:
  Secret() = default;
  Secret(std::string_view value) : value_(value) {}    // NOLINT(implicit): settings read naturally
  Secret(const char* value) : value_(value) {}         // NOLINT(implicit)
  Secret(const std::string& value) : value_(value) {}  // NOLINT(implicit)
  // Takes the bytes over and wipes what the source string may still hold.
  Secret(std::string&& value) noexcept;  // NOLINT(implicit)
  Secret(const Secret& other) = default;
  // A moved-from std::string can keep its bytes in the small-string buffer: wipe them.
  Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }
  Secret& operator=(const Secret& other) {
    if (this != &other) {
      wipe();
      value_ = other.value_;
    }
    return *this;
  }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      wipe();
      value_ = other.value_;
      other.wipe();
    }
    return *this;
  }
  ~Secret() { wipe(); }

  [[nodiscard]] bool empty() const { return value_.empty(); }
  // The only way to read it: callers pass it straight to the library that needs it.
  [[nodiscard]] const std::string& reveal() const { return value_; }
  // Overwrites the bytes (in a way the compiler may not remove) and empties the secret.
  void wipe() noexcept;

 private:
  std::string value_;
};

}  // namespace hwl::ssh
