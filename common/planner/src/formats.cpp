// Element formats: the ggml type table, safetensors dtypes, KV and weight formats, byte sizes.
#include "hwl/planner/formats.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace hwl::planner {
namespace {

// ggml's type_traits (ggml.c): block size and bytes per block. Ids 4, 5 (Q4_2, Q4_3), 31-33
// (Q4_0_4_4 ...) and 36-38 (IQ4_NL_4_4 ...) were removed from ggml and are rejected.
constexpr std::array<GgmlType, 32> kGgmlTypes{{
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
}};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct NamedKv {
  std::string_view name;
  std::uint32_t elems;
  std::uint32_t bytes;
};

// KV formats. q*_* figures are ggml block sizes: q8_0 = 2-byte scale + 32 int8 = 34 B per 32.
constexpr std::array<NamedKv, 13> kKvFormats{{
    {"fp32", 1, 4},
    {"fp16", 1, 2},
    {"bf16", 1, 2},
    {"fp8", 1, 1},
    {"fp8_e4m3", 1, 1},
    {"fp8_e5m2", 1, 1},
    {"int8", 1, 1},
    {"q8_0", 32, 34},
    {"q4_0", 32, 18},
    {"q4_1", 32, 20},
    {"q5_0", 32, 22},
    {"q5_1", 32, 24},
    {"iq4_nl", 32, 18},
}};

struct NamedWeight {
  std::string_view name;
  double bits;
  bool covers_embeddings;
};

// Bits per parameter of quantised linear weights.
// - fp8 / int8: one byte; per-channel or per-block scales are < 0.1% and ignored.
// - int4 / awq / gptq: 4-bit values + an fp16 scale and a 4-bit zero per group of 128
//   (4 + 16/128 + 4/128 = 4.15625), the AutoAWQ / AutoGPTQ default layout.
// - nvfp4: 4-bit values + an fp8 scale per 16 (4.5); mxfp4: + an e8m0 scale per 32 (4.25).
// - llama.cpp single types: type_size * 8 / block_size from ggml's table.
// - llama.cpp mixes (q4_k_m ...): whole-file bits per weight that llama-quantize reports for
//   Llama-3-8B-class models (its own README table); they cover embeddings and the output head.
constexpr std::array<NamedWeight, 30> kWeightFormats{{
    {"fp32", 32.0, false},    {"fp16", 16.0, false},     {"bf16", 16.0, false},
    {"fp8", 8.0, false},      {"int8", 8.0, false},      {"w8a8", 8.0, false},
    {"int4", 4.15625, false}, {"awq", 4.15625, false},   {"gptq", 4.15625, false},
    {"nvfp4", 4.5, false},    {"mxfp4", 4.25, false},    {"f16", 16.0, true},
    {"q8_0", 8.5, true},      {"q6_k", 6.5625, true},    {"q5_k_m", 5.69, true},
    {"q5_k_s", 5.54, true},   {"q5_0", 5.5, true},       {"q5_1", 6.0, true},
    {"q4_k_m", 4.89, true},   {"q4_k_s", 4.67, true},    {"q4_0", 4.5, true},
    {"q4_1", 5.0, true},      {"q3_k_l", 4.27, true},    {"q3_k_m", 3.91, true},
    {"q3_k_s", 3.5, true},    {"q2_k", 3.35, true},      {"iq4_xs", 4.25, true},
    {"iq4_nl", 4.5, true},    {"iq3_xxs", 3.0625, true}, {"iq2_xxs", 2.0625, true},
}};

}  // namespace

std::optional<GgmlType> ggmlType(std::uint32_t id) {
  for (const auto& t : kGgmlTypes) {
    if (t.id == id) return t;
  }
  return std::nullopt;
}

Result<std::uint64_t> ggmlTensorBytes(const GgmlType& type, std::uint64_t elements,
                                      std::uint64_t ne0) {
  if (type.block_size > 1 && ne0 % type.block_size != 0) {
    return invalidArgument("row size " + std::to_string(ne0) + " is not a multiple of the " +
                           std::string(type.name) + " block size " +
                           std::to_string(type.block_size));
  }
  const std::uint64_t blocks = elements / type.block_size;
  if (type.type_size != 0 && blocks > UINT64_MAX / type.type_size) {
    return invalidArgument("tensor size overflows 64 bits");
  }
  return blocks * type.type_size;
}

