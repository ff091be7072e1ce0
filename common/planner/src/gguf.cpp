// GGUF metadata reader and writer. Reads the header, every key/value and the tensor infos through
// a counting reader that never touches the tensor data, so a multi-GB file costs a few KB of I/O.
#include "hwl/planner/gguf.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <set>

#include "hwl/planner/formats.hpp"

namespace hwl::planner {
namespace {

constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// Reads exactly what it is asked for and counts it; refuses to read past the declared size.
class CountingReader {
 public:
  CountingReader(std::istream& in, std::uint64_t size) : in_(in), size_(size) {}

  [[nodiscard]] std::uint64_t pos() const { return pos_; }
  [[nodiscard]] std::uint64_t left() const { return size_ - pos_; }

  Status read(void* out, std::uint64_t n, const std::string& what) {
    if (n > left()) {
      return dataLoss("truncated GGUF at offset " + std::to_string(pos_) + ": " + what + " needs " +
                      std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
    }
    in_.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
    if (static_cast<std::uint64_t>(in_.gcount()) != n) {
      return dataLoss("read error at offset " + std::to_string(pos_) + " while reading " + what);
    }
    pos_ += n;
    return {};
  }

  template <typename T>
  Result<T> scalar(const std::string& what) {
    T v{};
    unsigned char buf[sizeof(T)];
    if (auto s = read(buf, sizeof(T), what); !s) return s.error();
    // GGUF is little-endian; this reader only runs on little-endian hosts (x86-64, aarch64).
    static_assert(std::endian::native == std::endian::little);
    std::memcpy(&v, buf, sizeof(T));
    return v;
  }

  Result<std::string> string(const std::string& what, std::uint64_t max_len) {
    const std::uint64_t at = pos_;
    auto len = scalar<std::uint64_t>(what + " length");
    if (!len) return len.error();
    if (*len > left() || *len > max_len) {
      return invalidArgument("GGUF " + what + " at offset " + std::to_string(at) + " claims " +
                             std::to_string(*len) + " bytes, more than the file holds");
    }
    std::string s(*len, '\0');
    if (auto st = read(s.data(), *len, what); !st) return st.error();
    return s;
  }

 private:
  std::istream& in_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
};

Result<GgufValue> readValue(CountingReader& r, std::uint32_t type, const std::string& key,
                            const GgufLimits& limits, std::uint32_t depth) {
  GgufValue v;
  v.type = static_cast<GgufType>(type);
  const std::string what = "value of '" + key + "'";
  auto as_u = [&](auto res) -> Status {
    if (!res) return res.error();
    v.data = static_cast<std::uint64_t>(*res);
    return {};
  };
  auto as_i = [&](auto res) -> Status {
    if (!res) return res.error();
    v.data = static_cast<std::int64_t>(*res);
    return {};
  };
  Status st;
  switch (v.type) {
    case GgufType::kUint8:
      st = as_u(r.scalar<std::uint8_t>(what));
      break;
    case GgufType::kInt8:
      st = as_i(r.scalar<std::int8_t>(what));
      break;
    case GgufType::kUint16:
      st = as_u(r.scalar<std::uint16_t>(what));
      break;
    case GgufType::kInt16:
      st = as_i(r.scalar<std::int16_t>(what));
      break;
    case GgufType::kUint32:
      st = as_u(r.scalar<std::uint32_t>(what));
      break;
    case GgufType::kInt32:
      st = as_i(r.scalar<std::int32_t>(what));
      break;
    case GgufType::kUint64:
      st = as_u(r.scalar<std::uint64_t>(what));
      break;
    case GgufType::kInt64:
      st = as_i(r.scalar<std::int64_t>(what));
      break;
    case GgufType::kFloat32: {
      auto f = r.scalar<float>(what);
      if (!f) return f.error();
      v.data = static_cast<double>(*f);
      break;
    }
    case GgufType::kFloat64: {
      auto f = r.scalar<double>(what);
      if (!f) return f.error();
      v.data = *f;
      break;
    }
    case GgufType::kBool: {
      const std::uint64_t at = r.pos();
      auto b = r.scalar<std::uint8_t>(what);
      if (!b) return b.error();
      if (*b > 1) {
        return invalidArgument("GGUF " + what + " at offset " + std::to_string(at) +
                               " is a bool holding " + std::to_string(*b));
      }
      v.data = *b == 1;
      break;
    }
    case GgufType::kString: {
      auto s = r.string(what, limits.max_string);
      if (!s) return s.error();
      v.data = std::move(*s);
      break;
    }
    case GgufType::kArray: {
      if (depth >= limits.max_nesting) {
        return invalidArgument("GGUF " + what + " nests arrays deeper than " +
                               std::to_string(limits.max_nesting));
      }
      auto et = r.scalar<std::uint32_t>(what + " element type");
      if (!et) return et.error();
      if (*et > 12) {
        return invalidArgument("GGUF metadata key '" + key + "' has an array of unknown type " +
                               std::to_string(*et));
      }
      const std::uint64_t at = r.pos();
      auto n = r.scalar<std::uint64_t>(what + " array length");
      if (!n) return n.error();
      // Every element takes at least one byte, so a count beyond the bytes left is corrupt.
      if (*n > limits.max_array || *n > r.left()) {
        return invalidArgument("GGUF " + what + " at offset " + std::to_string(at) + " claims " +
                               std::to_string(*n) + " array elements, more than the file holds");
      }
      GgufArray arr;
      arr.element_type = static_cast<GgufType>(*et);
      arr.items.reserve(static_cast<std::size_t>(*n));
      for (std::uint64_t i = 0; i < *n; ++i) {
        auto item = readValue(r, *et, key + "[" + std::to_string(i) + "]", limits, depth + 1);
        if (!item) return item.error();
        arr.items.push_back(std::move(*item));
      }
      v.data = std::move(arr);
      break;
    }
    default:
      return invalidArgument("GGUF metadata key '" + key + "' has unknown value type " +
                             std::to_string(type));
  }
  if (!st) return st.error();
  return v;
}

void putBytes(std::string& out, const void* p, std::size_t n) {
  out.append(static_cast<const char*>(p), n);
}
template <typename T>
void put(std::string& out, T v) {
  putBytes(out, &v, sizeof v);
}
void putString(std::string& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  out += s;
}

void putValue(std::string& out, const GgufValue& v, bool with_type) {
  if (with_type) put<std::uint32_t>(out, static_cast<std::uint32_t>(v.type));
  switch (v.type) {
    case GgufType::kUint8:
      put<std::uint8_t>(out, static_cast<std::uint8_t>(std::get<0>(v.data)));
      break;
    case GgufType::kUint16:
      put<std::uint16_t>(out, static_cast<std::uint16_t>(std::get<0>(v.data)));
      break;
    case GgufType::kUint32:
      put<std::uint32_t>(out, static_cast<std::uint32_t>(std::get<0>(v.data)));
      break;
    case GgufType::kUint64:
      put<std::uint64_t>(out, std::get<0>(v.data));
      break;
    case GgufType::kInt8:
      put<std::int8_t>(out, static_cast<std::int8_t>(std::get<1>(v.data)));
      break;
    case GgufType::kInt16:
      put<std::int16_t>(out, static_cast<std::int16_t>(std::get<1>(v.data)));
      break;
    case GgufType::kInt32:
      put<std::int32_t>(out, static_cast<std::int32_t>(std::get<1>(v.data)));
      break;
    case GgufType::kInt64:
      put<std::int64_t>(out, std::get<1>(v.data));
      break;
    case GgufType::kFloat32:
      put<float>(out, static_cast<float>(std::get<2>(v.data)));
      break;
    case GgufType::kFloat64:
      put<double>(out, std::get<2>(v.data));
      break;
    case GgufType::kBool:
      put<std::uint8_t>(out, std::get<3>(v.data) ? 1 : 0);
      break;
    case GgufType::kString:
      putString(out, std::get<4>(v.data));
      break;
    case GgufType::kArray: {
      const auto& a = std::get<5>(v.data);
      put<std::uint32_t>(out, static_cast<std::uint32_t>(a.element_type));
      put<std::uint64_t>(out, a.items.size());
      for (const auto& item : a.items) putValue(out, item, false);
      break;
    }
  }
}

}  // namespace

std::optional<std::uint64_t> GgufValue::asUint() const {
  if (const auto* u = std::get_if<std::uint64_t>(&data)) return *u;
  if (const auto* i = std::get_if<std::int64_t>(&data); i && *i >= 0)
    return static_cast<std::uint64_t>(*i);
  return std::nullopt;
}

std::optional<double> GgufValue::asDouble() const {
  if (const auto* d = std::get_if<double>(&data)) return *d;
  if (const auto* u = std::get_if<std::uint64_t>(&data)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<std::int64_t>(&data)) return static_cast<double>(*i);
  return std::nullopt;
}

Result<GgufFile> readGguf(std::istream& in, std::uint64_t file_size, const GgufLimits& limits) {
  CountingReader r(in, file_size);
  GgufFile f;
  f.file_size = file_size;
  char magic[4];
  if (auto s = r.read(magic, 4, "magic"); !s) return s.error();
  if (std::memcmp(magic, "GGUF", 4) != 0) return invalidArgument("not a GGUF file: bad magic");
  auto version = r.scalar<std::uint32_t>("version");
  if (!version) return version.error();
  if (*version == 0x02000000U || *version == 0x03000000U) {
    return invalidArgument("big-endian GGUF is not supported");
  }
  if (*version != 2 && *version != 3) {
    return invalidArgument("unsupported GGUF version " + std::to_string(*version) +
                           " (only 2 and 3 are read)");
  }
  f.version = *version;
  auto n_tensors = r.scalar<std::uint64_t>("tensor count");
  if (!n_tensors) return n_tensors.error();
  auto n_kv = r.scalar<std::uint64_t>("metadata count");
  if (!n_kv) return n_kv.error();
  if (*n_tensors > limits.max_tensors) {
    return invalidArgument("GGUF tensor count " + std::to_string(*n_tensors) +
                           " exceeds the limit " + std::to_string(limits.max_tensors));
  }
  if (*n_kv > limits.max_kv) {
    return invalidArgument("GGUF metadata count " + std::to_string(*n_kv) + " exceeds the limit " +
                           std::to_string(limits.max_kv));
  }

  for (std::uint64_t i = 0; i < *n_kv; ++i) {
    auto key = r.string("key of metadata entry " + std::to_string(i), limits.max_string);
    if (!key) return key.error();
    if (key->empty())
      return invalidArgument("GGUF metadata entry " + std::to_string(i) + " has an empty key");
    auto type = r.scalar<std::uint32_t>("type of '" + *key + "'");
    if (!type) return type.error();
    auto value = readValue(r, *type, *key, limits, 0);
    if (!value) return value.error();
    if (!f.metadata.emplace(*key, std::move(*value)).second) {
      return invalidArgument("duplicate GGUF metadata key '" + *key + "'");
    }
  }

  if (auto it = f.metadata.find("general.alignment"); it != f.metadata.end()) {
    const auto a = it->second.asUint();
    if (it->second.type != GgufType::kUint32 || !a || *a == 0 || (*a & (*a - 1)) != 0) {
      return invalidArgument("GGUF general.alignment must be a uint32 power of two");
    }
    f.alignment = *a;
  }

  std::set<std::string> names;
  f.tensors.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*n_tensors, 1U << 16)));
  for (std::uint64_t i = 0; i < *n_tensors; ++i) {
    GgufTensorInfo t;
    auto name = r.string("name of tensor " + std::to_string(i), limits.max_string);
    if (!name) return name.error();
    t.name = std::move(*name);
    if (!names.insert(t.name).second)
      return invalidArgument("duplicate GGUF tensor '" + t.name + "'");
    auto n_dims = r.scalar<std::uint32_t>("dimension count of tensor '" + t.name + "'");
    if (!n_dims) return n_dims.error();
    if (*n_dims == 0 || *n_dims > kMaxDims) {
      return invalidArgument("GGUF tensor '" + t.name + "' has " + std::to_string(*n_dims) +
                             " dimensions (1 to 4 allowed)");
    }
    t.elements = 1;
    for (std::uint32_t d = 0; d < *n_dims; ++d) {
      auto ne = r.scalar<std::uint64_t>("shape of tensor '" + t.name + "'");
      if (!ne) return ne.error();
      if (*ne == 0 || *ne > (1ULL << 48) || t.elements > UINT64_MAX / *ne) {
        return invalidArgument("GGUF tensor '" + t.name + "' has an invalid dimension " +
                               std::to_string(*ne));
      }
      t.shape.push_back(*ne);
      t.elements *= *ne;
    }
    auto type = r.scalar<std::uint32_t>("type of tensor '" + t.name + "'");
    if (!type) return type.error();
    t.ggml_type = *type;
    const auto gt = ggmlType(*type);
    if (!gt) {
      return invalidArgument("GGUF tensor '" + t.name + "' has unknown ggml type " +
                             std::to_string(*type));
    }
    auto bytes = ggmlTensorBytes(*gt, t.elements, t.shape[0]);
    if (!bytes) return invalidArgument("GGUF tensor '" + t.name + "': " + bytes.error().message);
    t.bytes = *bytes;
    auto offset = r.scalar<std::uint64_t>("offset of tensor '" + t.name + "'");
    if (!offset) return offset.error();
    t.offset = *offset;
    if (t.offset % f.alignment != 0) {
      return invalidArgument("GGUF tensor '" + t.name + "' data offset " +
                             std::to_string(t.offset) + " is not a multiple of the alignment " +
                             std::to_string(f.alignment));
    }
    f.tensors.push_back(std::move(t));
  }

  f.data_offset = (r.pos() + f.alignment - 1) / f.alignment * f.alignment;
  for (const auto& t : f.tensors) {
    const std::uint64_t begin = f.data_offset + t.offset;
    if (t.offset > file_size || begin > file_size || t.bytes > file_size - begin) {
      return dataLoss("GGUF tensor '" + t.name + "' data [" + std::to_string(begin) + ", " +
                      std::to_string(begin + t.bytes) + ") extends past the end of the file (" +
                      std::to_string(file_size) + " bytes)");
    }
  }
  f.bytes_read = r.pos();
  return f;
}

