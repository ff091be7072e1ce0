// Reading a Hugging Face config.json into a ModelSpec: layer kinds, KV shapes, parameter counts.
#pragma once

#include <boost/json/object.hpp>
#include <string_view>

#include "hwl/planner/model_spec.hpp"
#include "hwl/result.hpp"

namespace hwl::planner {

// Parses config.json text (bare Infinity/NaN accepted). Multimodal wrappers are unwrapped through
// `text_config` / `llm_config` / `language_config`.
Result<ModelSpec> parseHfConfig(std::string_view json_text);

// The same from an already parsed object (the body of POST /v1/plan).
Result<ModelSpec> hfConfigToSpec(const boost::json::object& config);

}  // namespace hwl::planner
