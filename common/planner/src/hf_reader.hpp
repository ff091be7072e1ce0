// ConfigReader: typed reads of the keys of one config.json object, with the error messages that
// every model-family reader shares, and a record of the keys looked up and of those that took a
// default. Internal to hwl_planner.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::planner::hf {

// How an error message names the kind of a JSON value: "a string", "an array", "null" ...
std::string jsonKindName(const boost::json::value& v);

// A key that was absent (or null) and the value a reader used in its place.
struct DefaultedKey {
  std::string key;  // the first spelling, when several are accepted
  boost::json::value value;
  bool from_model_type = false;  // the configuration class's default, not a derived value
};

// Reads keys from one config object. A bad value does not stop reading: the first problem sticks
// and the caller returns it at its next failed() check, so that the message a malformed config
// gets depends only on the order in which keys are read.
class ConfigReader {
 public:
  explicit ConfigReader(const boost::json::object& obj) : obj_(obj) {}
  // `defaults`: the configuration class's defaults, used for keys absent from `obj` (a key set
  // to null stays unset, as None does in Python). The caller keeps both objects alive.
  ConfigReader(const boost::json::object& obj, const boost::json::object* defaults)
      : obj_(obj), defaults_(defaults) {}

  [[nodiscard]] bool failed() const { return error_.has_value(); }
  [[nodiscard]] const Error& error() const { return *error_; }
  void fail(std::string message);

  // A key set to null counts as absent (Python writes None for "not set"). An absent key with a
  // class default gives the default, recorded in defaulted().
  [[nodiscard]] const boost::json::value* find(std::string_view key) const;
  [[nodiscard]] bool has(std::string_view key) const { return find(key) != nullptr; }
  // Present even when null: a few keys select a rule by being there at all.
  [[nodiscard]] bool present(std::string_view key) const;

  // A non-negative integer (JSON integers, or doubles with an integral value).
  std::optional<std::uint64_t> uintOpt(std::string_view key);
  // The first of several spellings that is present; later spellings are not looked at.
  std::optional<std::uint64_t> uintAny(std::initializer_list<std::string_view> keys);
  // Like uintAny, but the key must be present and positive; a missing key is named by its first
  // spelling.
  std::uint64_t uintReq(std::initializer_list<std::string_view> keys);

  std::optional<bool> boolOpt(std::string_view key);
  std::optional<std::string> stringOpt(std::string_view key);
  const boost::json::array* arrayOpt(std::string_view key);

  // A default is a value put in place of an absent setting the model has (a width, a count, a
  // bias, a tying); a key whose absence means "feature not used" (no experts, no sliding) takes
  // no default. Reads that apply one record it:
  //
  // uintOr takes the first spelling present, like uintAny.
  std::uint64_t uintOr(std::initializer_list<std::string_view> keys, std::uint64_t fallback);
  bool boolOr(std::string_view key, bool fallback);
  // Two spellings of one setting (Jamba's mamba_conv_bias and MambaConfig's use_conv_bias): both
  // are read and checked, the first present wins.
  bool boolEither(std::string_view key, std::string_view alias, bool fallback);
  // For defaults a reader derives itself (num_key_value_heads = num_attention_heads ...).
  void recordDefault(std::string_view key, boost::json::value value);

  // Every key looked up, present or not, in the order of first lookup.
  [[nodiscard]] const std::vector<std::string>& keysRead() const { return keys_read_; }
  [[nodiscard]] const std::vector<DefaultedKey>& defaulted() const { return defaulted_; }

 private:
  void noteRead(std::string_view key) const;
  // Which of several spellings to read: the first the config sets, else the first with a class
  // default.
  std::optional<std::string_view> spellingOf(std::initializer_list<std::string_view> keys) const;

  const boost::json::object& obj_;
  const boost::json::object* defaults_ = nullptr;
  std::optional<Error> error_;
  // Lookups are logged from const queries too.
  mutable std::vector<std::string> keys_read_;
  // Class defaults are recorded from const lookups too.
  mutable std::vector<DefaultedKey> defaulted_;
};

}  // namespace hwl::planner::hf
