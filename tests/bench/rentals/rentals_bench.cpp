// Ranking rental offers for a model: the offers of three providers (N each, fetched once through
// the real adapters from the loopback fake providers) ranked against a planner request — the
// per-GPU needs computed from the model (Llama 3.1 8B at 131072 tokens, batch 4) and every offer
// judged by them and by price. Printed beside a reference measured in the same run: sorting the
// same offers by price alone. Figures: time per ranking (mean, p50, p99) and the RSS.
//
//   rentals_bench VAST_URL RUNPOD_URL LAMBDA_URL [RUNS]      (tests/bench/rentals/run.sh)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "hwl/planner/load_model.hpp"
#include "hwl/planner/placement.hpp"
#include "rentals/lambda.hpp"
#include "rentals/offer_catalog.hpp"
#include "rentals/runpod.hpp"
#include "rentals/vast.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

long rssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

void report(const char* what, std::vector<double> t) {
  std::sort(t.begin(), t.end());
  double sum = 0;
  for (double x : t) sum += x;
  auto at = [&](double q) { return t[std::min(t.size() - 1, static_cast<size_t>(q * t.size()))]; };
  std::printf("%-44s mean %8.3f ms  p50 %8.3f ms  p99 %8.3f ms  (%zu runs)\n", what, sum / t.size(),
              at(0.50), at(0.99), t.size());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hwl;
  if (argc < 4) {
    std::fprintf(stderr, "usage: rentals_bench VAST_URL RUNPOD_URL LAMBDA_URL [RUNS]\n");
    return 2;
  }
  int runs = argc > 4 ? std::atoi(argv[4]) : 200;
  auto ep = [](const char* url) {
    rentals::Endpoint e;
    e.base_url = url;
    e.api_key = "test-key";
    e.timeout = std::chrono::seconds(60);
    return e;
  };
  std::vector<std::shared_ptr<rentals::Provider>> providers = {
      rentals::makeVastProvider(ep(argv[1]), ""), rentals::makeRunpodProvider(ep(argv[2]), ""),
      rentals::makeLambdaProvider(ep(argv[3]), "", 0)};
  long rss0 = rssKb();
  rentals::OfferCatalog catalog(providers, std::chrono::seconds(3600));
  auto t0 = Clock::now();
  auto snap = catalog.get({});
  auto fetch = Clock::now() - t0;
  for (const auto& [p, e] : snap.errors) std::printf("error from %s: %s\n", p.c_str(), e.c_str());
  std::printf(
      "offers: %zu from %zu providers, fetched and normalised in %.1f ms (one refresh, "
      "concurrent)\n",
      snap.offers.size(), providers.size(), ms(fetch));
  long rss1 = rssKb();

  auto model =
      planner::loadModel(std::string(HWL_FIXTURES_DIR) + "/models/Llama-3.1-8B.config.json");
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().message.c_str());
    return 1;
  }
  planner::PlanRequest req;
  req.model = *model;
  req.context = 131072;
  req.batch = 4;

  std::vector<double> full, rank_only, reference;
  size_t fits = 0;
  auto needs0 = planner::placementNeeds(req, false).value();
  for (int i = 0; i < runs; ++i) {
    auto a = Clock::now();
    // What GET /v1/placements does for the offers: the needs, the catalogue, the ranking.
    auto needs = planner::placementNeeds(req, false).value();
    auto offers = catalog.get({});
    std::vector<planner::OfferCapacity> caps;
    caps.reserve(offers.offers.size());
    for (const auto& o : offers.offers)
      caps.push_back({o.id, static_cast<uint32_t>(o.gpu_count),
                      static_cast<uint64_t>(o.gpu_memory_bytes), o.price_hour_usd,
                      o.reliability.value_or(0)});
    auto b = Clock::now();
    auto ranked = planner::rankOffers(needs, caps, 5.0);
    auto c = Clock::now();
    full.push_back(ms(c - a));
    rank_only.push_back(ms(c - b));
    fits = 0;
    for (const auto& f : ranked) fits += f.fits ? 1 : 0;
    // Reference: the same offers sorted by price alone.
    auto copy = caps;
    auto d = Clock::now();
    std::sort(copy.begin(), copy.end(), [](const auto& x, const auto& y) {
      return x.price_hour_usd != y.price_hour_usd ? x.price_hour_usd < y.price_hour_usd
                                                  : x.id < y.id;
    });
    reference.push_back(ms(Clock::now() - d));
  }
  std::printf(
      "request: Llama 3.1 8B, 131072 tokens, batch 4: %.2f GiB per GPU at tp=1; %zu offers "
      "fit under 5 USD/h\n",
      static_cast<double>(needs0.front().per_gpu_bytes) / (1 << 30), fits);
  report("needs + catalogue + ranking (per request)", full);
  report("ranking alone", rank_only);
  report("reference: std::sort of the offers by price", reference);
  std::printf("ratio ranking / sort by price (p50): %.2f\n", [&] {
    auto r = rank_only, s = reference;
    std::sort(r.begin(), r.end());
    std::sort(s.begin(), s.end());
    return r[r.size() / 2] / s[s.size() / 2];
  }());
  std::printf("RSS: %ld KiB at start, %ld KiB with the catalogue, %ld KiB after the runs\n", rss0,
              rss1, rssKb());
  return 0;
}
