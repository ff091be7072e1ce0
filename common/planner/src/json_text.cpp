// Tolerant JSON: Python's json.dump writes bare Infinity/NaN, which strict parsers reject.
#include "hwl/planner/json_text.hpp"

#include <boost/json/parse.hpp>
#include <cctype>

namespace hwl::planner {
namespace {

bool isIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

}  // namespace

std::string replaceNonFiniteLiterals(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    const bool boundary = i == 0 || !isIdentChar(text[i - 1]);
    auto token_at = [&](std::size_t pos, std::string_view token) {
      return text.substr(pos, token.size()) == token &&
             (pos + token.size() >= text.size() || !isIdentChar(text[pos + token.size()]));
    };
    if (boundary && c == '-' && token_at(i + 1, "Infinity")) {
      out += "null";
      i += 8;
      continue;
    }
    if (boundary && token_at(i, "Infinity")) {
      out += "null";
      i += 7;
      continue;
    }
    if (boundary && token_at(i, "NaN")) {
      out += "null";
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

Result<boost::json::value> parseJsonLenient(std::string_view text, std::string_view what) {
  const std::string cleaned = replaceNonFiniteLiterals(text);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(cleaned, ec);
  if (ec) {
    return invalidArgument(std::string(what) + ": invalid JSON: " + ec.message());
  }
  return v;
}

}  // namespace hwl::planner
