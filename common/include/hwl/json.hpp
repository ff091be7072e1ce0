// JSON helpers: canonical serialisation (sorted keys, no spaces) for hashed event payloads,
// strict parsing, and field accessors whose errors name the field.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/result.hpp"

namespace hwl::json {

namespace bj = boost::json;

// Canonical form: object keys sorted by byte value, no insignificant white space, numbers as
// Boost.JSON prints them. Equal values always give equal bytes.
std::string canonical(const bj::value& v);

// `s` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD, so
// that bytes from a request (a raw path, a query value) echoed in a message keep the JSON valid.
std::string validUtf8(std::string_view s);

// Parses text that must be a single JSON value; the error names the position.
Result<bj::value> parse(std::string_view text);
// Parses text that must be a JSON object.
Result<bj::object> parseObject(std::string_view text);

// Rejects keys not in `allowed`, naming the first unknown key.
Status checkKeys(const bj::object& o, std::initializer_list<std::string_view> allowed,
                 std::string_view where = {});

// Field accessors. `required` variants fail naming the field when missing or of the wrong type;
// optional ones return nullopt when missing and an error when present with the wrong type.
Result<std::string> requiredString(const bj::object& o, std::string_view key);
Result<std::optional<std::string>> optionalString(const bj::object& o, std::string_view key);
Result<std::optional<int64_t>> optionalInt(const bj::object& o, std::string_view key);
Result<std::optional<bool>> optionalBool(const bj::object& o, std::string_view key);

// Lenient readers for data this program wrote itself (events it reads back): the value, or
// ""/0/false when the key is absent or of another type.
std::string textOf(const bj::object& o, std::string_view key);
double numberOf(const bj::object& o, std::string_view key);  // any JSON number
int64_t intOf(const bj::object& o, std::string_view key);    // integers only
bool flagOf(const bj::object& o, std::string_view key);

}  // namespace hwl::json
