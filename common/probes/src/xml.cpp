// Recursive-descent XML reader; positions in error messages are 1-based line numbers.
#include "hwl/probes/xml.hpp"

#include <charconv>

#include "hwl/probes/text.hpp"

namespace hwl::probes {

const XmlElement* XmlElement::child(std::string_view childName) const {
  for (const auto& c : children) {
    if (c.name == childName) return &c;
  }
  return nullptr;
}

std::vector<const XmlElement*> XmlElement::childrenNamed(std::string_view childName) const {
  std::vector<const XmlElement*> out;
  for (const auto& c : children) {
    if (c.name == childName) out.push_back(&c);
  }
  return out;
}

const XmlElement* XmlElement::find(std::string_view path) const {
  const XmlElement* cur = this;
  for (auto part : split(path, '/')) {
    if (part.empty()) continue;
    cur = cur->child(part);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

std::string XmlElement::textAt(std::string_view path) const {
  const XmlElement* e = find(path);
  return e != nullptr ? std::string(trim(e->text)) : std::string();
}

const std::string* XmlElement::attribute(std::string_view attrName) const {
  for (const auto& [k, v] : attributes) {
    if (k == attrName) return &v;
  }
  return nullptr;
}

namespace {

bool isNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void appendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view doc) : s_(doc) {}

  Result<XmlElement> document() {
    if (startsWith(s_, "\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte order mark
    if (auto st = misc(true); !st) return st.error();
    if (!at("<") || !isNameStart(peek(1))) return fail("expected the root element");
    XmlElement root;
    if (auto st = element(root, 0); !st) return st.error();
    if (auto st = misc(false); !st) return st.error();
    if (pos_ != s_.size()) return fail("content after the root element");
    return root;
  }

 private:
  [[nodiscard]] bool at(std::string_view t) const { return s_.substr(pos_, t.size()) == t; }
  [[nodiscard]] char peek(std::size_t off = 0) const {
    return pos_ + off < s_.size() ? s_[pos_ + off] : '\0';
  }
  void skipSpace() {
    while (pos_ < s_.size() && isSpace(s_[pos_])) ++pos_;
  }
  [[nodiscard]] Error fail(const std::string& what) const {
    std::size_t line = 1;
    for (std::size_t i = 0; i < pos_ && i < s_.size(); ++i) line += s_[i] == '\n' ? 1 : 0;
    return invalidArgument("xml: " + what + " at line " + std::to_string(line));
  }

  // Comments, processing instructions, whitespace and (before the root) one DOCTYPE.
  Status misc(bool prolog) {
    bool seenDoctype = false;
    while (true) {
      skipSpace();
      if (at("<!--")) {
        if (auto st = comment(); !st) return st;
      } else if (at("<?")) {
        if (auto st = processingInstruction(); !st) return st;
      } else if (at("<!DOCTYPE")) {
        if (!prolog || seenDoctype) return fail("unexpected DOCTYPE");
        seenDoctype = true;
        if (auto st = doctype(); !st) return st;
      } else {
        return {};
      }
    }
  }

  Status comment() {
    const auto end = s_.find("-->", pos_ + 4);
    if (end == std::string_view::npos) return fail("unterminated comment");
    if (s_.substr(pos_ + 4, end - pos_ - 4).find("--") != std::string_view::npos) {
      return fail("'--' inside a comment");
    }
    pos_ = end + 3;
    return {};
  }

  Status processingInstruction() {
    const auto end = s_.find("?>", pos_ + 2);
    if (end == std::string_view::npos) return fail("unterminated processing instruction");
    pos_ = end + 2;
    return {};
  }

  Status doctype() {
    pos_ += 9;
    char quote = 0;
    int bracket = 0;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '[') {
        ++bracket;
      } else if (c == ']') {
        --bracket;
      } else if (c == '>' && bracket == 0) {
        return {};
      }
    }
    return fail("unterminated DOCTYPE");
  }

  Result<std::string> name() {
    if (!isNameStart(peek())) return fail("expected a name");
    const auto start = pos_;
    while (pos_ < s_.size() && isNameChar(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  // Decodes "&…;" at pos_ into out.
  Status entity(std::string& out) {
    const auto end = s_.find(';', pos_);
    if (end == std::string_view::npos || end - pos_ > 12) return fail("unterminated entity");
    const auto ent = s_.substr(pos_ + 1, end - pos_ - 1);
    if (ent == "lt") {
      out += '<';
    } else if (ent == "gt") {
      out += '>';
    } else if (ent == "amp") {
      out += '&';
    } else if (ent == "quot") {
      out += '"';
    } else if (ent == "apos") {
      out += '\'';
    } else if (startsWith(ent, "#")) {
      const bool hex = startsWith(ent, "#x");
      const auto digits = ent.substr(hex ? 2 : 1);
      std::uint32_t cp = 0;
      const auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || cp == 0 ||
          cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return fail("bad character reference");
      }
      appendUtf8(out, cp);
    } else {
      return fail("unknown entity &" + std::string(ent) + ";");
    }
    pos_ = end + 1;
    return {};
  }

  Status attributes(XmlElement& e) {
    while (true) {
      const auto before = pos_;
      skipSpace();
      if (at(">") || at("/>")) return {};
      if (pos_ == before) return fail("expected whitespace before an attribute");
      auto key = name();
      if (!key) return key.error();
      skipSpace();
      if (peek() != '=') return fail("expected '=' after attribute " + *key);
      ++pos_;
      skipSpace();
      const char quote = peek();
      if (quote != '"' && quote != '\'') return fail("expected a quoted attribute value");
      ++pos_;
      std::string value;
      while (true) {
        if (pos_ >= s_.size()) return fail("unterminated attribute value");
        const char c = s_[pos_];
        if (c == quote) {
          ++pos_;
          break;
        }
        if (c == '<') return fail("'<' in an attribute value");
        if (c == '&') {
          if (auto st = entity(value); !st) return st;
        } else {
          value += c;
          ++pos_;
        }
      }
      if (e.attribute(*key) != nullptr) return fail("duplicate attribute " + *key);
      e.attributes.emplace_back(std::move(*key), std::move(value));
    }
  }

  Status element(XmlElement& e, int depth) {
    if (depth >= kXmlMaxDepth) return fail("elements nested too deeply");
    ++pos_;  // '<'
    auto n = name();
    if (!n) return n.error();
    e.name = std::move(*n);
    if (auto st = attributes(e); !st) return st;
    if (at("/>")) {
      pos_ += 2;
      return {};
    }
    ++pos_;  // '>'
    while (true) {
      if (pos_ >= s_.size()) return fail("unterminated element <" + e.name + ">");
      if (at("</")) {
        pos_ += 2;
        auto closing = name();
        if (!closing) return closing.error();
        if (*closing != e.name) {
          return fail("</" + *closing + "> does not close <" + e.name + ">");
        }
        skipSpace();
        if (peek() != '>') return fail("expected '>'");
        ++pos_;
        return {};
      }
      if (at("<!--")) {
        if (auto st = comment(); !st) return st;
      } else if (at("<![CDATA[")) {
        const auto end = s_.find("]]>", pos_ + 9);
        if (end == std::string_view::npos) return fail("unterminated CDATA");
        e.text.append(s_.substr(pos_ + 9, end - pos_ - 9));
        pos_ = end + 3;
      } else if (at("<?")) {
        if (auto st = processingInstruction(); !st) return st;
      } else if (at("<")) {
        XmlElement c;
        if (auto st = element(c, depth + 1); !st) return st;
        e.children.push_back(std::move(c));
      } else if (at("&")) {
        if (auto st = entity(e.text); !st) return st;
      } else {
        const char c = s_[pos_++];
        if (c == '>' && pos_ >= 3 && s_.substr(pos_ - 3, 3) == "]]>") {
          return fail("']]>' in character data");
        }
        e.text += c;
      }
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

Result<XmlElement> parseXml(std::string_view document) { return Parser(document).document(); }

}  // namespace hwl::probes
