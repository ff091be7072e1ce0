// Replay of recorded captures; see replay_probe.hpp for the configuration forms.
#include "hwl/probes/replay_probe.hpp"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <set>

#include "hwl/files.hpp"
#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/rocm_smi.hpp"
#include "hwl/probes/text.hpp"

namespace hwl::probes {
namespace fs = std::filesystem;
namespace {

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Result<std::vector<GpuSample>> loadQueryGpuCsv(const fs::path& p) {
  auto text = files::readFile(p);
  if (!text) return text.error();
  auto gpus = parseQueryGpuCsv(*text);
  if (!gpus) return Error{gpus.error().code, p.string() + ": " + gpus.error().message};
  return gpus;
}

// "nvidia-h100-query-gpu.csv" -> "nvidia-h100"
std::string capturePrefix(const std::string& filename) {
  const auto pos = filename.find("-query-gpu");
  return pos == std::string::npos ? std::string() : filename.substr(0, pos);
}

// A uuid not yet in `used`: the capture's own when free, else one derived from `ordinal`.
std::string distinctUuid(const std::string& uuid, std::uint32_t ordinal,
                         std::set<std::string>& used) {
  if (used.insert(uuid).second) return uuid;
  for (std::uint32_t salt = 0;; ++salt) {
    std::array<char, 16> suffix{};
    std::snprintf(suffix.data(), suffix.size(), "%012x", ordinal + salt * 0x10000u);
    std::string candidate = uuid;
    const auto dash = candidate.rfind('-');
    if (dash != std::string::npos && candidate.size() - dash - 1 == 12) {
      candidate.replace(dash + 1, 12, suffix.data());
    } else {
      candidate += "-r" + std::string(suffix.data());
    }
    if (used.insert(candidate).second) return candidate;
  }
}

bool isCaptureFile(const fs::path& p) {
  const std::string f = p.filename().string();
  if (endsWith(f, ".csv"))
    return f.find("-query-gpu") != std::string::npos && !endsWith(f, "-idle.csv");
  if (endsWith(f, ".xml")) return true;
  if (endsWith(f, ".json")) return f.find("rocm-smi") != std::string::npos;
  return false;
}

}  // namespace

Result<ReplaySource> loadReplayCapture(const std::string& path) {
  const fs::path p(path);
  const std::string f = p.filename().string();
  ReplaySource src;
  src.path = path;
  if (endsWith(f, ".csv")) {
    const std::string prefix = capturePrefix(f);
    if (prefix.empty()) return invalidArgument(path + ": not a --query-gpu capture");
    const fs::path busy = p.parent_path() / (prefix + "-query-gpu.csv");
    const fs::path idle = p.parent_path() / (prefix + "-query-gpu-idle.csv");
    const fs::path apps = p.parent_path() / (prefix + "-compute-apps.csv");
    std::error_code ec;
    if (fs::exists(busy, ec)) {
      auto gpus = loadQueryGpuCsv(busy);
      if (!gpus) return gpus.error();
      // The compute-apps capture was recorded under load: it belongs to the busy frame.
      if (auto appsText = files::readFile(apps)) {
        auto list = parseComputeAppsCsv(*appsText);
        if (!list) return Error{list.error().code, apps.string() + ": " + list.error().message};
        attachProcesses(*gpus, *list);
      }
      src.frames.push_back(std::move(*gpus));
    }
    if (fs::exists(idle, ec)) {
      auto gpus = loadQueryGpuCsv(idle);
      if (!gpus) return gpus.error();
      src.frames.push_back(std::move(*gpus));
    }
    if (src.frames.empty()) {
      auto gpus = loadQueryGpuCsv(p);  // a capture without the usual naming
      if (!gpus) return gpus.error();
      src.frames.push_back(std::move(*gpus));
    }
    return src;
  }
  auto text = files::readFile(path);
  if (!text) return text.error();
  if (endsWith(f, ".xml")) {
    auto gpus = parseNvidiaSmiXml(*text);
    if (!gpus) return Error{gpus.error().code, path + ": " + gpus.error().message};
    src.frames.push_back(std::move(*gpus));
    return src;
  }
  if (endsWith(f, ".json")) {
    auto report = parseRocmSmiJson(*text);
    if (!report) return Error{report.error().code, path + ": " + report.error().message};
    src.frames.push_back(std::move(report->gpus));
    return src;
  }
  return invalidArgument(path + ": unknown capture type (expected .csv, .xml or .json)");
}

Result<ReplaySpec> parseReplaySpec(std::string_view json, const std::string& baseDir) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return invalidArgument("replay spec: not a JSON object");
  const auto& o = v.as_object();
  ReplaySpec spec;
  const auto* files = o.if_contains("files");
  if (files == nullptr || !files->is_array() || files->as_array().empty()) {
    return invalidArgument("replay spec: \"files\" must be a non-empty array of paths");
  }
  for (const auto& f : files->as_array()) {
    if (!f.is_string()) return invalidArgument("replay spec: \"files\" entries must be strings");
    fs::path p(std::string(f.as_string()));
    if (p.is_relative()) p = fs::path(baseDir) / p;
    spec.files.push_back(p.lexically_normal().string());
  }
  if (const auto* n = o.if_contains("gpu_count")) {
    if (!n->is_int64() || n->as_int64() < 1 || n->as_int64() > 4096) {
      return invalidArgument("replay spec: \"gpu_count\" must be an integer from 1 to 4096");
    }
    spec.gpu_count = static_cast<std::uint32_t>(n->as_int64());
  }
  for (const auto& [key, value] : o) {
    (void)value;
    if (key != "files" && key != "gpu_count") {
      return invalidArgument("replay spec: unknown field \"" + std::string(key) + "\"");
    }
  }
  return spec;
}

