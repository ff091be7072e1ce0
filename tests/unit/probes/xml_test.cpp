// The XML reader: what it accepts and what it rejects.
#include "hwl/probes/xml.hpp"

#include <gtest/gtest.h>

#include <string>

#include "hwl/test_fixtures.hpp"
#include "test_support.hpp"

namespace hwl::probes {
namespace {

TEST(Xml, ElementsAttributesTextEntitiesCommentsDoctype) {
  const char* doc = R"(<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE log SYSTEM "x.dtd" [ <!ENTITY ignored "y"> ]>
<!-- leading comment -->
<log version='2'>
  <gpu id="0000:01:00.0" note="a &amp; b &quot;q&quot;">
    <name>A &lt;B&gt; &#65;&#x42; &apos;x&apos;</name>
    <!-- inner comment -->
    <empty/>
    <cdata><![CDATA[<raw> & text]]></cdata>
  </gpu>
  <gpu id="2"><name>second</name></gpu>
</log>
<!-- trailing comment -->
)";
  auto root = parseXml(doc);
  ASSERT_TRUE(root.has_value()) << root.error().message;
  EXPECT_EQ(root->name, "log");
  ASSERT_NE(root->attribute("version"), nullptr);
  EXPECT_EQ(*root->attribute("version"), "2");
  const auto gpus = root->childrenNamed("gpu");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(*gpus[0]->attribute("id"), "0000:01:00.0");
  EXPECT_EQ(*gpus[0]->attribute("note"), "a & b \"q\"");
  EXPECT_EQ(gpus[0]->textAt("name"), "A <B> AB 'x'");
  EXPECT_NE(gpus[0]->child("empty"), nullptr);
  EXPECT_EQ(gpus[0]->textAt("cdata"), "<raw> & text");
  EXPECT_EQ(root->textAt("gpu/name"), "A <B> AB 'x'");  // first match
  EXPECT_EQ(root->find("gpu/missing"), nullptr);
  EXPECT_EQ(root->textAt("gpu/missing"), "");
}

TEST(Xml, MultiByteCharacterReference) {
  auto root = parseXml("<a>&#xE9;&#8364;</a>");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->text, "\xC3\xA9\xE2\x82\xAC");
}

TEST(Xml, RejectsMalformedDocuments) {
  for (const char* bad : {
           "",                           // no root
           "<a>",                        // unterminated
           "<a></b>",                    // mismatched
           "<a><b></a></b>",             // crossed
           "<a>&nbsp;</a>",              // unknown entity
           "<a>&amp</a>",                // unterminated entity
           "<a x=1/>",                   // unquoted attribute
           "<a x='1' x='2'/>",           // duplicate attribute
           "<a/><b/>",                   // two roots
           "<a/>text",                   // text after root
           "<a><!-- x -- y --></a>",     // '--' in comment
           "<a><!-- never closed </a>",  // unterminated comment
           "<a x='<'/>",                 // '<' in attribute
           "<a>&#0;</a>",                // invalid character reference
           "<a/><!DOCTYPE a>",           // DOCTYPE after root
       }) {
    EXPECT_FALSE(parseXml(bad).has_value()) << "accepted: " << bad;
  }
}

TEST(Xml, DepthIsBounded) {
  std::string deep;
  for (int i = 0; i < kXmlMaxDepth + 5; ++i) deep += "<a>";
  for (int i = 0; i < kXmlMaxDepth + 5; ++i) deep += "</a>";
  auto r = parseXml(deep);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("deeply"), std::string::npos);
}

TEST(Xml, ErrorNamesTheLine) {
  auto r = parseXml("<a>\n<b>\n</c>\n</a>");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  EXPECT_NE(r.error().message.find("line 3"), std::string::npos) << r.error().message;
}

TEST(Xml, EveryTruncationOfARealCaptureIsRejected) {
  HWL_NEEDS_SHARED_DATA();
  const std::string doc = testing::readCapture("nvidia-t4-smi-q-x.xml");
  ASSERT_TRUE(parseXml(doc).has_value());
  const auto rootEnd = doc.rfind("</nvidia_smi_log>");
  for (std::size_t len = 0; len < rootEnd; len += 97) {
    EXPECT_FALSE(parseXml(std::string_view(doc).substr(0, len)).has_value()) << "length " << len;
  }
}

}  // namespace
}  // namespace hwl::probes
