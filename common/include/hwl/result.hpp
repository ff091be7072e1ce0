// Result<T> and Error: the error model of every hwLedger library.
// Shaped like std::expected (has_value/value/error) so it can become std::expected later.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hwl {

// Canonical codes (Abseil status style); the HTTP layer maps them to statuses in one place.
enum class Code {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kConflict,
  kUnauthenticated,
  kPermissionDenied,
  kResourceExhausted,
  kFailedPrecondition,
  kUnavailable,
  kDeadlineExceeded,
  kDataLoss,
  kInternal,
  kBadGateway,  // a host or provider the server called answered with an error
};

std::string_view codeName(Code code);

struct Error {
  Code code = Code::kInternal;
  std::string message;
  // For the HTTP answer: a more specific code than codeName(code) ("no_placement"), and fields
  // added to the error object (a JSON object's text, e.g. {"hosts":{…}}); both may be empty.
  std::string reason;
  std::string details;

  [[nodiscard]] std::string toString() const {
    return std::string(codeName(code)) + ": " + message;
  }
};

inline Error invalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Error notFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Error conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
inline Error unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Error permissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Error unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Error badGateway(std::string reason, std::string m) {
  return {Code::kBadGateway, std::move(m), std::move(reason), {}};
}
inline Error internal(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Error dataLoss(std::string m) { return {Code::kDataLoss, std::move(m)}; }

// Wraps an error so that Result<T> can be built from it implicitly: `return Unexpected{err};`
// or, shorter, `return err;` (Error converts too).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT(implicit)
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(implicit)

  [[nodiscard]] bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    check();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check();
    return std::get<0>(v_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  [[nodiscard]] const Error& error() const { return std::get<1>(v_); }

 private:
  void check() const {
    if (v_.index() != 0) std::abort();  // broken invariant: value() on an error
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(implicit)
  [[nodiscard]] bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  [[nodiscard]] const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace hwl