Result<std::unique_ptr<ReplayProbe>> ReplayProbe::open(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  std::vector<std::string> files;
  std::optional<std::uint32_t> gpuCount;
  auto fromSpec = [&](const fs::path& specPath) -> Status {
    auto text = files::readFile(specPath);
    if (!text) return text.error();
    auto spec = parseReplaySpec(*text, specPath.parent_path().string());
    if (!spec) return Error{spec.error().code, specPath.string() + ": " + spec.error().message};
    files = spec->files;
    gpuCount = spec->gpu_count;
    return {};
  };
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "replay.json", ec)) {
      if (auto st = fromSpec(p / "replay.json"); !st) return st.error();
    } else {
      for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file() && isCaptureFile(it->path()))
          files.push_back(it->path().string());
      }
      std::sort(files.begin(), files.end());
    }
  } else if (!fs::exists(p, ec)) {
    return notFound("replay: no such file or directory: " + path);
  } else if (endsWith(path, ".json")) {
    // A replay spec or a rocm-smi capture: the spec has "files".
    auto text = files::readFile(path);
    if (!text) return text.error();
    boost::system::error_code jec;
    const auto v = boost::json::parse(*text, jec);
    if (!jec && v.is_object() && v.as_object().contains("files")) {
      if (auto st = fromSpec(p); !st) return st.error();
    } else {
      files.push_back(path);
    }
  } else {
    files.push_back(path);
  }
  if (files.empty()) return notFound("replay: no capture found in " + path);
  std::vector<ReplaySource> sources;
  for (const auto& f : files) {
    auto src = loadReplayCapture(f);
    if (!src) return src.error();
    if (src->frames.empty() || src->frames.front().empty()) {
      return invalidArgument("replay: " + f + " holds no GPU");
    }
    sources.push_back(std::move(*src));
  }
  return std::make_unique<ReplayProbe>(std::move(sources), gpuCount);
}

ReplayProbe::ReplayProbe(std::vector<ReplaySource> sources, std::optional<std::uint32_t> gpuCount)
    : sources_(std::move(sources)), gpu_count_(gpuCount) {}

Result<Sample> ReplayProbe::sample() {
  // Templates: every GPU of every source, as (source, position in frame).
  struct Slot {
    std::size_t source;
    std::size_t gpu;
  };
  std::vector<Slot> slots;
  for (std::size_t s = 0; s < sources_.size(); ++s) {
    const std::size_t n = sources_[s].frames.front().size();
    for (std::size_t g = 0; g < n; ++g) slots.push_back({s, g});
  }
  if (slots.empty()) return unavailable("replay: nothing to replay");
  const std::size_t count = gpu_count_ ? *gpu_count_ : slots.size();
  Sample out;
  out.time_ms = unixNowMs();
  std::set<std::string> used;
  for (std::size_t i = 0; i < count; ++i) {
    const Slot& slot = slots[i % slots.size()];
    const auto& frames = sources_[slot.source].frames;
    // Each GPU starts at its own point of the busy/idle cycle, so replicas of one template
    // and neighbours in a fleet do not move in lockstep.
    const auto& frame = frames[(step_ + i) % frames.size()];
    GpuSample g = frame[std::min(slot.gpu, frame.size() - 1)];
    g.index = static_cast<std::uint32_t>(i);
    g.uuid = distinctUuid(g.uuid, static_cast<std::uint32_t>(i), used);
    out.gpus.push_back(std::move(g));
  }
  ++step_;
  return out;
}

}  // namespace hwl::probes
