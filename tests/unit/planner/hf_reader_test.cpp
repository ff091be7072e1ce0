// The config.json reader's internals: ConfigReader's record of keys looked up and defaulted, and
// the choice of family reader by model_type.
#include "hf_reader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <string>
#include <vector>

#include "hf_families.hpp"
#include "hwl/planner/hf_config.hpp"

namespace hwl::planner::hf {
namespace {

namespace json = boost::json;

std::vector<std::string> defaultedKeys(const std::vector<DefaultedKey>& d) {
  std::vector<std::string> keys;
  for (const auto& k : d) keys.push_back(k.key);
  return keys;
}

TEST(HfConfigReader, RecordsEachKeyLookedUpOnceInOrder) {
  const json::object o = json::parse(R"({"a": 1, "b": null, "c": "x"})").as_object();
  ConfigReader r(o);
  EXPECT_EQ(r.uintOpt("a"), 1U);
  EXPECT_FALSE(r.has("b"));                   // null is absent ...
  EXPECT_TRUE(r.present("b"));                // ... but there
  EXPECT_EQ(r.uintAny({"z", "a", "c"}), 1U);  // stops at the first spelling present
  EXPECT_FALSE(r.failed());
  // Every spelling of a multi-spelling read is looked at, present or not: a config that sets
  // two spellings is read from the first and the second counts as seen.
  EXPECT_EQ(r.keysRead(), (std::vector<std::string>{"a", "b", "z", "c"}));
}

TEST(HfConfigReader, RecordsDefaultsOnlyForAbsentKeys) {
  const json::object o =
      json::parse(R"({"present": 3, "nulled": null, "bad": "x", "flag": false, "bad2": 1})")
          .as_object();
  ConfigReader r(o);
  EXPECT_EQ(r.uintOr({"missing", "present"}, 7), 3U);
  EXPECT_EQ(r.uintOr({"nulled"}, 5), 5U);
  EXPECT_EQ(r.boolEither("flag", "other", true), false);
  EXPECT_EQ(r.boolEither("m1", "m2", true), true);
  EXPECT_EQ(r.boolOr("m3", false), false);
  EXPECT_FALSE(r.failed());
  // A value of the wrong type is an error, not a default; the first error is the one kept.
  EXPECT_EQ(r.uintOr({"bad"}, 9), 9U);
  EXPECT_EQ(r.boolOr("bad2", true), true);
  ASSERT_TRUE(r.failed());
  EXPECT_EQ(r.error().message,
            "config.json: key 'bad' must be a non-negative integer, got a string");
  ASSERT_EQ(defaultedKeys(r.defaulted()), (std::vector<std::string>{"nulled", "m1", "m3"}));
  EXPECT_EQ(r.defaulted()[0].value, json::value(5U));
  EXPECT_EQ(r.defaulted()[1].value, json::value(true));
}

TEST(HfConfigRead, RecordsTheDefaultsBehindTheNotes) {
  // A Gemma 3 text config that leaves out KV heads, head_dim, the sliding pattern, the bias,
  // the context, tying and dtype: Gemma3TextConfig's defaults fill them, as transformers does.
  const json::object cfg = json::parse(R"({"model_type": "gemma3_text", "hidden_size": 512,
      "num_hidden_layers": 6, "vocab_size": 1000, "num_attention_heads": 8,
      "intermediate_size": 1024, "sliding_window": 512})")
                               .as_object();
  auto read = readHfConfig(cfg);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  EXPECT_EQ(defaultedKeys(read->defaulted),
            (std::vector<std::string>{"num_key_value_heads", "head_dim", "sliding_window_pattern",
                                      "attention_bias", "max_position_embeddings",
                                      "tie_word_embeddings", "torch_dtype"}));
  EXPECT_EQ(read->defaulted[0].value, json::value(4U));
  EXPECT_EQ(read->defaulted[1].value, json::value(256U));
  EXPECT_EQ(read->defaulted[2].value, json::value(6U));
  EXPECT_EQ(read->defaulted[4].value, json::value(131072U));
  EXPECT_EQ(read->defaulted[6].value, json::value("bfloat16"));
  EXPECT_TRUE(read->defaulted[0].from_model_type);
  EXPECT_FALSE(read->defaulted[6].from_model_type);  // a convention of the planner's
  EXPECT_EQ(read->spec.layers[0].n_kv_heads, 4U);
  EXPECT_EQ(read->spec.layers[0].head_dim_k, 256U);
  for (const auto& d : read->defaulted) {
    EXPECT_FALSE(cfg.contains(d.key)) << d.key;
    EXPECT_NE(std::find(read->keys_read.begin(), read->keys_read.end(), d.key),
              read->keys_read.end())
        << d.key;
  }
  // The record comes with the same spec as the public entry point.
  auto spec = hfConfigToSpec(cfg);
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(read->spec.notes, spec->notes);
  EXPECT_EQ(read->spec.paramsTotal(), spec->paramsTotal());
}

TEST(HfConfigRead, MlaLayersTakeNoHeadDimDefault) {
  const json::object cfg = json::parse(R"({"model_type": "deepseek_v3", "hidden_size": 1024,
      "num_hidden_layers": 2, "vocab_size": 1000, "num_attention_heads": 8,
      "num_key_value_heads": 8, "intermediate_size": 2048, "kv_lora_rank": 128,
      "qk_rope_head_dim": 32, "qk_nope_head_dim": 64, "v_head_dim": 64,
      "tie_word_embeddings": false, "torch_dtype": "bfloat16"})")
                               .as_object();
  auto read = readHfConfig(cfg);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  for (const auto& d : read->defaulted) EXPECT_NE(d.key, "head_dim");
  EXPECT_EQ(read->spec.layers[0].kind, LayerKind::kMla);
}

TEST(HfConfigRead, FamilyReaderByModelType) {
  EXPECT_EQ(familyReaderFor("llama"), &readLlamaLike);
  EXPECT_EQ(familyReaderFor(""), &readLlamaLike);
  EXPECT_EQ(familyReaderFor("deepseek_v3"), &readDeepSeek);  // MLA comes from kv_lora_rank
  EXPECT_EQ(familyReaderFor("qwen2_moe"), &readQwen);
  EXPECT_EQ(familyReaderFor("qwen3_next"), &readQwen);
  EXPECT_EQ(familyReaderFor("gemma3_text"), &readGemma);
  EXPECT_EQ(familyReaderFor("cohere2"), &readCohere2);
  EXPECT_EQ(familyReaderFor("cohere"), &readLlamaLike);
  EXPECT_EQ(familyReaderFor("falcon"), &readFalcon);
  EXPECT_EQ(familyReaderFor("llama4_text"), &readLlama4);
  EXPECT_EQ(familyReaderFor("chatglm"), &readChatGlm);
  EXPECT_EQ(familyReaderFor("mpt"), &readMpt);
  EXPECT_EQ(familyReaderFor("gptj"), &readGpt2Lineage);
  EXPECT_EQ(familyReaderFor("falcon_mamba"), &readMamba);
  EXPECT_EQ(familyReaderFor("falcon_h1"), &readLlamaLike);
  EXPECT_EQ(familyReaderFor("phi3"), &readLlamaLike);
  EXPECT_EQ(familyReaderFor("mamba2"), &readMamba);
  EXPECT_EQ(familyReaderFor("jamba"), &readJamba);
  EXPECT_EQ(familyReaderFor("nemotron_h"), &readNemotronH);
  EXPECT_EQ(familyReaderFor("gpt_oss"), &readGptOss);
}

}  // namespace
}  // namespace hwl::planner::hf
