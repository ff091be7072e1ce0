// Canonical JSON and strict field access.
#include "hwl/json.hpp"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_stack.hpp>
#include <cmath>
#include <cstring>
#include <unordered_set>
#include <vector>

namespace hwl::json {

namespace {

void writeCanonical(const bj::value& v, std::string& out) {
  switch (v.kind()) {
    case bj::kind::object: {
      const auto& o = v.get_object();
      std::vector<const bj::key_value_pair*> items;
      items.reserve(o.size());
      for (const auto& kv : o) items.push_back(&kv);
      std::sort(items.begin(), items.end(),
                [](const auto* a, const auto* b) { return a->key() < b->key(); });
      out.push_back('{');
      bool first = true;
      for (const auto* kv : items) {
        if (!first) out.push_back(',');
        first = false;
        out += bj::serialize(bj::string_view(kv->key()));
        out.push_back(':');
        writeCanonical(kv->value(), out);
      }
      out.push_back('}');
      break;
    }
    case bj::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        writeCanonical(e, out);
      }
      out.push_back(']');
      break;
    }
    default:
      out += bj::serialize(v);
  }
}

const char* kindName(bj::kind k) {
  switch (k) {
    case bj::kind::null:
      return "null";
    case bj::kind::bool_:
      return "a boolean";
    case bj::kind::int64:
    case bj::kind::uint64:
      return "an integer";
    case bj::kind::double_:
      return "a number";
    case bj::kind::string:
      return "a string";
    case bj::kind::array:
      return "an array";
    case bj::kind::object:
      return "an object";
  }
  return "unknown";
}

}  // namespace

std::string canonical(const bj::value& v) {
  std::string out;
  writeCanonical(v, out);
  return out;
}

namespace {

// Builds the value as boost::json::parser does (a value_stack), and refuses an object that
// names a key twice: boost::json::object keeps only the last one, so after parsing it is too
// late to notice. Keys are remembered per object as (object ordinal, key) in one hash set.
class StrictHandler {
 public:
  static constexpr std::size_t max_object_size = bj::object::max_size();
  static constexpr std::size_t max_array_size = bj::array::max_size();
  static constexpr std::size_t max_key_size = bj::string::max_size();
  static constexpr std::size_t max_string_size = bj::string::max_size();

  StrictHandler() = default;

  bj::value_stack st;
  bool duplicate = false;
  std::string duplicate_key;

