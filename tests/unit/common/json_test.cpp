// Canonical JSON and field accessors.
#include <gtest/gtest.h>

#include "hwl/json.hpp"

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
  EXPECT_EQ(checkKeys(*o, {"role", "ttl_s", "flag"}).error().message,
            "unknown field \"extra\"");
  EXPECT_FALSE(optionalInt(*o, "absent").value().has_value());
}

}  // namespace
}  // namespace hwl::json