std::optional<std::uint32_t> safetensorsDtypeBits(std::string_view dtype) {
  static constexpr std::array<std::pair<std::string_view, std::uint32_t>, 18> kDtypes{{
      {"F64", 64},
      {"F32", 32},
      {"F16", 16},
      {"BF16", 16},
      {"I64", 64},
      {"I32", 32},
      {"I16", 16},
      {"I8", 8},
      {"U64", 64},
      {"U32", 32},
      {"U16", 16},
      {"U8", 8},
      {"BOOL", 8},
      {"F8_E4M3", 8},
      {"F8_E5M2", 8},
      {"F8_E8M0", 8},
      {"F4", 4},
      {"F6_E2M3", 6},
  }};
  for (const auto& [name, bits] : kDtypes) {
    if (name == dtype) return bits;
  }
  return std::nullopt;
}

Result<KvFormat> kvFormat(std::string_view name) {
  const std::string n = lower(name);
  for (const auto& f : kKvFormats) {
    if (f.name == n) return KvFormat{std::string(f.name), f.elems, f.bytes};
  }
  std::string list;
  for (const auto& f : kKvFormats) list += (list.empty() ? "" : ", ") + std::string(f.name);
  return invalidArgument("unknown KV cache format '" + std::string(name) + "' (use " + list + ")");
}

std::uint64_t kvRowBytes(const KvFormat& f, std::uint64_t elems) {
  const std::uint64_t blocks = (elems + f.block_elems - 1) / f.block_elems;
  return blocks * f.block_bytes;
}

Result<WeightFormat> weightFormat(std::string_view name) {
  const std::string n = lower(name);
  if (n == "native") return WeightFormat{"native", 16.0, false, true, false};
  if (n == "auto") return WeightFormat{"auto", 16.0, false, true, true};
  for (const auto& f : kWeightFormats) {
    if (f.name == n)
      return WeightFormat{std::string(f.name), f.bits, f.covers_embeddings, false, false};
  }
  std::string list = "auto, native";
  for (const auto& f : kWeightFormats) list += ", " + std::string(f.name);
  return invalidArgument("unknown weights format '" + std::string(name) + "' (use " + list + ")");
}

Result<std::uint32_t> plainDtypeBytes(std::string_view name) {
  const std::string n = lower(name);
  if (n == "fp32" || n == "float32" || n == "f32") return 4U;
  if (n == "fp16" || n == "float16" || n == "f16" || n == "half") return 2U;
  if (n == "bf16" || n == "bfloat16") return 2U;
  if (n == "fp8" || n == "int8") return 1U;
  return invalidArgument("unknown dtype '" + std::string(name) +
                         "' (use fp32, fp16, bf16, fp8, int8)");
}

Result<std::uint64_t> parseByteSize(std::string_view text) {
  const std::string original(text);
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  if (text.empty()) return invalidArgument("invalid size '': empty");
  std::size_t i = 0;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' || text[i] == 'e' ||
          text[i] == 'E' || text[i] == '+' || (text[i] == '-' && i > 0))) {
    // 'e' followed by a letter other than a digit/sign is a unit, not an exponent.
    if ((text[i] == 'e' || text[i] == 'E') &&
        (i + 1 >= text.size() || !(std::isdigit(static_cast<unsigned char>(text[i + 1])) ||
                                   text[i + 1] == '+' || text[i + 1] == '-'))) {
      break;
    }
    ++i;
  }
  const std::string number(text.substr(0, i));
  const std::string unit = lower(trim(text.substr(i)));
  if (number.empty()) return invalidArgument("invalid size '" + original + "': no number");
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(value)) {
    return invalidArgument("invalid size '" + original + "': bad number '" + number + "'");
  }
  if (value < 0) return invalidArgument("invalid size '" + original + "': negative");
  double scale = 0;
  if (unit.empty() || unit == "b")
    scale = 1;
  else if (unit == "kb")
    scale = 1e3;
  else if (unit == "mb")
    scale = 1e6;
  else if (unit == "gb")
    scale = 1e9;
  else if (unit == "tb")
    scale = 1e12;
  else if (unit == "kib")
    scale = 1024.0;
  else if (unit == "mib")
    scale = 1024.0 * 1024;
  else if (unit == "gib")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "tib")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else {
    return invalidArgument("invalid size '" + original + "': unknown unit '" +
                           std::string(trim(text.substr(i))) +
                           "' (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
  }
  const double bytes = value * scale;
  if (bytes >= 1.8e19) return invalidArgument("invalid size '" + original + "': too large");
  if (bytes != std::floor(bytes)) {
    return invalidArgument("invalid size '" + original + "': not a whole number of bytes");
  }
  return static_cast<std::uint64_t>(bytes);
}

std::string formatBytes(std::uint64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits{"B", "KiB", "MiB", "GiB", "TiB"};
  auto v = static_cast<double>(bytes);
  std::size_t u = 0;
  while (v >= 1024.0 && u + 1 < kUnits.size()) {
    v /= 1024.0;
    ++u;
  }
  char buf[48];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
  return buf;
}

}  // namespace hwl::planner
