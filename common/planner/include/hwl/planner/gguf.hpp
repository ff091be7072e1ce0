// GGUF v2/v3 metadata reader: header, key/values, tensor infos — never the tensor data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "hwl/planner/model_spec.hpp"
#include "hwl/result.hpp"

namespace hwl::planner {

// GGUF metadata value types, numbered as in the GGUF specification.
enum class GgufType : std::uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

struct GgufValue;
struct GgufArray {
  GgufType element_type = GgufType::kUint8;
  std::vector<GgufValue> items;
};

struct GgufValue {
  GgufType type = GgufType::kUint8;
  // Integers of every width are widened; the original width is kept in `type`.
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, GgufArray> data;

  [[nodiscard]] std::optional<std::uint64_t> asUint() const;  // non-negative integers only
  [[nodiscard]] std::optional<double> asDouble() const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> shape;  // ne[0] first, as GGUF stores it
  std::uint32_t ggml_type = 0;
  std::uint64_t offset = 0;  // relative to the start of the data section
  std::uint64_t elements = 0;
  std::uint64_t bytes = 0;
};

struct GgufFile {
  std::uint32_t version = 0;
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensorInfo> tensors;
  std::uint64_t alignment = 32;
  std::uint64_t data_offset = 0;  // start of the tensor data section in the file
  std::uint64_t file_size = 0;
  std::uint64_t bytes_read = 0;  // what the reader actually consumed from the stream
};

// Limits that keep a corrupted count from making the reader allocate without bound.
struct GgufLimits {
  std::uint64_t max_string = 64ULL << 20;
  std::uint64_t max_array = 1ULL << 28;
  std::uint64_t max_kv = 1ULL << 20;
  std::uint64_t max_tensors = 1ULL << 24;
  std::uint32_t max_nesting = 8;
};

// Reads a GGUF stream of `file_size` bytes (tensor data must lie inside it) without reading the
// tensor data. Errors are InvalidArgument/DataLoss with the offset and the item being read.
Result<GgufFile> readGguf(std::istream& in, std::uint64_t file_size, const GgufLimits& limits = {});
Result<GgufFile> readGgufFile(const std::filesystem::path& path, const GgufLimits& limits = {});

// Maps the arch-generic keys ({arch}.block_count, {arch}.attention.head_count_kv ...) and tensor
// infos to a ModelSpec with exact parameter counts and weight bytes.
Result<ModelSpec> ggufToSpec(const GgufFile& file, std::string name);

// Serialisation helpers for writing GGUF files (tests and the benchmark write real files).
class GgufWriter {
 public:
  void addString(const std::string& key, const std::string& value);
  void addUint32(const std::string& key, std::uint32_t value);
  void addValue(const std::string& key, const GgufValue& value);
  void addTensor(const std::string& name, std::vector<std::uint64_t> shape,
                 std::uint32_t ggml_type);
  // The header (metadata + tensor infos + alignment padding) and the data size the tensors need.
  [[nodiscard]] std::string header(std::uint32_t version = 3) const;
  [[nodiscard]] std::uint64_t dataBytes() const;

 private:
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::uint64_t data_end_ = 0;
};

}  // namespace hwl::planner
