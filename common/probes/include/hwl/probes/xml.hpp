// A small, strict XML reader for `nvidia-smi -q -x`: elements, attributes, text, the five
// predefined entities and character references, comments, CDATA, processing instructions and
// a DOCTYPE (skipped, internal subset included). No namespaces, no external entities.
// Malformed input (mismatched tags, unknown entities, text after the root…) is an error.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::probes {

struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::string text;  // concatenated character data directly inside this element
  std::vector<XmlElement> children;

  // First child with this name, or nullptr.
  [[nodiscard]] const XmlElement* child(std::string_view childName) const;
  // All children with this name.
  [[nodiscard]] std::vector<const XmlElement*> childrenNamed(std::string_view childName) const;
  // Follows a '/'-separated path of child names ("fb_memory_usage/total"); nullptr if absent.
  [[nodiscard]] const XmlElement* find(std::string_view path) const;
  // Trimmed text at a path, or "" when the element is absent.
  [[nodiscard]] std::string textAt(std::string_view path) const;
  [[nodiscard]] const std::string* attribute(std::string_view attrName) const;
};

inline constexpr int kXmlMaxDepth = 128;

// Parses a whole document and returns its root element.
Result<XmlElement> parseXml(std::string_view document);

}  // namespace hwl::probes
