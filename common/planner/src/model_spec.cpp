// ModelSpec and LayerKind helpers shared by every model reader (config.json, GGUF, safetensors).
#include "hwl/planner/model_spec.hpp"

namespace hwl::planner {

std::string_view layerKindName(LayerKind kind) {
  switch (kind) {
    case LayerKind::kAttention:
      return "attention";
    case LayerKind::kMla:
      return "mla";
    case LayerKind::kMamba1:
      return "mamba1";
    case LayerKind::kMamba2:
      return "mamba2";
    case LayerKind::kLinearAttention:
      return "linear_attention";
    case LayerKind::kMlpOnly:
      return "mlp";
  }
  return "attention";
}

std::uint64_t ModelSpec::paramsTotal() const {
  if (exact_params) return *exact_params;
  std::uint64_t n = params_input_embedding + params_output + params_final_norm +
                    params_embedding_extra + params_vision;
  for (const auto& l : layers) n += l.params.total();
  return n;
}

std::uint64_t ModelSpec::paramsActive() const {
  std::uint64_t n =
      params_input_embedding + params_output + params_final_norm + params_embedding_extra;
  for (const auto& l : layers) n += l.params.active();
  return n;
}

std::uint64_t ModelSpec::paramsActiveExcludingInputEmbedding() const {
  return paramsActive() - params_input_embedding;
}

std::uint64_t ModelSpec::paramsActivePublished() const {
  return active_excludes_input_embedding ? paramsActiveExcludingInputEmbedding() : paramsActive();
}

}  // namespace hwl::planner
