// Planner figures: a 1,000-host placement query, and GGUF metadata read from a multi-GB sparse file
// (bytes read against file size).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "hwl/planner/formats.hpp"
#include "hwl/planner/gguf.hpp"
#include "hwl/planner/hf_config.hpp"
#include "hwl/planner/placement.hpp"

using namespace hwl::planner;  // NOLINT: a bench binary
using Clock = std::chrono::steady_clock;

namespace {

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

constexpr const char* kLlama70B =
    R"({"model_type": "llama", "hidden_size": 8192, "num_hidden_layers": 80,
  "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256, "intermediate_size": 28672,
  "max_position_embeddings": 131072, "tie_word_embeddings": false, "torch_dtype": "bfloat16"})";

int placementBench() {
  auto spec = parseHfConfig(kLlama70B);
  if (!spec) return std::fprintf(stderr, "%s\n", spec.error().message.c_str()), 1;
  PlanRequest req;
  req.model = *spec;
  req.context = 32768;
  req.batch = 4;
  std::mt19937_64 rng(42);
  std::vector<HostCapacity> hosts;
  const std::uint64_t sizes[] = {24ULL << 30, 40ULL << 30, 48ULL << 30, 80ULL << 30, 141ULL << 30};
  for (int i = 0; i < 1000; ++i) {
    HostCapacity h{"host-" + std::to_string(i), "node" + std::to_string(i), {}};
    const int gpus = 1 << (rng() % 4);
    const std::uint64_t total = sizes[rng() % 5];
    for (int g = 0; g < gpus; ++g) h.gpus.push_back({total, total - (rng() % (total / 2))});
    hosts.push_back(std::move(h));
  }
  const auto t0 = Clock::now();
  auto needs = tpNeeds(req, 8);
  const double plan_ms = msSince(t0);
  if (!needs) return std::fprintf(stderr, "%s\n", needs.error().message.c_str()), 1;
  const auto t1 = Clock::now();
  std::vector<Placement> ranked;
  constexpr int kRounds = 100;
  for (int r = 0; r < kRounds; ++r) ranked = rankHosts(*needs, hosts);
  const double rank_ms = msSince(t1) / kRounds;
  std::size_t fit = 0;
  for (const auto& p : ranked) fit += p.fits;
  std::printf(
      "placement: 1000 hosts, Llama-3.1-70B @ 32k x 4: plans for TP 1..8 %.3f ms, ranking %.3f ms "
      "(mean of %d), query total %.3f ms; %zu hosts fit, best %s on %u GPU(s)\n",
      plan_ms, rank_ms, kRounds, plan_ms + rank_ms, fit, ranked[0].host_id.c_str(),
      ranked[0].gpus_needed);
  return 0;
}

int ggufBench() {
  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addString("general.name", "bench-70b-shape");
  w.addUint32("llama.block_count", 80);
  w.addUint32("llama.embedding_length", 8192);
  w.addUint32("llama.feed_forward_length", 28672);
  w.addUint32("llama.attention.head_count", 64);
  w.addUint32("llama.attention.head_count_kv", 8);
  w.addUint32("llama.context_length", 131072);
  GgufArray vocab{GgufType::kString, {}};
  for (int i = 0; i < 128256; ++i)
    vocab.items.push_back({GgufType::kString, "tok" + std::to_string(i)});
  w.addValue("tokenizer.ggml.tokens", {GgufType::kArray, std::move(vocab)});
  w.addTensor("token_embd.weight", {8192, 128256}, 12);
  for (int l = 0; l < 80; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    w.addTensor(b + "attn_norm.weight", {8192}, 0);
    w.addTensor(b + "attn_q.weight", {8192, 8192}, 12);
    w.addTensor(b + "attn_k.weight", {8192, 1024}, 12);
    w.addTensor(b + "attn_v.weight", {8192, 1024}, 14);
    w.addTensor(b + "attn_output.weight", {8192, 8192}, 12);
    w.addTensor(b + "ffn_norm.weight", {8192}, 0);
    w.addTensor(b + "ffn_gate.weight", {8192, 28672}, 12);
    w.addTensor(b + "ffn_up.weight", {8192, 28672}, 12);
    w.addTensor(b + "ffn_down.weight", {28672, 8192}, 14);
  }
  w.addTensor("output_norm.weight", {8192}, 0);
  w.addTensor("output.weight", {8192, 128256}, 14);
  const std::string header = w.header();
  const std::uint64_t size = header.size() + w.dataBytes();
  const auto path = std::filesystem::temp_directory_path() /
                    ("hwl_planner_bench_" + std::to_string(::getpid()) + ".gguf");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
  }
  // A sparse tail: the file has its full size but no blocks are allocated for the tensor data.
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
    std::perror("truncate");
    return 1;
  }
  const auto t0 = Clock::now();
  auto g = readGgufFile(path);
  const double read_ms = msSince(t0);
  std::filesystem::remove(path);
  if (!g) return std::fprintf(stderr, "%s\n", g.error().message.c_str()), 1;
  auto spec = ggufToSpec(*g, "bench");
  if (!spec) return std::fprintf(stderr, "%s\n", spec.error().message.c_str()), 1;
  std::printf(
      "gguf: file %s (%llu B), %zu tensors, %zu keys; read %llu B of metadata (%.5f%% of the file) "
      "in %.2f ms; %llu params, %s of weights\n",
      formatBytes(size).c_str(), static_cast<unsigned long long>(size), g->tensors.size(),
      g->metadata.size(), static_cast<unsigned long long>(g->bytes_read),
      100.0 * static_cast<double>(g->bytes_read) / static_cast<double>(size), read_ms,
      static_cast<unsigned long long>(spec->paramsTotal()),
      formatBytes(*spec->exact_weight_bytes).c_str());
  return 0;
}

}  // namespace

int main() {
  if (int rc = placementBench(); rc != 0) return rc;
  return ggufBench();
}
