// safetensors headers: exact tensor counts, parameters and bytes per dtype, read from the 8-byte
// length prefix and the JSON header only.
#include "hwl/planner/safetensors.hpp"

#include <boost/json.hpp>
#include <cstring>
#include <fstream>
#include <set>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/json_text.hpp"

namespace hwl::planner {
namespace json = boost::json;
namespace {

constexpr std::uint64_t kMaxHeader = 100ULL << 20;  // the safetensors crate refuses > 100 MB

Result<std::uint64_t> jsonUint(const json::value& v, const std::string& what) {
  if (v.is_uint64()) return v.as_uint64();
  if (v.is_int64() && v.as_int64() >= 0) return static_cast<std::uint64_t>(v.as_int64());
  return invalidArgument(what + " must be a non-negative integer");
}

Result<std::string> readPrefix(const std::filesystem::path& path, std::uint64_t& file_size) {
  std::error_code ec;
  file_size = std::filesystem::file_size(path, ec);
  if (ec) return notFound("cannot read " + path.string() + ": " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound("cannot open " + path.string());
  std::string buf(8, '\0');
  in.read(buf.data(), 8);
  const auto got = static_cast<std::uint64_t>(in.gcount());
  buf.resize(got);
  if (got < 8) return buf;
  std::uint64_t n = 0;
  std::memcpy(&n, buf.data(), 8);
  if (n > kMaxHeader || n > file_size - 8) return buf;  // the parser reports it
  buf.resize(8 + n);
  in.read(buf.data() + 8, static_cast<std::streamsize>(n));
  buf.resize(8 + static_cast<std::uint64_t>(in.gcount()));
  return buf;
}

}  // namespace

Result<SafetensorsSummary> parseSafetensorsHeader(std::string_view prefix, std::uint64_t file_size,
                                                  std::string_view what) {
  const std::string w(what);
  if (file_size < 8 || prefix.size() < 8) {
    return dataLoss(w + ": truncated safetensors file: " + std::to_string(file_size) +
                    " bytes, the header length alone takes 8");
  }
  std::uint64_t n = 0;
  std::memcpy(&n, prefix.data(), 8);
  if (n > kMaxHeader) {
    return invalidArgument(w + ": safetensors header length " + std::to_string(n) +
                           " exceeds the 100 MB limit");
  }
  if (n > file_size - 8) {
    return dataLoss(w + ": truncated safetensors file: header claims " + std::to_string(n) +
                    " bytes, the file has " + std::to_string(file_size - 8) + " after the length");
  }
  if (prefix.size() < 8 + n) {
    return dataLoss(w + ": truncated safetensors header: read " +
                    std::to_string(prefix.size() - 8) + " of " + std::to_string(n) + " bytes");
  }
  boost::system::error_code ec;
  const json::value v = json::parse(prefix.substr(8, n), ec);
  if (ec) return invalidArgument(w + ": safetensors header is not valid JSON: " + ec.message());
  if (!v.is_object()) return invalidArgument(w + ": safetensors header must be a JSON object");

  SafetensorsSummary s;
  s.header_bytes_read = 8 + n;
  const std::uint64_t data_size = file_size - 8 - n;
  for (const auto& [key, entry] : v.as_object()) {
    const std::string name(key);
    if (name == "__metadata__") continue;
    const std::string at = w + ": tensor '" + name + "'";
    if (!entry.is_object()) return invalidArgument(at + " must be an object");
    const auto& o = entry.as_object();
    for (const auto& [k, unused] : o) {
      if (k != "dtype" && k != "shape" && k != "data_offsets") {
        return invalidArgument(at + " has unknown key '" + std::string(k) + "'");
      }
    }
    const auto* dt = o.if_contains("dtype");
    if (dt == nullptr || !dt->is_string()) return invalidArgument(at + " has no string 'dtype'");
    const std::string dtype(dt->as_string());
    const auto bits = safetensorsDtypeBits(dtype);
    if (!bits) return invalidArgument(at + " has unknown dtype '" + dtype + "'");
    const auto* shape = o.if_contains("shape");
    if (shape == nullptr || !shape->is_array())
      return invalidArgument(at + " has no array 'shape'");
    std::uint64_t elems = 1;
    for (const auto& d : shape->as_array()) {
      auto dim = jsonUint(d, at + " shape entry");
      if (!dim) return dim.error();
      if (*dim != 0 && elems > UINT64_MAX / *dim / 8)
        return invalidArgument(at + " shape overflows");
      elems *= *dim;
    }
    const auto* offs = o.if_contains("data_offsets");
    if (offs == nullptr || !offs->is_array() || offs->as_array().size() != 2) {
      return invalidArgument(at + " needs 'data_offsets' [begin, end]");
    }
    auto begin = jsonUint(offs->as_array()[0], at + " data_offsets");
    if (!begin) return begin.error();
    auto end = jsonUint(offs->as_array()[1], at + " data_offsets");
    if (!end) return end.error();
    const std::uint64_t expect = (elems * *bits + 7) / 8;
    if (*end < *begin || *end - *begin != expect) {
      return invalidArgument(at + " data_offsets [" + std::to_string(*begin) + ", " +
                             std::to_string(*end) + ") hold " +
                             std::to_string(*end >= *begin ? *end - *begin : 0) + " bytes, its " +
                             dtype + " shape needs " + std::to_string(expect));
    }
    if (*end > data_size) {
      return dataLoss(at + " data ends at " + std::to_string(*end) + ", past the " +
                      std::to_string(data_size) + " data bytes of the file (truncated)");
    }
    s.tensors += 1;
    s.params += elems;
    s.bytes += expect;
    auto& d = s.by_dtype[dtype];
    d.tensors += 1;
    d.params += elems;
    d.bytes += expect;
    s.tensor_params[name] = elems;
  }
  return s;
}

Result<SafetensorsSummary> readSafetensorsFile(const std::filesystem::path& path) {
  std::uint64_t size = 0;
  auto prefix = readPrefix(path, size);
  if (!prefix) return prefix.error();
  return parseSafetensorsHeader(*prefix, size, path.filename().string());
}

Result<SafetensorsSummary> readSafetensorsIndex(const std::filesystem::path& index_path) {
  const std::string w = index_path.filename().string();
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return notFound("cannot open " + index_path.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto v = parseJsonLenient(text, w);
  if (!v) return v.error();
  if (!v->is_object()) return invalidArgument(w + ": must be a JSON object");
  const auto* map = v->as_object().if_contains("weight_map");
  if (map == nullptr || !map->is_object())
    return invalidArgument(w + ": missing object 'weight_map'");
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [tensor, shard] : map->as_object()) {
    if (!shard.is_string())
      return invalidArgument(w + ": weight_map entry '" + std::string(tensor) +
                             "' must be a file name");
    const std::string file(shard.as_string());
    if (file.empty() || file.find('/') != std::string::npos ||
        file.find("..") != std::string::npos) {
      return invalidArgument(w + ": weight_map entry '" + std::string(tensor) +
                             "' names an unsafe path '" + file + "'");
    }
    by_shard[file].emplace_back(tensor);
  }
  if (by_shard.empty()) return invalidArgument(w + ": weight_map is empty");
  SafetensorsSummary total;
  std::set<std::string> seen;
  for (const auto& [file, tensors] : by_shard) {
    auto shard = readSafetensorsFile(index_path.parent_path() / file);
    if (!shard) return shard.error();
    for (const auto& t : tensors) {
      if (!shard->tensor_params.count(t)) {
        return invalidArgument(w + ": tensor '" + t + "' is mapped to " + file +
                               " but that shard does not hold it");
      }
    }
    for (const auto& [name, n] : shard->tensor_params) {
      if (!seen.insert(name).second)
        return invalidArgument(w + ": tensor '" + name + "' appears in two shards");
      total.tensor_params[name] = n;
    }
    total.tensors += shard->tensors;
    total.params += shard->params;
    total.bytes += shard->bytes;
    total.header_bytes_read += shard->header_bytes_read;
    for (const auto& [dt, d] : shard->by_dtype) {
      auto& t = total.by_dtype[dt];
      t.tensors += d.tensors;
      t.params += d.params;
      t.bytes += d.bytes;
    }
  }
  if (const auto* meta = v->as_object().if_contains("metadata"); meta && meta->is_object()) {
    if (const auto* ts = meta->as_object().if_contains("total_size")) {
      // Informational: some published indexes count tied or dropped tensors differently.
      if (auto declared = jsonUint(*ts, w + ": metadata.total_size"))
        total.declared_total_size = *declared;
    }
  }
  return total;
}

}  // namespace hwl::planner
