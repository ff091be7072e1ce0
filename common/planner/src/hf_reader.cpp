// ConfigReader: typed reads of config.json keys, the wording of their error messages, and the
// record of keys looked up and defaulted.
#include "hf_reader.hpp"

#include <algorithm>
#include <cmath>

namespace hwl::planner::hf {
namespace json = boost::json;

std::string jsonKindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

void ConfigReader::fail(std::string message) {
  if (!error_) error_ = invalidArgument("config.json: " + std::move(message));
}

void ConfigReader::noteRead(std::string_view key) const {
  if (std::find(keys_read_.begin(), keys_read_.end(), key) == keys_read_.end()) {
    keys_read_.emplace_back(key);
  }
}

const json::value* ConfigReader::find(std::string_view key) const {
  noteRead(key);
  const auto it = obj_.find(key);
  if (it == obj_.end()) {
    const json::value* d = defaults_ != nullptr ? defaults_->if_contains(key) : nullptr;
    if (d != nullptr) {
      const bool recorded = std::any_of(defaulted_.begin(), defaulted_.end(),
                                        [&](const DefaultedKey& k) { return k.key == key; });
      if (!recorded) defaulted_.push_back({std::string(key), *d, true});
    }
    return d;
  }
  if (it->value().is_null()) return nullptr;
  return &it->value();
}

bool ConfigReader::present(std::string_view key) const {
  noteRead(key);
  return obj_.contains(key) || (defaults_ != nullptr && defaults_->contains(key));
}

std::optional<std::uint64_t> ConfigReader::uintOpt(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  // Python writes 4096.0 for a float-typed field; below 1.8e19 the value fits a uint64.
  if (v->is_double() && v->as_double() >= 0 && v->as_double() < 1.8e19 &&
      std::floor(v->as_double()) == v->as_double()) {
    return static_cast<std::uint64_t>(v->as_double());
  }
  fail("key '" + std::string(key) + "' must be a non-negative integer, got " +
       (v->is_number() ? "a negative or fractional number" : jsonKindName(*v)));
  return std::nullopt;
}

std::optional<std::string_view> ConfigReader::spellingOf(
    std::initializer_list<std::string_view> keys) const {
  for (auto k : keys) noteRead(k);
  // A spelling the config uses wins over a class default of another spelling.
  for (auto k : keys) {
    const auto it = obj_.find(k);
    if (it != obj_.end() && !it->value().is_null()) return k;
  }
  for (auto k : keys) {
    if (!obj_.contains(k) && defaults_ != nullptr && defaults_->contains(k)) return k;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> ConfigReader::uintAny(std::initializer_list<std::string_view> keys) {
  if (auto k = spellingOf(keys)) return uintOpt(*k);
  return std::nullopt;
}

std::uint64_t ConfigReader::uintReq(std::initializer_list<std::string_view> keys) {
  if (auto k = spellingOf(keys)) {
    auto v = uintOpt(*k);
    if (v && *v == 0) fail("key '" + std::string(*k) + "' must be positive, got 0");
    return v.value_or(0);
  }
  fail("missing required key '" + std::string(*keys.begin()) + "'");
  return 0;
}

std::optional<bool> ConfigReader::boolOpt(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_bool()) {
    fail("key '" + std::string(key) + "' must be a boolean, got " + jsonKindName(*v));
    return std::nullopt;
  }
  return v->as_bool();
}

std::optional<std::string> ConfigReader::stringOpt(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    fail("key '" + std::string(key) + "' must be a string, got " + jsonKindName(*v));
    return std::nullopt;
  }
  return std::string(v->as_string());
}

const json::array* ConfigReader::arrayOpt(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    fail("key '" + std::string(key) + "' must be an array, got " + jsonKindName(*v));
    return nullptr;
  }
  return &v->as_array();
}

std::uint64_t ConfigReader::uintOr(std::initializer_list<std::string_view> keys,
                                   std::uint64_t fallback) {
  if (auto k = spellingOf(keys)) return uintOpt(*k).value_or(fallback);
  recordDefault(*keys.begin(), fallback);
  return fallback;
}

bool ConfigReader::boolOr(std::string_view key, bool fallback) {
  if (has(key)) return boolOpt(key).value_or(fallback);
  recordDefault(key, fallback);
  return fallback;
}

bool ConfigReader::boolEither(std::string_view key, std::string_view alias, bool fallback) {
  const std::optional<bool> first = boolOpt(key);
  const std::optional<bool> second = boolOpt(alias);
  if (!has(key) && !has(alias)) recordDefault(key, fallback);
  return first.value_or(second.value_or(fallback));
}

void ConfigReader::recordDefault(std::string_view key, json::value value) {
  defaulted_.push_back({std::string(key), std::move(value), false});
}

}  // namespace hwl::planner::hf
