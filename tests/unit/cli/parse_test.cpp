// What a person types to hwledger becomes a typed value, or a clear refusal.
#include "parse.hpp"

#include <gtest/gtest.h>

namespace hwl::cli {
namespace {

TEST(ParseSize, UnitsAreBinaryOrDecimalAsWritten) {
  EXPECT_EQ(parseSize("24GiB").value(), 24ULL << 30);
  EXPECT_EQ(parseSize("24 GB").value(), 24'000'000'000ULL);
  EXPECT_EQ(parseSize("512MiB").value(), 512ULL << 20);
  EXPECT_EQ(parseSize("1.5gib").value(), 3ULL << 29);
  EXPECT_EQ(parseSize("4KiB").value(), 4096U);
  EXPECT_EQ(parseSize("7B").value(), 7U);
}

TEST(ParseSize, BareNumberAndUnknownUnitAreRefused) {
  auto r = parseSize("24");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("needs a unit"), std::string::npos);
  EXPECT_FALSE(parseSize("24XB").has_value());
  EXPECT_FALSE(parseSize("GiB").has_value());
  EXPECT_FALSE(parseSize("-1GiB").has_value());
  EXPECT_FALSE(parseSize("1..2GiB").has_value());
  EXPECT_FALSE(parseSize("").has_value());
}

TEST(ParseTime, Rfc3339DatesAndRelative) {
  const int64_t now = 1'800'000'000'000;
  EXPECT_EQ(parseTime("2026-12-02", now).value(), 1'796'169'600'000);
  EXPECT_EQ(parseTime("2026-12-02T10:00:00Z", now).value(), 1'796'169'600'000 + 36'000'000);
  EXPECT_EQ(parseTime("2026-12-02T12:00:00+02:00", now).value(), 1'796'169'600'000 + 36'000'000);
  EXPECT_EQ(parseTime("2026-12-02T10:00:00.250Z", now).value(), 1'796'169'600'000 + 36'000'250);
  EXPECT_EQ(parseTime("-24h", now).value(), now - 86'400'000);
  EXPECT_EQ(parseTime("-7d", now).value(), now - 7 * 86'400'000LL);
  EXPECT_EQ(parseTime("-30m", now).value(), now - 1'800'000);
  EXPECT_EQ(parseTime("now", now).value(), now);
}

TEST(ParseTime, MalformedIsRefused) {
  for (const char* bad :
       {"1796169600000", "yesterday", "-24", "-h", "-24y", "2026-13-01", "2026-02-30",
        "2026-12-02T25:00:00Z", "2026-12-02T10:00:00", "2026-12-02T10:00:00+2", ""}) {
    auto r = parseTime(bad, 0);
    EXPECT_FALSE(r.has_value()) << bad;
  }
  EXPECT_NE(parseTime("x", 0).error().message.find("RFC 3339"), std::string::npos);
}

TEST(ParseOutput, KnownFormatsOnly) {
  EXPECT_EQ(parseOutput("json").value(), Output::kJson);
  EXPECT_EQ(parseOutput("table").value(), Output::kTable);
  EXPECT_EQ(parseOutput("csv").value(), Output::kCsv);
  EXPECT_FALSE(parseOutput("yaml").has_value());
}

TEST(Nearest, SuggestsCloseWordsOnly) {
  std::vector<std::string> cmds{"hosts", "gpus", "jobs", "usage", "events", "plan", "placements"};
  EXPECT_EQ(nearest("host", cmds), "hosts");
  EXPECT_EQ(nearest("job", cmds), "jobs");
  EXPECT_EQ(nearest("evnets", cmds), "events");
  EXPECT_EQ(nearest("placement", cmds), "placements");
  EXPECT_EQ(nearest("zzzzzzzz", cmds), "");
}

}  // namespace
}  // namespace hwl::cli
