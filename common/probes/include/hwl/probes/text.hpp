// Small text utilities shared by the tool-output parsers: trimming, splitting, reading sysfs
// attributes, and reading a metric value that may be "N/A", "[Not Supported]" or carry a unit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::probes {

inline constexpr std::uint64_t kBytesPerMib = 1024ULL * 1024ULL;

std::string_view trim(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);
std::vector<std::string_view> splitLines(std::string_view s);
bool startsWith(std::string_view s, std::string_view prefix);

// A metric as tools print it: "81559", "81559 MiB", "69.85 W", "36 C", "(500Mhz)", "45.0".
// Anything that is not a number followed by an optional unit ("N/A", "[N/A]",
// "[Not Supported]", "Requested functionality has been deprecated", "") is std::nullopt.
std::optional<double> parseMetric(std::string_view text);
// As parseMetric, but the number must be a non-negative integer that fits.
std::optional<std::uint64_t> parseUnsigned(std::string_view text);
// A MiB figure ("19818 MiB" or "19818") converted to bytes.
std::optional<std::uint64_t> parseMibAsBytes(std::string_view text);
// True for the placeholders tools print for an unreadable value.
bool isUnsupportedValue(std::string_view text);

// First line of a small sysfs/procfs attribute, trimmed; std::nullopt when it cannot be read.
std::optional<std::string> readAttribute(const std::string& path);

}  // namespace hwl::probes
