// safetensors headers: single files and sharded indexes written here, then broken on purpose.
#include "hwl/planner/safetensors.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "hwl/planner/load_model.hpp"

namespace hwl::planner {
namespace {

namespace fs = std::filesystem;

std::string withLength(const std::string& header, std::uint64_t data_bytes) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out += header;
  out.resize(out.size() + data_bytes, '\0');
  return out;
}

const std::string kHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("model.embed_tokens.weight":{"dtype":"BF16","shape":[100,64],"data_offsets":[0,12800]},)"
    R"("model.norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[12800,13056]},)"
    R"("lm_head.weight":{"dtype":"F8_E4M3","shape":[100,64],"data_offsets":[13056,19456]}})";

std::string errorOf(const std::string& bytes) {
  auto r = parseSafetensorsHeader(bytes, bytes.size(), "m.safetensors");
  return r ? std::string("ok") : r.error().message;
}

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("hwl_planner_st_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path_ / name, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

 private:
  fs::path path_;
};

TEST(Safetensors, SingleHeaderCountsParamsAndBytesPerDtype) {
  const std::string file = withLength(kHeader, 19456);
  auto s = parseSafetensorsHeader(file, file.size(), "m.safetensors");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->tensors, 3U);
  EXPECT_EQ(s->params, 6400U + 64 + 6400);
  EXPECT_EQ(s->bytes, 19456U);
  EXPECT_EQ(s->by_dtype.at("BF16").bytes, 12800U);
  EXPECT_EQ(s->by_dtype.at("F32").params, 64U);
  EXPECT_EQ(s->by_dtype.at("F8_E4M3").params, 6400U);
  EXPECT_EQ(s->header_bytes_read, 8 + kHeader.size());
}

TEST(Safetensors, TruncatedAndCorruptHeadersAreNamed) {
  const std::string file = withLength(kHeader, 19456);
  for (std::size_t cut = 0; cut < file.size(); cut += cut < kHeader.size() + 8 ? 1 : 101) {
    EXPECT_NE(errorOf(file.substr(0, cut)), "ok") << "cut " << cut;
  }
  EXPECT_EQ(errorOf(file.substr(0, 5)),
            "m.safetensors: truncated safetensors file: 5 bytes, the header length alone takes 8");
  EXPECT_EQ(errorOf(file.substr(0, 100)),
            "m.safetensors: truncated safetensors file: header claims " +
                std::to_string(kHeader.size()) + " bytes, the file has 92 after the length");
  EXPECT_EQ(
      errorOf(file.substr(0, file.size() - 1)),
      "m.safetensors: tensor 'lm_head.weight' data ends at 19456, past the 19455 data bytes of the "
      "file (truncated)");
  std::string huge = file;
  const std::uint64_t big = 1ULL << 40;
  std::memcpy(huge.data(), &big, 8);
  EXPECT_EQ(errorOf(huge),
            "m.safetensors: safetensors header length 1099511627776 exceeds the 100 MB limit");
  EXPECT_EQ(errorOf(withLength(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", 2)),
            "m.safetensors: tensor 'a' has unknown dtype 'Q4'");
  EXPECT_EQ(errorOf(withLength(R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}})", 4)),
            "m.safetensors: tensor 'a' data_offsets [0, 4) hold 4 bytes, its F16 shape needs 6");
  EXPECT_EQ(errorOf(withLength(R"({"a":{"dtype":"F16","shape":[-3],"data_offsets":[0,4]}})", 4)),
            "m.safetensors: tensor 'a' shape entry must be a non-negative integer");
  EXPECT_EQ(errorOf(withLength(R"({"a":{"dtype":"F16","shape":[2]}})", 4)),
            "m.safetensors: tensor 'a' needs 'data_offsets' [begin, end]");
  EXPECT_EQ(errorOf(withLength(R"([1,2])", 0)),
            "m.safetensors: safetensors header must be a JSON object");
  EXPECT_EQ(errorOf(withLength(R"({"a":)", 0)),
            "m.safetensors: safetensors header is not valid JSON: incomplete JSON");
}

TEST(Safetensors, ShardedIndexReadsEveryShardHeader) {
  TempDir dir;
  dir.write("model-00001-of-00002.safetensors",
            withLength(R"({"a":{"dtype":"BF16","shape":[10,10],"data_offsets":[0,200]}})", 200));
  dir.write("model-00002-of-00002.safetensors",
            withLength(R"({"b":{"dtype":"F32","shape":[5],"data_offsets":[0,20]},)"
                       R"("c":{"dtype":"F4","shape":[4,8],"data_offsets":[20,36]}})",
                       36));
  dir.write(
      "model.safetensors.index.json",
      R"({"metadata":{"total_size":236},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
      R"("b":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  auto s = readSafetensorsIndex(dir.path() / "model.safetensors.index.json");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->tensors, 3U);
  EXPECT_EQ(s->params, 100U + 5 + 32);
  EXPECT_EQ(s->bytes, 236U);
  EXPECT_EQ(s->declared_total_size, 236U);

  // loadModel needs the config for shapes.
  auto no_cfg = loadModel(dir.path());
  ASSERT_FALSE(no_cfg.has_value());
  EXPECT_EQ(
      no_cfg.error().message,
      "model.safetensors.index.json: a safetensors header holds no layer shapes; put the model's "
      "config.json beside it");
  dir.write("config.json", R"({"model_type":"llama","hidden_size":64,"num_hidden_layers":2,
    "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10,"intermediate_size":128,
    "tie_word_embeddings":false,"torch_dtype":"bfloat16"})");
  auto spec = loadModel(dir.path());
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  EXPECT_EQ(spec->paramsTotal(), 137U);
  EXPECT_EQ(*spec->exact_weight_bytes, 236U);
  EXPECT_EQ(spec->source, "safetensors");

  dir.write(
      "model.safetensors.index.json",
      R"({"weight_map":{"a":"model-00001-of-00002.safetensors","z":"model-00001-of-00002.safetensors"}})");
  EXPECT_EQ(readSafetensorsIndex(dir.path() / "model.safetensors.index.json").error().message,
            "model.safetensors.index.json: tensor 'z' is mapped to "
            "model-00001-of-00002.safetensors but that "
            "shard does not hold it");
  dir.write("model.safetensors.index.json", R"({"weight_map":{"a":"../etc/passwd"}})");
  EXPECT_EQ(
      readSafetensorsIndex(dir.path() / "model.safetensors.index.json").error().message,
      "model.safetensors.index.json: weight_map entry 'a' names an unsafe path '../etc/passwd'");
  dir.write("model.safetensors.index.json", R"({"weight_map":{"a":"missing.safetensors"}})");
  EXPECT_EQ(readSafetensorsIndex(dir.path() / "model.safetensors.index.json").error().code,
            Code::kNotFound);
}

}  // namespace
}  // namespace hwl::planner
