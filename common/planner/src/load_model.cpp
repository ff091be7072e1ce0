// loadModel: picks the reader by file type and combines config.json shapes with exact
// safetensors counts when both sit in one directory.
#include "hwl/planner/load_model.hpp"

#include <algorithm>
#include <fstream>

#include "hwl/planner/gguf.hpp"
#include "hwl/planner/hf_config.hpp"
#include "hwl/planner/safetensors.hpp"

namespace hwl::planner {
namespace {

namespace fs = std::filesystem;

bool endsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string modelName(const fs::path& p) {
  std::string n = p.filename().string();
  for (std::string_view suffix : {".config.json", ".json", ".gguf", ".safetensors"}) {
    if (endsWith(n, suffix)) return n.substr(0, n.size() - suffix.size());
  }
  return n;
}

bool isGguf(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

Result<ModelSpec> loadConfig(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return notFound("cannot open " + p.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto spec = parseHfConfig(text);
  if (!spec) return Error{spec.error().code, p.filename().string() + ": " + spec.error().message};
  spec->name = modelName(p) == "config" ? p.parent_path().filename().string() : modelName(p);
  return spec;
}

Result<ModelSpec> loadGguf(const fs::path& p) {
  auto f = readGgufFile(p);
  if (!f) return f.error();
  auto spec = ggufToSpec(*f, modelName(p));
  if (!spec) return Error{spec.error().code, p.filename().string() + ": " + spec.error().message};
  return spec;
}

// Exact counts from safetensors replace the formula's totals; the config keeps the shapes.
void applySafetensors(ModelSpec& spec, const SafetensorsSummary& s) {
  spec.exact_params = s.params;
  spec.exact_weight_bytes = s.bytes;
  spec.notes.push_back("parameter count and weight bytes from safetensors headers (" +
                       std::to_string(s.tensors) + " tensors)");
}

Result<ModelSpec> withConfigBeside(const fs::path& st_path, const SafetensorsSummary& s) {
  const fs::path cfg = st_path.parent_path() / "config.json";
  if (!fs::exists(cfg)) {
    return invalidArgument(
        st_path.filename().string() +
        ": a safetensors header holds no layer shapes; put the model's config.json "
        "beside it");
  }
  auto spec = loadConfig(cfg);
  if (!spec) return spec.error();
  spec->source = "safetensors";
  applySafetensors(*spec, s);
  return spec;
}

}  // namespace

Result<ModelSpec> loadModel(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return notFound("model path " + path.string() + " does not exist");
  if (fs::is_directory(status)) {
    std::vector<fs::path> ggufs, shards;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const std::string n = e.path().filename().string();
      if (endsWith(n, ".gguf")) ggufs.push_back(e.path());
      if (endsWith(n, ".safetensors")) shards.push_back(e.path());
    }
    std::sort(ggufs.begin(), ggufs.end());
    std::sort(shards.begin(), shards.end());
    const fs::path index = path / "model.safetensors.index.json";
    if (fs::exists(index)) {
      auto s = readSafetensorsIndex(index);
      if (!s) return s.error();
      return withConfigBeside(index, *s);
    }
    if (shards.size() == 1) {
      auto s = readSafetensorsFile(shards[0]);
      if (!s) return s.error();
      return withConfigBeside(shards[0], *s);
    }
    if (fs::exists(path / "config.json")) return loadConfig(path / "config.json");
    if (ggufs.size() == 1) return loadGguf(ggufs[0]);
    if (ggufs.size() > 1) {
      return invalidArgument(path.string() + " holds " + std::to_string(ggufs.size()) +
                             " GGUF files; name one");
    }
    return notFound(path.string() + " holds no config.json, GGUF or safetensors file");
  }
  const std::string n = path.filename().string();
  if (endsWith(n, ".safetensors.index.json")) {
    auto s = readSafetensorsIndex(path);
    if (!s) return s.error();
    return withConfigBeside(path, *s);
  }
  if (endsWith(n, ".safetensors")) {
    auto s = readSafetensorsFile(path);
    if (!s) return s.error();
    return withConfigBeside(path, *s);
  }
  if (endsWith(n, ".gguf") || isGguf(path)) return loadGguf(path);
  if (endsWith(n, ".json")) return loadConfig(path);
  return invalidArgument(path.string() + ": not a config.json, GGUF or safetensors file");
}

}  // namespace hwl::planner
