// Hugging Face config.json -> ModelSpec: unwraps multimodal wrappers, hands the language-model
// config to the reader of its model_type's family (hf_families.cpp), then counts parameters per
// layer (hf_params.cpp) and reads the model-level keys (hf_fields.cpp). readHfConfig also returns
// the keys that were looked up and those that took a default.
#include "hwl/planner/hf_config.hpp"

#include <boost/json.hpp>

#include "hf_families.hpp"
#include "hf_reader.hpp"
#include "hwl/planner/json_text.hpp"

namespace hwl::planner {
namespace json = boost::json;

namespace hf {

Result<HfRead> readHfConfig(const json::object& top) {
  // Multimodal wrappers keep the language model in a nested object; a few keys (dtype,
  // quantisation, tying) may stay at the top level.
  json::object cfg = top;
  std::string derived_type;  // the text model type a wrapper implies, when text_config omits it
  std::string wrapper_type;
  for (const char* nested : {"text_config", "llm_config", "language_config"}) {
    const auto it = top.find(nested);
    if (it != top.end() && it->value().is_object()) {
      cfg = it->value().as_object();
      for (const char* k : {"tie_word_embeddings", "torch_dtype", "dtype", "quantization_config"}) {
        if (!cfg.contains(k) && top.contains(k)) cfg[k] = top.at(k);
      }
      const json::value* wrapper = top.if_contains("model_type");
      if (!cfg.contains("model_type") && wrapper != nullptr && wrapper->is_string()) {
        wrapper_type = std::string(wrapper->as_string());
        derived_type = std::string(textModelTypeOf(wrapper_type));
        if (!derived_type.empty()) cfg["model_type"] = derived_type;
      }
      break;
    }
    if (it != top.end() && !it->value().is_null()) {
      return invalidArgument("config.json: key '" + std::string(nested) +
                             "' must be an object, got " + jsonKindName(it->value()));
    }
  }

  std::string model_type;
  if (const json::value* t = cfg.if_contains("model_type"); t != nullptr && t->is_string()) {
    model_type = std::string(t->as_string());
  }
  ConfigReader r(cfg, modelTypeDefaults(model_type));
  if (!derived_type.empty()) r.recordDefault("model_type", json::string(derived_type));
  ModelSpec spec;
  spec.source = "hf_config";
  spec.architecture = r.stringOpt("model_type").value_or("");
  if (auto n = r.stringOpt("_name_or_path")) spec.name = *n;

  HfModel m;
  m.model_type = spec.architecture;
  if (auto s = familyReaderFor(m.model_type)(r, m); !s) return s.error();
  spec.notes = std::move(m.notes);
  addLayers(m, spec);
  if (auto s = readModelLevel(r, m, spec); !s) return s.error();
  if (auto s = refuseUnreadKvKeys(cfg, r.keysRead(), model_type); !s) return s.error();
  if (auto s = addVisionTower(top, m.hidden, spec); !s) return s.error();
  for (const DefaultedKey& d : r.defaulted()) {
    spec.defaults.push_back(
        {d.key, json::serialize(d.value), d.from_model_type ? model_type + " default" : "derived"});
    if (d.from_model_type) {
      spec.notes.push_back(d.key + " absent: " + json::serialize(d.value) + " (the " + model_type +
                           " default)");
    }
  }
  if (!derived_type.empty()) {
    spec.notes.push_back("text_config has no model_type: " + derived_type + " (from the " +
                         wrapper_type + " wrapper)");
  }
  return HfRead{std::move(spec), r.keysRead(), r.defaulted()};
}

}  // namespace hf

Result<ModelSpec> hfConfigToSpec(const json::object& config) {
  auto read = hf::readHfConfig(config);
  if (!read) return read.error();
  return std::move(read->spec);
}

Result<ModelSpec> parseHfConfig(std::string_view json_text) {
  auto v = parseJsonLenient(json_text, "config.json");
  if (!v) return v.error();
  if (!v->is_object()) {
    return invalidArgument("config.json: top level must be an object, got " + hf::jsonKindName(*v));
  }
  return hfConfigToSpec(v->as_object());
}

}  // namespace hwl::planner
