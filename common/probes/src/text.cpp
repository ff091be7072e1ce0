// Text utilities for the tool-output parsers.
#include "hwl/probes/text.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include "hwl/files.hpp"

namespace hwl::probes {

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::vector<std::string_view> splitLines(std::string_view s) {
  std::vector<std::string_view> out;
  for (auto line : split(s, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
  }
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool isUnsupportedValue(std::string_view text) {
  text = trim(text);
  return text.empty() || !parseMetric(text).has_value();
}

std::optional<double> parseMetric(std::string_view text) {
  text = trim(text);
  // rocm-smi prints clocks as "(500Mhz)".
  if (text.size() >= 2 && text.front() == '(' && text.back() == ')') {
    text = trim(text.substr(1, text.size() - 2));
  }
  if (text.empty()) return std::nullopt;
  const char first = text.front();
  if (!(first == '-' || first == '+' || (first >= '0' && first <= '9'))) return std::nullopt;
  if (first == '+') text.remove_prefix(1);
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !std::isfinite(value)) return std::nullopt;
  std::string_view rest = text.substr(static_cast<std::size_t>(ptr - text.data()));
  // A unit may follow, separated by a space ("MiB", "W", "%") or glued on ("Mhz", "%").
  rest = trim(rest);
  for (char c : rest) {
    const bool unitChar =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '%' || c == '/' || c == ' ';
    if (!unitChar) return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> parseUnsigned(std::string_view text) {
  const auto v = parseMetric(text);
  if (!v || *v < 0 || *v != std::floor(*v)) return std::nullopt;
  // Exact integer path so that 64-bit counters (energy, bytes) lose no precision.
  const auto t = trim(text);
  std::uint64_t out = 0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec == std::errc()) return out;
  if (*v > static_cast<double>(std::numeric_limits<std::uint64_t>::max())) return std::nullopt;
  return static_cast<std::uint64_t>(*v);
}

std::optional<std::uint64_t> parseMibAsBytes(std::string_view text) {
  const auto v = parseMetric(text);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<std::uint64_t>(std::llround(*v * static_cast<double>(kBytesPerMib)));
}

std::optional<std::string> readAttribute(const std::string& path) {
  // sysfs attributes hold at most a page; the bound only stops a mistaken path early.
  auto text = files::readFile(path, 1 << 20);
  if (!text) return std::nullopt;
  return std::string(trim(std::string_view(*text).substr(0, text->find('\n'))));
}

}  // namespace hwl::probes
