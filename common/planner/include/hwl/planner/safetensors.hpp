// safetensors headers: a single file's length-prefixed JSON header, or a sharded index + shards.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/result.hpp"

namespace hwl::planner {

struct DtypeTotals {
  std::uint64_t tensors = 0;
  std::uint64_t params = 0;
  std::uint64_t bytes = 0;
};

struct SafetensorsSummary {
  std::uint64_t tensors = 0;
  std::uint64_t params = 0;
  std::uint64_t bytes = 0;
  std::uint64_t header_bytes_read = 0;
  std::optional<std::uint64_t> declared_total_size;    // metadata.total_size of an index  // bytes
                                                       // read from disk across all shards
  std::map<std::string, DtypeTotals> by_dtype;         // "BF16" -> totals
  std::map<std::string, std::uint64_t> tensor_params;  // name -> elements
};

// Parses the header of one safetensors file given its first bytes (`prefix` must hold the 8-byte
// length and the JSON) and the file size. `what` names the file in errors.
Result<SafetensorsSummary> parseSafetensorsHeader(std::string_view prefix, std::uint64_t file_size,
                                                  std::string_view what);

// Reads only the header of a .safetensors file.
Result<SafetensorsSummary> readSafetensorsFile(const std::filesystem::path& path);

// Reads model.safetensors.index.json and the header of every shard it names; checks that each
// tensor of the weight_map is in the shard the index says.
Result<SafetensorsSummary> readSafetensorsIndex(const std::filesystem::path& index_path);

}  // namespace hwl::planner
