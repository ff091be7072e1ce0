// Element formats: ggml tensor types, safetensors dtypes, KV-cache and weight formats, sizes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/result.hpp"

namespace hwl::planner {

// A ggml tensor type: `type_size` bytes hold `block_size` elements (as in ggml's type_traits).
struct GgmlType {
  std::uint32_t id = 0;
  std::string_view name;
  std::uint32_t block_size = 0;
  std::uint32_t type_size = 0;
};

// nullopt for ids ggml never assigned or has removed (4, 5, 31-33, 36-38).
std::optional<GgmlType> ggmlType(std::uint32_t id);

// Bytes of a row-major tensor whose innermost dimension is ne0; an error if ne0 is not a multiple
// of the block size (ggml cannot store such a tensor).
Result<std::uint64_t> ggmlTensorBytes(const GgmlType& type, std::uint64_t elements,
                                      std::uint64_t ne0);

// Bits per element of a safetensors dtype ("BF16" -> 16, "F4" -> 4); nullopt if unknown.
std::optional<std::uint32_t> safetensorsDtypeBits(std::string_view dtype);

// A KV-cache element format: `block_bytes` bytes per `block_elems` elements.
struct KvFormat {
  std::string name;
  std::uint32_t block_elems = 1;
  std::uint32_t block_bytes = 2;
};

// "fp16", "bf16", "fp32", "fp8" (e4m3/e5m2), "int8", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
// "iq4_nl". The error names the value and lists the accepted ones.
Result<KvFormat> kvFormat(std::string_view name);

// Bytes for `elems` elements of one row in a KV format (a row is one token's K or V of a layer,
// which llama.cpp requires to be a whole number of blocks: partial blocks are rounded up).
std::uint64_t kvRowBytes(const KvFormat& f, std::uint64_t elems);

// A weight format: bits per parameter for quantised linear weights, and whether the format
// (like llama.cpp's mixes) also covers embeddings and the output head.
struct WeightFormat {
  std::string name;
  double linear_bits = 16.0;
  bool covers_embeddings = false;
  bool native = false;  // "native" and "auto": the checkpoint's own storage
  // "auto", as vLLM's --dtype auto: a float32 checkpoint is served in bf16 (and so are its
  // activations, KV cache and recurrent state by default); other checkpoints as stored.
  bool cast_fp32 = false;
};

// "auto" (the default), "native", "fp32", "fp16", "bf16", "fp8", "int8", "int4", "awq", "gptq",
// "nvfp4", "mxfp4" and the llama.cpp types/mixes ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0",
// "q3_k_m", "q2_k", "iq4_xs"
// ...).
Result<WeightFormat> weightFormat(std::string_view name);

// Bytes per element of a plain dtype name ("bf16" -> 2, "fp32" -> 4, "fp8" -> 1).
Result<std::uint32_t> plainDtypeBytes(std::string_view name);

// "80GiB", "24GB", "1e9", "512 MiB", "123456" -> bytes. Errors name the text and the problem.
Result<std::uint64_t> parseByteSize(std::string_view text);

// 85899345920 -> "80.00 GiB".
std::string formatBytes(std::uint64_t bytes);

}  // namespace hwl::planner
