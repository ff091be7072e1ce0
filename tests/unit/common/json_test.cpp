// Canonical JSON and field accessors.
#include "hwl/json.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <utility>
#include <vector>

namespace hwl::json {
namespace {

TEST(CanonicalJson, SortsKeysRecursivelyWithoutSpaces) {
  auto v = parse(R"({ "b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "s"} })");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(canonical(*v), R"({"a":{"c":"s","z":[3,{"x":null,"y":true}]},"b":1})");
}

TEST(CanonicalJson, EqualValuesGiveEqualBytes) {
  auto a = parse(R"({"x":1,"y":"é\n"})");
  auto b = parse("{\"y\":\"\\u00e9\\n\",  \"x\":1}");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(canonical(*a), canonical(*b));
}

TEST(JsonParse, ErrorsAreInvalidArgument) {
  auto v = parseObject("{\"a\":");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code, Code::kInvalidArgument);
  EXPECT_NE(v.error().message.find("invalid JSON"), std::string::npos);
  auto arr = parseObject("[1]");
  ASSERT_FALSE(arr.has_value());
  EXPECT_EQ(arr.error().message, "invalid JSON: the body must be a JSON object");
}

TEST(JsonFields, ErrorsNameTheField) {
  auto o = parseObject(R"({"role": 3, "ttl_s": "x", "flag": 1, "extra": 0})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(requiredString(*o, "role").error().message,
            "field \"role\" must be a string, not an integer");
  EXPECT_EQ(requiredString(*o, "missing").error().message, "field \"missing\" is required");
  EXPECT_EQ(optionalInt(*o, "ttl_s").error().message,
            "field \"ttl_s\" must be an integer, not a string");
  EXPECT_EQ(optionalBool(*o, "flag").error().message,
            "field \"flag\" must be a boolean, not an integer");
  EXPECT_EQ(checkKeys(*o, {"role", "ttl_s", "flag"}).error().message, "unknown field \"extra\"");
  EXPECT_FALSE(optionalInt(*o, "absent").value().has_value());
}

TEST(JsonParse, DuplicateKeysAreRefusedAtEveryDepth) {
  // boost::json::object keeps the last of two equal keys: {"role":"viewer","role":"admin"} would
  // read as an admin. Each of these names one key twice in one object.
  const std::vector<std::pair<std::string, std::string>> dups = {
      {R"({"role":"viewer","role":"admin"})", "role"},
      {R"({"a":1,"b":{"x":1,"y":2,"x":3}})", "x"},
      {R"([{"k":1},{"k":1,"k":2}])", "k"},
      {R"({"a":"x","\u0061":"y"})", "a"},  // the same key, spelled with an escape
      {R"({"":1,"":2})", ""},
  };
  for (const auto& [text, key] : dups) {
    SCOPED_TRACE(text);
    auto v = parse(text);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().code, Code::kInvalidArgument);
    EXPECT_EQ(v.error().message, "invalid JSON: duplicate key \"" + key + "\"");
  }
  // The same key in different objects, siblings or nested, is fine; so is a key equal to a value.
  auto ok = parse(R"({"k":{"k":{"k":1}},"l":[{"k":1},{"k":2}],"m":"k"})");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(canonical(*ok), R"({"k":{"k":{"k":1}},"l":[{"k":1},{"k":2}],"m":"k"})");
}

TEST(JsonParse, StrictParserKeepsTheUsualRules) {
  for (const char* bad : {"", "{", "{\"a\":1} x", "[1,]", "{\"a\" 1}", "nul", "{\"a\":1,}"}) {
    SCOPED_TRACE(bad);
    auto v = parse(bad);
    ASSERT_FALSE(v.has_value());
    EXPECT_NE(v.error().message.find("invalid JSON"), std::string::npos);
  }
  std::string deep(65, '[');
  deep += std::string(65, ']');
  EXPECT_FALSE(parse(deep).has_value()) << "nesting deeper than 64 is refused";
  std::string fine(64, '[');
  fine += std::string(64, ']');
  EXPECT_TRUE(parse(fine).has_value());
  auto v = parse(R"({"i":-5,"u":18446744073709551615,"d":1.5,"b":true,"n":null,"s":"\u00e9"})");
  ASSERT_TRUE(v.has_value());
  const auto& o = v->as_object();
  EXPECT_EQ(o.at("i").as_int64(), -5);
  EXPECT_EQ(o.at("u").as_uint64(), 18446744073709551615ULL);
  EXPECT_EQ(o.at("d").as_double(), 1.5);
  EXPECT_TRUE(o.at("b").as_bool());
  EXPECT_TRUE(o.at("n").is_null());
  EXPECT_EQ(o.at("s").as_string(), "\xc3\xa9");
  // A body with many keys parses in linear time (one hash set for the whole document).
  std::string big = "{";
  for (int i = 0; i < 100000; ++i) big += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
  big += "}";
  auto b = parse(big);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->as_object().size(), 100000u);
}

TEST(JsonTest, ValidUtf8KeepsWellFormedTextAndReplacesEveryBadByte) {
  EXPECT_EQ(validUtf8("plain /v1/jobs"), "plain /v1/jobs");
  EXPECT_EQ(validUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(validUtf8("/\xff\xffv1"), "/" + r + r + "v1");  // bytes that never start UTF-8
  EXPECT_EQ(validUtf8("\xc0\xaf"), r + r);                  // overlong '/'
  EXPECT_EQ(validUtf8("\xed\xa0\x80"), r + r + r);          // a UTF-16 surrogate
  EXPECT_EQ(validUtf8("\xf4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(validUtf8("a\xe2\x82"), "a" + r + r);           // cut short at the end
  // Whatever goes in, the result serialises to JSON that parses back.
  const std::string raw = "x\xff\xc3(\xe2\x28\xa1";
  auto back = parse(boost::json::serialize(boost::json::value(validUtf8(raw))));
  EXPECT_TRUE(back.has_value());
}

TEST(JsonTest, OptionalIntRefusesDoublesOutsideInt64) {
  boost::json::object o{{"a", 1e108}, {"b", -1e30}, {"c", 3.0}, {"d", 2.5}};
  EXPECT_FALSE(optionalInt(o, "a").has_value());
  EXPECT_FALSE(optionalInt(o, "b").has_value());
  ASSERT_TRUE(optionalInt(o, "c").has_value());
  EXPECT_EQ(*optionalInt(o, "c").value(), 3);
  EXPECT_FALSE(optionalInt(o, "d").has_value());
}

// The lenient readers of data the program wrote itself: the value, else ""/0/false.
TEST(JsonTest, LenientReadersFallBackOnAbsentOrOtherTypes) {
  const bj::object o = boost::json::parse(
                           R"({"s": "x", "i": 7, "u": 18446744073709551615, "d": 2.5,
                               "b": true, "n": null})")
                           .as_object();
  EXPECT_EQ(textOf(o, "s"), "x");
  EXPECT_EQ(textOf(o, "i"), "");
  EXPECT_EQ(textOf(o, "none"), "");
  EXPECT_EQ(numberOf(o, "i"), 7.0);
  EXPECT_EQ(numberOf(o, "d"), 2.5);
  EXPECT_EQ(numberOf(o, "s"), 0.0);
  EXPECT_EQ(intOf(o, "i"), 7);
  EXPECT_EQ(intOf(o, "d"), 0);  // integers only
  EXPECT_EQ(intOf(o, "n"), 0);
  EXPECT_TRUE(flagOf(o, "b"));
  EXPECT_FALSE(flagOf(o, "s"));
  EXPECT_FALSE(flagOf(o, "none"));
}

}  // namespace
}  // namespace hwl::json
