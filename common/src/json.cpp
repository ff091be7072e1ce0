// Canonical JSON and strict field access.
#include "hwl/json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
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
    case bj::kind::null: return "null";
    case bj::kind::bool_: return "a boolean";
    case bj::kind::int64:
    case bj::kind::uint64: return "an integer";
    case bj::kind::double_: return "a number";
    case bj::kind::string: return "a string";
    case bj::kind::array: return "an array";
    case bj::kind::object: return "an object";
  }
  return "unknown";
}

}  // namespace

std::string canonical(const bj::value& v) {
  std::string out;
  writeCanonical(v, out);
  return out;
}

Result<bj::value> parse(std::string_view text) {
  boost::system::error_code ec;
  bj::parse_options opts;
  opts.max_depth = 64;
  bj::value v = bj::parse(bj::string_view(text.data(), text.size()), ec, {}, opts);
  if (ec) return invalidArgument("invalid JSON: " + ec.message());
  return v;
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
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d < 9.2e18 && d > -9.2e18)
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

}  // namespace hwl::json
