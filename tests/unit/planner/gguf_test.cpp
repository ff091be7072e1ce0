// GGUF reading: a v3 file written here with every metadata value type, then truncated and
// corrupted copies of it.
#include "hwl/planner/gguf.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/load_model.hpp"
#include "hwl/planner/plan.hpp"

namespace hwl::planner {
namespace {

GgufValue u(GgufType t, std::uint64_t v) { return {t, v}; }
GgufValue i(GgufType t, std::int64_t v) { return {t, v}; }
GgufValue arr(GgufType et, std::vector<GgufValue> items) {
  return {GgufType::kArray, GgufArray{et, std::move(items)}};
}

// A two-block llama-style model: per-layer KV heads [2, 1], head_dim 64, mixed tensor types.
GgufWriter sampleWriter() {
  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addString("general.name", "tiny-test");
  w.addValue("test.u8", u(GgufType::kUint8, 200));
  w.addValue("test.i8", i(GgufType::kInt8, -100));
  w.addValue("test.u16", u(GgufType::kUint16, 60000));
  w.addValue("test.i16", i(GgufType::kInt16, -30000));
  w.addValue("test.i32", i(GgufType::kInt32, -2000000000));
  w.addValue("test.f32", GgufValue{GgufType::kFloat32, 1.5});
  w.addValue("test.bool", GgufValue{GgufType::kBool, true});
  w.addValue("test.u64", u(GgufType::kUint64, 1ULL << 40));
  w.addValue("test.i64", i(GgufType::kInt64, -(1LL << 40)));
  w.addValue("test.f64", GgufValue{GgufType::kFloat64, 0.1});
  w.addValue("test.strings",
             arr(GgufType::kString, {GgufValue{GgufType::kString, std::string("a")},
                                     GgufValue{GgufType::kString, std::string("bc")}}));
  w.addValue("test.nested", arr(GgufType::kArray, {arr(GgufType::kInt16, {i(GgufType::kInt16, -1)}),
                                                   arr(GgufType::kInt16, {})}));
  w.addUint32("llama.block_count", 2);
  w.addUint32("llama.context_length", 4096);
  w.addUint32("llama.embedding_length", 256);
  w.addUint32("llama.feed_forward_length", 512);
  w.addUint32("llama.attention.head_count", 4);
  w.addValue("llama.attention.head_count_kv",
             arr(GgufType::kUint32, {u(GgufType::kUint32, 2), u(GgufType::kUint32, 1)}));
  w.addTensor("token_embd.weight", {256, 100}, 12);    // Q4_K: 100 x 144
  w.addTensor("blk.0.attn_q.weight", {256, 256}, 1);   // F16
  w.addTensor("blk.0.attn_k.weight", {256, 128}, 8);   // Q8_0: 128 x 8 x 34
  w.addTensor("blk.1.attn_k.weight", {256, 64}, 2);    // Q4_0: 64 x 8 x 18
  w.addTensor("blk.1.ffn_up.weight", {256, 512}, 30);  // BF16
  w.addTensor("output_norm.weight", {256}, 0);         // F32
  w.addTensor("output.weight", {256, 100}, 14);        // Q6_K: 100 x 210
  return w;
}

std::string sampleFile() {
  const GgufWriter w = sampleWriter();
  std::string f = w.header();
  f.resize(f.size() + w.dataBytes(), '\0');
  return f;
}

Result<GgufFile> readBytes(const std::string& bytes) {
  std::istringstream in(bytes);
  return readGguf(in, bytes.size());
}

std::string errorOf(const std::string& bytes) {
  auto r = readBytes(bytes);
  return r ? std::string("ok") : r.error().message;
}

// Offset of the value-type field that follows a key in the header.
std::size_t typeOffset(const std::string& file, const std::string& key) {
  return file.find(key) + key.size();
}

void putU32(std::string& f, std::size_t at, std::uint32_t v) { std::memcpy(f.data() + at, &v, 4); }
void putU64(std::string& f, std::size_t at, std::uint64_t v) { std::memcpy(f.data() + at, &v, 8); }

TEST(Gguf, ReadsEveryMetadataTypeAndTensorInfo) {
  const std::string file = sampleFile();
  auto g = readBytes(file);
  ASSERT_TRUE(g.has_value()) << g.error().message;
  EXPECT_EQ(g->version, 3U);
  const auto& m = g->metadata;
  EXPECT_EQ(m.at("test.u8").asUint(), 200U);
  EXPECT_EQ(std::get<std::int64_t>(m.at("test.i8").data), -100);
  EXPECT_EQ(m.at("test.u16").asUint(), 60000U);
  EXPECT_EQ(std::get<std::int64_t>(m.at("test.i16").data), -30000);
  EXPECT_EQ(std::get<std::int64_t>(m.at("test.i32").data), -2000000000);
  EXPECT_EQ(m.at("test.f32").asDouble(), 1.5);
  EXPECT_EQ(std::get<bool>(m.at("test.bool").data), true);
  EXPECT_EQ(m.at("test.u64").asUint(), 1ULL << 40);
  EXPECT_EQ(std::get<std::int64_t>(m.at("test.i64").data), -(1LL << 40));
  EXPECT_EQ(m.at("test.f64").asDouble(), 0.1);
  EXPECT_EQ(m.at("test.f64").type, GgufType::kFloat64);
  const auto& strings = std::get<GgufArray>(m.at("test.strings").data);
  ASSERT_EQ(strings.items.size(), 2U);
  EXPECT_EQ(std::get<std::string>(strings.items[1].data), "bc");
  const auto& nested = std::get<GgufArray>(m.at("test.nested").data);
  ASSERT_EQ(nested.items.size(), 2U);
  EXPECT_EQ(std::get<std::int64_t>(std::get<GgufArray>(nested.items[0].data).items[0].data), -1);
  EXPECT_TRUE(std::get<GgufArray>(nested.items[1].data).items.empty());

  ASSERT_EQ(g->tensors.size(), 7U);
  EXPECT_EQ(g->tensors[0].name, "token_embd.weight");
  EXPECT_EQ(g->tensors[0].bytes, 14400U);
  EXPECT_EQ(g->tensors[2].bytes, 34816U);
  EXPECT_EQ(g->tensors[3].bytes, 9216U);
  EXPECT_EQ(g->tensors[6].bytes, 21000U);
  // Only the header was read, not one byte of tensor data.
  EXPECT_EQ(g->data_offset % 32, 0U);
  EXPECT_LE(g->bytes_read, g->data_offset);
  EXPECT_GT(g->bytes_read + 32, g->data_offset);
  EXPECT_GT(file.size(), 10 * g->bytes_read);

  auto spec = ggufToSpec(*g, "fallback");
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  EXPECT_EQ(spec->name, "tiny-test");
  EXPECT_EQ(spec->paramsTotal(), 297216U);
  EXPECT_EQ(*spec->exact_weight_bytes, 473672U);
  EXPECT_EQ(spec->layers[0].n_kv_heads, 2U);
  EXPECT_EQ(spec->layers[1].n_kv_heads, 1U);
  EXPECT_EQ(spec->layers[0].head_dim_k, 64U);
  PlanRequest req;
  req.model = *spec;
  req.context = 1000;
  auto plan = computePlan(req);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->kv_bytes_per_token,
            2U * 2 * 64 * 2 + 2U * 1 * 64 * 2);  // f16 KV (llama.cpp default)
  EXPECT_EQ(plan->weights_bytes, 473672U);
  EXPECT_EQ(plan->kv_format, "fp16");
}

TEST(Gguf, GgmlTypeSizesMatchGgml) {
  struct Row {
    std::uint32_t id;
    std::uint32_t blk;
    std::uint32_t size;
  };
  for (const Row& r : {Row{0, 1, 4},      Row{1, 1, 2},      Row{30, 1, 2},     Row{2, 32, 18},
                       Row{3, 32, 20},    Row{6, 32, 22},    Row{7, 32, 24},    Row{8, 32, 34},
                       Row{9, 32, 36},    Row{10, 256, 84},  Row{11, 256, 110}, Row{12, 256, 144},
                       Row{13, 256, 176}, Row{14, 256, 210}, Row{15, 256, 292}, Row{16, 256, 66},
                       Row{17, 256, 74},  Row{18, 256, 98},  Row{19, 256, 50},  Row{20, 32, 18},
                       Row{21, 256, 110}, Row{22, 256, 82},  Row{23, 256, 136}, Row{29, 256, 56},
                       Row{34, 256, 54},  Row{35, 256, 66},  Row{39, 32, 17}}) {
    auto t = ggmlType(r.id);
    ASSERT_TRUE(t.has_value()) << r.id;
    EXPECT_EQ(t->block_size, r.blk) << t->name;
    EXPECT_EQ(t->type_size, r.size) << t->name;
  }
  EXPECT_FALSE(ggmlType(4).has_value());
  EXPECT_FALSE(ggmlType(40).has_value());
}

TEST(Gguf, EveryTruncationIsAnError) {
  const std::string file = sampleFile();
  auto full = readBytes(file);
  ASSERT_TRUE(full.has_value());
  // Every cut inside the header, then cuts through the data region up to the end of the last
  // tensor (the writer pads the file after it to the alignment, which readers do not require).
  const std::uint64_t data_end =
      full->data_offset + full->tensors[6].offset + full->tensors[6].bytes;
  EXPECT_TRUE(readBytes(file.substr(0, data_end)).has_value());
  for (std::size_t cut = 0; cut < data_end; cut += cut < full->data_offset ? 1 : 997) {
    auto r = readBytes(file.substr(0, cut));
    ASSERT_FALSE(r.has_value()) << "cut at " << cut;
    EXPECT_TRUE(r.error().code == Code::kDataLoss || r.error().code == Code::kInvalidArgument);
  }
  EXPECT_EQ(errorOf(""), "truncated GGUF at offset 0: magic needs 4 bytes, 0 left");
  EXPECT_EQ(errorOf(file.substr(0, 6)),
            "truncated GGUF at offset 4: version needs 4 bytes, 2 left");
  EXPECT_EQ(errorOf(file.substr(0, 20)),
            "truncated GGUF at offset 16: metadata count needs 8 bytes, 4 left");
  const std::size_t key1 = file.find("general.name");
  EXPECT_EQ(errorOf(file.substr(0, key1 + 3)), "GGUF key of metadata entry 1 at offset " +
                                                   std::to_string(key1 - 8) +
                                                   " claims 12 bytes, more than the file holds");
  EXPECT_EQ(errorOf(file.substr(0, key1 + 14)),
            "truncated GGUF at offset " + std::to_string(key1 + 12) +
                ": type of 'general.name' needs 4 bytes, 2 left");
  EXPECT_EQ(errorOf(file.substr(0, data_end - 1)),
            "GGUF tensor 'output.weight' data [" +
                std::to_string(full->data_offset + full->tensors[6].offset) + ", " +
                std::to_string(data_end) + ") extends past the end of the file (" +
                std::to_string(data_end - 1) + " bytes)");
}

TEST(Gguf, CorruptionsAreNamed) {
  const std::string file = sampleFile();
  std::string f = file;
  f[0] = 'X';
  EXPECT_EQ(errorOf(f), "not a GGUF file: bad magic");
  f = file;
  putU32(f, 4, 1);
  EXPECT_EQ(errorOf(f), "unsupported GGUF version 1 (only 2 and 3 are read)");
  putU32(f, 4, 0x03000000U);
  EXPECT_EQ(errorOf(f), "big-endian GGUF is not supported");
  f = file;
  putU64(f, 8, 1ULL << 40);
  EXPECT_EQ(errorOf(f), "GGUF tensor count 1099511627776 exceeds the limit 16777216");
  f = file;
  putU32(f, typeOffset(file, "general.architecture"), 13);
  EXPECT_EQ(errorOf(f), "GGUF metadata key 'general.architecture' has unknown value type 13");
  f = file;
  f[typeOffset(file, "test.bool") + 4] = 2;
  EXPECT_EQ(errorOf(f), "GGUF value of 'test.bool' at offset " +
                            std::to_string(typeOffset(file, "test.bool") + 4) +
                            " is a bool holding 2");
  f = file;
  putU64(f, typeOffset(file, "test.strings") + 8, 1ULL << 33);
  EXPECT_EQ(errorOf(f), "GGUF value of 'test.strings' at offset " +
                            std::to_string(typeOffset(file, "test.strings") + 8) +
                            " claims 8589934592 array elements, more than the file holds");
  f = file;
  putU32(f, typeOffset(file, "test.strings") + 4, 77);
  EXPECT_EQ(errorOf(f), "GGUF metadata key 'test.strings' has an array of unknown type 77");
  // Tensor infos: dims, type, offset alignment.
  const std::size_t q = typeOffset(file, "blk.0.attn_q.weight");
  f = file;
  putU32(f, q, 5);
  EXPECT_EQ(errorOf(f), "GGUF tensor 'blk.0.attn_q.weight' has 5 dimensions (1 to 4 allowed)");
  f = file;
  putU32(f, q + 4 + 16, 99);
  EXPECT_EQ(errorOf(f), "GGUF tensor 'blk.0.attn_q.weight' has unknown ggml type 99");
  f = file;
  putU32(f, q + 4 + 16, 12);  // Q4_K needs rows of 256: 256 is fine, so make ne0 = 100
  putU64(f, q + 4, 100);
  EXPECT_EQ(errorOf(f),
            "GGUF tensor 'blk.0.attn_q.weight': row size 100 is not a multiple of the Q4_K block "
            "size 256");
  f = file;
  putU64(f, q + 4 + 16 + 4, 8);
  EXPECT_EQ(
      errorOf(f),
      "GGUF tensor 'blk.0.attn_q.weight' data offset 8 is not a multiple of the alignment 32");
}

TEST(Gguf, DuplicateKeysAndMissingArchitecture) {
  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addString("general.architecture", "llama");
  EXPECT_EQ(errorOf(w.header()), "duplicate GGUF metadata key 'general.architecture'");
  GgufWriter n;
  n.addUint32("llama.block_count", 1);
  auto g = readBytes(n.header());
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(ggufToSpec(*g, "x").error().message, "GGUF: missing string key 'general.architecture'");
  GgufWriter b;
  b.addString("general.architecture", "llama");
  b.addUint32("llama.block_count", 2);
  b.addUint32("llama.embedding_length", 64);
  b.addUint32("llama.attention.head_count", 4);
  b.addValue("llama.attention.head_count_kv", arr(GgufType::kUint32, {u(GgufType::kUint32, 2)}));
  auto gb = readBytes(b.header());
  ASSERT_TRUE(gb.has_value());
  EXPECT_EQ(ggufToSpec(*gb, "x").error().message,
            "GGUF: key 'llama.attention.head_count_kv' has 1 entries but block_count is 2");
}

TEST(Gguf, SlidingPatternAndLoadModelFromDisk) {
  GgufWriter w;
  w.addString("general.architecture", "gemma3");
  w.addUint32("gemma3.block_count", 12);
  w.addUint32("gemma3.embedding_length", 256);
  w.addUint32("gemma3.attention.head_count", 4);
  w.addUint32("gemma3.attention.head_count_kv", 1);
  w.addUint32("gemma3.attention.key_length", 128);
  w.addUint32("gemma3.attention.value_length", 128);
  w.addUint32("gemma3.attention.sliding_window", 512);
  w.addTensor("token_embd.weight", {256, 10}, 0);
  const auto path = std::filesystem::temp_directory_path() / "hwl_planner_gemma3_test.gguf";
  {
    std::ofstream out(path, std::ios::binary);
    const std::string h = w.header();
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    out << std::string(w.dataBytes(), '\0');
  }
  auto spec = loadModel(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  int global = 0;
  for (const auto& l : spec->layers) global += l.sliding_window == 0;
  EXPECT_EQ(global, 2);  // layers 5 and 11
  EXPECT_EQ(spec->layers[5].sliding_window, 0U);
  EXPECT_EQ(spec->layers[0].sliding_window, 512U);
  EXPECT_EQ(spec->params_input_embedding, 2560U);
}

}  // namespace
}  // namespace hwl::planner
