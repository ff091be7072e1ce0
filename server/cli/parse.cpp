// Typed parsing of sizes, times, output formats and suggestions for the CLI.
#include "parse.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>

namespace hwl::cli {

namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

bool digits(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int num(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

Result<uint64_t> parseSize(std::string_view text) {
  std::string_view s = text;
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string_view number = s.substr(0, i);
  std::string_view unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (number.empty() || number.front() == '.' || std::count(number.begin(), number.end(), '.') > 1)
    return invalidArgument("bad size \"" + std::string(text) +
                           "\": expected a number and a unit, e.g. 24GiB");
  if (unit.empty())
    return invalidArgument("size \"" + std::string(text) +
                           "\" needs a unit: B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)");
  static const std::pair<const char*, double> kUnits[] = {{"b", 1.0},
                                                          {"kib", 1024.0},
                                                          {"mib", 1048576.0},
                                                          {"gib", 1073741824.0},
                                                          {"tib", 1099511627776.0},
                                                          {"kb", 1e3},
                                                          {"mb", 1e6},
                                                          {"gb", 1e9},
                                                          {"tb", 1e12},
                                                          {"k", 1024.0},
                                                          {"m", 1048576.0},
                                                          {"g", 1073741824.0},
                                                          {"t", 1099511627776.0}};
  std::string u = lower(unit);
  double mult = 0;
  for (const auto& [name, m] : kUnits)
    if (u == name) mult = m;
  if (mult == 0)
    return invalidArgument("unknown size unit \"" + std::string(unit) + "\" in \"" +
                           std::string(text) + "\": use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB");
  double v = 0;
  auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (ec != std::errc{} || p != number.data() + number.size())
    return invalidArgument("bad size \"" + std::string(text) + "\"");
  double bytes = std::round(v * mult);
  if (!(bytes >= 0) || bytes > 9.0e18)
    return invalidArgument("size \"" + std::string(text) + "\" is too large");
  return static_cast<uint64_t>(bytes);
}

Result<std::string> windowQuery(const std::string& group_by, std::string_view from,
                                std::string_view to, int64_t now_ms) {
  std::string q = "?group_by=" + group_by;
  for (auto [name, text] : {std::pair{"from", from}, std::pair{"to", to}}) {
    if (text.empty()) continue;
    auto t = parseTime(text, now_ms);
    if (!t) return t.error();
    if (*t > 0) q += std::string("&") + name + "=" + std::to_string(*t);
  }
  return q;
}

Result<int64_t> parseTime(std::string_view text, int64_t now_ms) {
  auto bad = [&] {
    return invalidArgument("bad time \"" + std::string(text) +
                           "\": use RFC 3339 (2026-12-02T10:00:00Z), a date (2026-12-02), "
                           "a relative time (-24h, -7d, -30m, -90s) or now");
  };
  if (text == "now") return now_ms;
  if (!text.empty() && text.front() == '-') {
    std::string_view n = text.substr(1, text.size() - 2);
    if (text.size() < 3 ||
        !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        n.size() > 9)
      return bad();
    int64_t k = 0;
    std::from_chars(n.data(), n.data() + n.size(), k);
    int64_t unit = 0;
    switch (text.back()) {
      case 's':
        unit = 1000;
        break;
      case 'm':
        unit = 60'000;
        break;
      case 'h':
        unit = 3'600'000;
        break;
      case 'd':
        unit = 86'400'000;
        break;
      case 'w':
        unit = 7 * 86'400'000LL;
        break;
      default:
        return bad();
    }
    return now_ms - k * unit;
  }
  // YYYY-MM-DD[(T|t| )HH:MM:SS[.frac](Z|z|(+|-)HH:MM)]
  if (text.size() < 10 || !digits(text.substr(0, 4), 4) || text[4] != '-' ||
      !digits(text.substr(5, 2), 2) || text[7] != '-' || !digits(text.substr(8, 2), 2))
    return bad();
  std::tm tm{};
  tm.tm_year = num(text.substr(0, 4)) - 1900;
  tm.tm_mon = num(text.substr(5, 2)) - 1;
  tm.tm_mday = num(text.substr(8, 2));
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31) return bad();
  int64_t offset_s = 0, frac_ms = 0;
  if (text.size() > 10) {
    std::string_view r = text.substr(10);
    if (r.size() < 9 || (r[0] != 'T' && r[0] != 't' && r[0] != ' ') || !digits(r.substr(1, 2), 2) ||
        r[3] != ':' || !digits(r.substr(4, 2), 2) || r[6] != ':' || !digits(r.substr(7, 2), 2))
      return bad();
    tm.tm_hour = num(r.substr(1, 2));
    tm.tm_min = num(r.substr(4, 2));
    tm.tm_sec = num(r.substr(7, 2));
    if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) return bad();
    r.remove_prefix(9);
    if (!r.empty() && r[0] == '.') {
      size_t j = 1;
      int64_t scale = 100;
      while (j < r.size() && r[j] >= '0' && r[j] <= '9') {
        frac_ms += (r[j] - '0') * scale;
        scale /= 10;
        ++j;
      }
      if (j == 1) return bad();
      r.remove_prefix(j);
    }
    if (r == "Z" || r == "z") {
    } else if (r.size() == 6 && (r[0] == '+' || r[0] == '-') && digits(r.substr(1, 2), 2) &&
               r[3] == ':' && digits(r.substr(4, 2), 2)) {
      int h = num(r.substr(1, 2)), m = num(r.substr(4, 2));
      if (h > 23 || m > 59) return bad();
      offset_s = (r[0] == '+' ? 1 : -1) * (h * 3600 + m * 60);
    } else {
      return bad();
    }
  }
  std::tm check = tm;
  time_t t = timegm(&check);
  if (check.tm_mday != tm.tm_mday) return bad();  // e.g. 2026-02-30
  return (static_cast<int64_t>(t) - offset_s) * 1000 + frac_ms;
}

Result<uint64_t> parseCount(std::string_view text, uint64_t max) {
  const std::string what = "must be a whole number from 1 to " + std::to_string(max) + ", got \"" +
                           std::string(text) + "\"";
  if (text.empty() || text.size() > 20) return invalidArgument(what);
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return invalidArgument(what);
    if (v > (UINT64_MAX - static_cast<uint64_t>(c - '0')) / 10) return invalidArgument(what);
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0 || v > max) return invalidArgument(what);
  return v;
}

Result<Output> parseOutput(std::string_view text) {
  if (text == "table") return Output::kTable;
  if (text == "json") return Output::kJson;
  if (text == "csv") return Output::kCsv;
  return invalidArgument("bad output format \"" + std::string(text) + "\": use json, table or csv");
}

std::string nearest(std::string_view word, const std::vector<std::string>& known) {
  auto dist = [](std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] =
            std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& k : known) {
    size_t d = dist(word, k);
    if (k.starts_with(word) && word.size() >= 2) d = std::min<size_t>(d, 1);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

}  // namespace hwl::cli
