// loadModel: a ModelSpec from a config.json, GGUF file, safetensors file/index, or a directory.
#pragma once

#include <filesystem>

#include "hwl/planner/model_spec.hpp"
#include "hwl/result.hpp"

namespace hwl::planner {

// A directory is searched for config.json (architecture), then *.gguf, then safetensors; when a
// config.json and safetensors headers are both present, the headers give exact parameter counts
// and bytes and the config gives the layer shapes.
Result<ModelSpec> loadModel(const std::filesystem::path& path);

}  // namespace hwl::planner
