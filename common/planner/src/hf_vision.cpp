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

// Qwen2-VL and Qwen2.5-VL: a 3-D patch embedding without bias (temporal x spatial patches), no
// position table (rotary), `depth` blocks with biased qkv/proj, and a patch merger that
// concatenates spatial_merge_size^2 patches into an MLP ending at the language model's width.
// Qwen2-VL uses LayerNorms (weight+bias) and an ungated fc1/fc2 MLP of mlp_ratio x embed_dim;
// Qwen2.5-VL RMSNorms and a gated MLP of intermediate_size with biases.
Status addQwenVisionTower(ConfigReader& r, const std::string& type, std::uint64_t text_hidden,
                          ModelSpec& spec) {
  const bool v25 = type == "qwen2_5_vl";
  const std::uint64_t d = v25 ? r.uintReq({"hidden_size"}) : r.uintReq({"embed_dim"});
  const std::uint64_t depth = r.uintReq({"depth"});
  const std::uint64_t channels = r.uintOpt("in_chans").value_or(3);
  const std::uint64_t patch = r.uintReq({"patch_size", "spatial_patch_size"});
  const std::uint64_t temporal = r.uintOpt("temporal_patch_size").value_or(2);
  const std::uint64_t merge = r.uintOpt("spatial_merge_size").value_or(2);
  const std::uint64_t inter =
      v25 ? r.uintReq({"intermediate_size"}) : r.uintOpt("mlp_ratio").value_or(4) * d;
  const std::uint64_t out = v25 ? r.uintOpt("out_hidden_size").value_or(text_hidden)
                                : r.uintOpt("hidden_size").value_or(text_hidden);
  if (r.failed()) {
    return invalidArgument("vision_config: " + r.error().message.substr(sizeof("config.json:")));
  }
  if (d > (1U << 16) || inter > (1U << 18) || depth > 1024 || channels > 16 || patch > 1024 ||
      temporal > 16 || merge > 16 || out > (1U << 18)) {
    return invalidArgument("config.json: vision_config has implausible sizes");
  }
  const std::uint64_t norms = v25 ? 2 * d : 4 * d;
  const std::uint64_t mlp =
      v25 ? 2 * (d * inter + inter) + inter * d + d : d * inter + inter + inter * d + d;
  const std::uint64_t block = norms + d * 3 * d + 3 * d + d * d + d + mlp;
  const std::uint64_t merged = d * merge * merge;
  const std::uint64_t merger = (v25 ? d : 2 * d) + merged * merged + merged + merged * out + out;
  spec.params_vision = channels * temporal * patch * patch * d + depth * block + merger;
  spec.notes.emplace_back("vision tower (" + type + ") and patch merger counted as resident");
  return {};
}

}  // namespace

Status addVisionTower(const json::object& top, std::uint64_t text_hidden, ModelSpec& spec) {
  const json::value* vc = top.if_contains("vision_config");
  if (vc == nullptr || vc->is_null()) return {};
  if (!vc->is_object()) {
    return invalidArgument("config.json: key 'vision_config' must be an object, got " +
                           jsonKindName(*vc));
  }
  ConfigReader r(vc->as_object());
  // Qwen2-VL's vision_config names no model_type: the wrapper's is used.
  std::string type = r.stringOpt("model_type").value_or("");
  if (r.failed()) return r.error();
  if (const json::value* t = top.if_contains("model_type");
      type.empty() && t != nullptr && t->is_string()) {
    type = std::string(t->as_string());
  }
  if (type == "qwen2_vl" || type == "qwen2_5_vl" || r.has("depth")) {
    return addQwenVisionTower(r, type, text_hidden, spec);
  }
  // Encoders this reader does not know and that lack the ViT keys are reported, not guessed.
  for (const char* k :
       {"hidden_size", "intermediate_size", "num_hidden_layers", "image_size", "patch_size"}) {
    if (!r.has(k)) {
      spec.notes.emplace_back("vision tower (" + (type.empty() ? std::string("unnamed") : type) +
                              ") not counted: its vision_config has no '" + k + "'");
      return {};
    }
  }
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
  if (type == "pixtral") {
    // Pixtral (Mistral 3): an unbiased patch convolution, RMSNorms, no position table (2-D RoPE),
    // unbiased q/k/v/o and a gated MLP; the Mistral 3 projector: an RMSNorm, the patch merger
    // (spatial_merge_size^2 patches -> one), then vision width -> text width -> text width.
    const json::value* m = top.if_contains("spatial_merge_size");
    const json::value* b = top.if_contains("multimodal_projector_bias");
    const std::uint64_t merge =
        m != nullptr && m->is_int64() && m->as_int64() > 0 && m->as_int64() <= 16
            ? static_cast<std::uint64_t>(m->as_int64())
            : 2;
    const bool bias = b != nullptr && b->is_bool() && b->as_bool();
    p = v.channels * v.patch * v.patch * d + d + v.layers * (2 * d + 4 * d * d + 3 * d * v.inter);
    projector = d + d * merge * merge * d + d * text_hidden + text_hidden * text_hidden +
                (bias ? 2 * text_hidden : 0);
    spec.notes.emplace_back("vision tower (pixtral) and projector counted as resident");
  } else if (type == "llama4_vision_model" || type == "llama4") {
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
    spec.notes.emplace_back(
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
    spec.notes.emplace_back("vision tower (" + (type.empty() ? std::string("ViT") : type) +
                            ") and projector counted as resident");
  }
  spec.params_vision = p + projector;
  return {};
}

}  // namespace hwl::planner::hf
