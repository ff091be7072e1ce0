// Tolerant JSON reading for files written by Python's json module (bare Infinity/NaN literals).
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "hwl/result.hpp"

namespace hwl::planner {

// Replaces the bare tokens Infinity, -Infinity and NaN outside strings by null, so that a strict
// parser accepts what Python's json.dump writes by default. Strings are left untouched.
std::string replaceNonFiniteLiterals(std::string_view text);

// Parses JSON text after replaceNonFiniteLiterals; `what` names the document in errors
// ("config.json: invalid JSON at offset 12: syntax error").
Result<boost::json::value> parseJsonLenient(std::string_view text, std::string_view what);

}  // namespace hwl::planner