  bool on_document_begin(bj::error_code&) { return true; }
  bool on_document_end(bj::error_code&) { return true; }
  bool on_object_begin(bj::error_code&) {
    objects_.push_back(next_object_++);
    return true;
  }
  bool on_object_end(std::size_t n, bj::error_code&) {
    objects_.pop_back();
    st.push_object(n);
    return true;
  }
  bool on_array_begin(bj::error_code&) { return true; }
  bool on_array_end(std::size_t n, bj::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(bj::string_view s, std::size_t, bj::error_code&) {
    key_.append(s.data(), s.size());
    st.push_chars(s);
    return true;
  }
  bool on_key(bj::string_view s, std::size_t, bj::error_code& ec) {
    key_.append(s.data(), s.size());
    uint64_t ordinal = objects_.empty() ? 0 : objects_.back();
    std::string entry(sizeof ordinal, '\0');
    std::memcpy(entry.data(), &ordinal, sizeof ordinal);
    entry += key_;
    if (!seen_.insert(std::move(entry)).second) {
      duplicate = true;
      duplicate_key = key_.substr(0, 64);
      ec = bj::error::syntax;
      return false;
    }
    key_.clear();
    st.push_key(s);
    return true;
  }
  bool on_string_part(bj::string_view s, std::size_t, bj::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(bj::string_view s, std::size_t, bj::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_number_part(bj::string_view, bj::error_code&) { return true; }
  bool on_int64(int64_t i, bj::string_view, bj::error_code&) {
    st.push_int64(i);
    return true;
  }
  bool on_uint64(uint64_t u, bj::string_view, bj::error_code&) {
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, bj::string_view, bj::error_code&) {
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, bj::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(bj::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(bj::string_view, bj::error_code&) { return true; }
  bool on_comment(bj::string_view, bj::error_code&) { return true; }

 private:
  std::vector<uint64_t> objects_;
  uint64_t next_object_ = 1;
  std::string key_;
  std::unordered_set<std::string> seen_;
};

}  // namespace

std::string validUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = b[i];
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629, table 3-7)
    if (c < 0x80)
      len = 1;
    else if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
      len = 3;
    else if (c == 0xED)
      len = 3, hi = 0x9F;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
      ok = b[i + k] >= lo_k && b[i + k] <= hi_k;
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

Result<bj::value> parse(std::string_view text) {
  bj::parse_options opts;
  opts.max_depth = 64;
  bj::basic_parser<StrictHandler> p(opts);
  p.handler().st.reset();
  bj::error_code ec;
  std::size_t n = p.write_some(false, text.data(), text.size(), ec);
  if (p.handler().duplicate)
    return invalidArgument("invalid JSON: duplicate key \"" + p.handler().duplicate_key + "\"");
  if (ec) return invalidArgument("invalid JSON: " + ec.message());
  if (n < text.size())
    return invalidArgument("invalid JSON: " + bj::error_code(bj::error::extra_data).message());
  if (!p.done())
    return invalidArgument("invalid JSON: " + bj::error_code(bj::error::incomplete).message());
  return p.handler().st.release();
}

Result<bj::object> parseObject(std::string_view text) {
  auto v = parse(text);
  if (!v) return v.error();
  if (!v->is_object()) return invalidArgument("invalid JSON: the body must be a JSON object");
  return std::move(v->get_object());
}

Status checkKeys(const bj::object& o, std::initializer_list<std::string_view> allowed,
                 std::string_view where) {
  for (const auto& kv : o) {
    std::string_view k(kv.key().data(), kv.key().size());
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string m = "unknown field \"" + std::string(k) + "\"";
      if (!where.empty()) m += " in " + std::string(where);
      return invalidArgument(std::move(m));
    }
  }
  return {};
}

Result<std::string> requiredString(const bj::object& o, std::string_view key) {
  auto it = o.find(bj::string_view(key.data(), key.size()));
  if (it == o.end()) return invalidArgument("field \"" + std::string(key) + "\" is required");
  if (!it->value().is_string())
    return invalidArgument("field \"" + std::string(key) + "\" must be a string, not " +
                           kindName(it->value().kind()));
  return std::string(it->value().get_string());
}

Result<std::optional<std::string>> optionalString(const bj::object& o, std::string_view key) {
  auto it = o.find(bj::string_view(key.data(), key.size()));
  if (it == o.end() || it->value().is_null()) return std::optional<std::string>{};
  if (!it->value().is_string())
    return invalidArgument("field \"" + std::string(key) + "\" must be a string, not " +
                           kindName(it->value().kind()));
  return std::optional<std::string>(std::string(it->value().get_string()));
}

Result<std::optional<int64_t>> optionalInt(const bj::object& o, std::string_view key) {
  auto it = o.find(bj::string_view(key.data(), key.size()));
  if (it == o.end() || it->value().is_null()) return std::optional<int64_t>{};
  const auto& v = it->value();
  if (v.is_int64()) return std::optional<int64_t>(v.get_int64());
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return std::optional<int64_t>(static_cast<int64_t>(v.get_uint64()));
  if (v.is_double()) {
    double d = v.get_double();
    // The range first: converting a double outside int64's range is undefined behaviour.
    if (d < 9.2e18 && d > -9.2e18 && d == std::trunc(d))
      return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  return invalidArgument("field \"" + std::string(key) + "\" must be an integer, not " +
                         kindName(v.kind()));
}

Result<std::optional<bool>> optionalBool(const bj::object& o, std::string_view key) {
  auto it = o.find(bj::string_view(key.data(), key.size()));
  if (it == o.end() || it->value().is_null()) return std::optional<bool>{};
  if (!it->value().is_bool())
    return invalidArgument("field \"" + std::string(key) + "\" must be a boolean, not " +
                           kindName(it->value().kind()));
  return std::optional<bool>(it->value().get_bool());
}

std::string textOf(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

double numberOf(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<double>() : 0.0;
}

int64_t intOf(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  return 0;
}

bool flagOf(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->as_bool();
}

}  // namespace hwl::json