Result<GgufFile> readGgufFile(const std::filesystem::path& path, const GgufLimits& limits) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return notFound("cannot read " + path.string() + ": " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound("cannot open " + path.string());
  auto f = readGguf(in, size, limits);
  if (!f) return Error{f.error().code, path.filename().string() + ": " + f.error().message};
  return f;
}

void GgufWriter::addString(const std::string& key, const std::string& value) {
  addValue(key, GgufValue{GgufType::kString, value});
}
void GgufWriter::addUint32(const std::string& key, std::uint32_t value) {
  addValue(key, GgufValue{GgufType::kUint32, std::uint64_t{value}});
}
void GgufWriter::addValue(const std::string& key, const GgufValue& value) {
  kv_.emplace_back(key, value);
}
void GgufWriter::addTensor(const std::string& name, std::vector<std::uint64_t> shape,
                           std::uint32_t ggml_type) {
  GgufTensorInfo t;
  t.name = name;
  t.elements = 1;
  for (auto d : shape) t.elements *= d;
  t.shape = std::move(shape);
  t.ggml_type = ggml_type;
  const auto gt = ggmlType(ggml_type);
  t.bytes = gt ? ggmlTensorBytes(*gt, t.elements, t.shape.empty() ? 1 : t.shape[0]).value() : 0;
  t.offset = data_end_;
  data_end_ += (t.bytes + 31) / 32 * 32;
  tensors_.push_back(std::move(t));
}

std::string GgufWriter::header(std::uint32_t version) const {
  std::string out = "GGUF";
  put<std::uint32_t>(out, version);
  put<std::uint64_t>(out, tensors_.size());
  put<std::uint64_t>(out, kv_.size());
  for (const auto& [k, v] : kv_) {
    putString(out, k);
    putValue(out, v, true);
  }
  for (const auto& t : tensors_) {
    putString(out, t.name);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(t.shape.size()));
    for (auto d : t.shape) put<std::uint64_t>(out, d);
    put<std::uint32_t>(out, t.ggml_type);
    put<std::uint64_t>(out, t.offset);
  }
  out.resize((out.size() + 31) / 32 * 32, '\0');
  return out;
}

std::uint64_t GgufWriter::dataBytes() const { return data_end_; }

}  // namespace hwl::planner
