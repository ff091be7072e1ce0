// The vision tower and projector of a multimodal config.json: vLLM loads them beside the language
// model, so their weights are resident. Counted from `vision_config` as a ViT (patch embedding,
// position embeddings, pre-norm encoder layers with biased projections and LayerNorms) with the
// parts each encoder adds (SigLIP's pooling head, Llama 4's class token and pixel-shuffle
// adapter), then the projector into the language model's width.
#include <boost/json.hpp>

#include "hf_families.hpp"
#include "hf_reader.hpp"

namespace hwl::planner::hf {
namespace json = boost::json;

namespace {

struct VisionShape {
  std::uint64_t d = 0, inter = 0, layers = 0, channels = 3, image = 0, patch = 0;
};

// One encoder layer: q, k, v, o with biases, fc1/fc2 with biases, two LayerNorms (weight+bias).
std::uint64_t encoderLayer(const VisionShape& v) {
  return 4 * v.d * v.d + 4 * v.d + 2 * v.d * v.inter + v.inter + v.d + 4 * v.d;
}

std::uint64_t patches(const VisionShape& v) { return (v.image / v.patch) * (v.image / v.patch); }

}  // namespace

Status addVisionTower(const json::object& top, std::uint64_t text_hidden, ModelSpec& spec) {
  const json::value* vc = top.if_contains("vision_config");
  if (vc == nullptr || vc->is_null()) return {};
  if (!vc->is_object()) {
    return invalidArgument("config.json: key 'vision_config' must be an object, got " +
                           jsonKindName(*vc));
  }
  ConfigReader r(vc->as_object());
  const std::string type = r.stringOpt("model_type").value_or("");
  VisionShape v;
  v.d = r.uintReq({"hidden_size", "embed_dim"});
  v.inter = r.uintReq({"intermediate_size"});
  v.layers = r.uintReq({"num_hidden_layers", "depth"});
  v.channels = r.uintOpt("num_channels").value_or(3);
  v.image = r.uintReq({"image_size"});
  v.patch = r.uintReq({"patch_size"});
  if (r.failed()) {
    return invalidArgument("vision_config: " + r.error().message.substr(sizeof("config.json:")));
  }
  if (v.d > (1U << 16) || v.inter > (1U << 18) || v.layers > 1024 || v.channels > 16 ||
      v.patch > v.image || v.image > (1U << 16)) {
    return invalidArgument("config.json: vision_config has implausible sizes");
  }
  const std::uint64_t d = v.d;
  std::uint64_t p = v.layers * encoderLayer(v);
  std::uint64_t projector = 0;
  if (type == "llama4_vision_model" || type == "llama4") {
    // Patch embedding without bias, a class token and its position, LayerNorms before and after
    // the encoder, the pixel-shuffle adapter (fc1: intermediate -> projector_input_dim, fc2:
    // projector_output_dim square), then the projector into the text width, all without bias.
    const std::uint64_t in_dim = r.uintReq({"projector_input_dim"});
    const std::uint64_t out_dim = r.uintReq({"projector_output_dim"});
    const std::uint64_t vision_out = r.uintReq({"vision_output_dim"});
    if (r.failed()) return r.error();
    p += v.channels * v.patch * v.patch * d + d + (patches(v) + 1) * d + 4 * d;
    p += v.inter * in_dim + out_dim * out_dim;
    projector = vision_out * text_hidden;
    spec.notes.push_back(
        "vision tower (Llama 4 encoder, pixel-shuffle adapter, projector) counted as resident");
  } else {
    // SigLIP: a biased patch embedding and one position per patch. CLIP: an unbiased patch
    // embedding, a class token with its own position, and a LayerNorm before the encoder. A
    // LayerNorm after it in both.
    const bool clip = type == "clip_vision_model";
    p += v.channels * v.patch * v.patch * d + (clip ? 0 : d) + (patches(v) + (clip ? 1 : 0)) * d +
         2 * d;
    if (clip) p += d + 2 * d;
    if (type == "siglip_vision_model" && r.boolOpt("vision_use_head").value_or(true)) {
      // Attention pooling head: a probe, a multi-head attention with biases, a LayerNorm, an MLP.
      p += d + 4 * d * d + 4 * d + 2 * d + 2 * d * v.inter + v.inter + d;
    }
    if (r.failed()) return r.error();
    if (type == "siglip_vision_model") {
      // Gemma 3: mm_input_projection (vision width x text width) and an RMSNorm over the soft
      // tokens.
      projector = d * text_hidden + d;
    } else {
      // LLaVA: two linear layers with biases, vision width -> text width -> text width.
      projector = d * text_hidden + text_hidden + text_hidden * text_hidden + text_hidden;
    }
    spec.notes.push_back("vision tower (" + (type.empty() ? std::string("ViT") : type) +
                         ") and projector counted as resident");
  }
  spec.params_vision = p + projector;
  return {};
}

}  // namespace hwl::planner::hf
