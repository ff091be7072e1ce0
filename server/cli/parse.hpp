// Typed parsing of what a person types to hwledger: sizes with units, times, output formats, and
// the nearest known word for a mistyped one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::cli {

enum class Output { kTable, kJson, kCsv };

// "24GiB", "24 GB", "512MiB", "1.5TiB". A bare number is refused: the unit must be said.
[[nodiscard]] Result<uint64_t> parseSize(std::string_view text);

// RFC 3339 ("2026-12-02T10:00:00Z", "...+02:00"), a bare date (midnight UTC), a relative form
// ("-24h", "-7d", "-30m", "-90s") counted back from now_ms, or "now". Returns Unix milliseconds.
[[nodiscard]] Result<int64_t> parseTime(std::string_view text, int64_t now_ms);

// "?group_by=G[&from=MS][&to=MS]": the query of a report over a window (usage, costs), the times as
// parseTime reads them; empty ones are left to the server's defaults.
[[nodiscard]] Result<std::string> windowQuery(const std::string& group_by, std::string_view from,
                                              std::string_view to, int64_t now_ms);

// A count typed for a flag (--context, --batch, --tp): a whole number from 1 to `max`. "-5", "0",
// "1e3" and "12abc" are refused, before CLI11 converts (and would wrap) them; the message is
// meant to follow the flag's name.
[[nodiscard]] Result<uint64_t> parseCount(std::string_view text, uint64_t max);

[[nodiscard]] Result<Output> parseOutput(std::string_view text);

// The known word closest to `word` by edit distance, or "" when none is close enough.
std::string nearest(std::string_view word, const std::vector<std::string>& known);

}  // namespace hwl::cli
