// Ranking hosts by how well a model fits their GPUs (GET /v1/placements).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hwl/planner/plan.hpp"
#include "hwl/result.hpp"

namespace hwl::planner {

struct GpuMemory {
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
};

struct HostCapacity {
  std::string id;
  std::string name;
  std::vector<GpuMemory> gpus;
};

// Per-GPU memory a plan needs at a given tensor-parallel degree.
struct TpNeed {
  std::uint32_t tp = 1;
  std::uint64_t per_gpu_bytes = 0;
};

struct Placement {
  std::string host_id;
  std::string host_name;
  bool fits = false;
  std::uint32_t gpus_needed = 0;    // = the TP degree chosen
  std::uint64_t per_gpu_bytes = 0;  // need per GPU at that degree
  std::int64_t headroom_bytes = 0;  // smallest free memory among the chosen GPUs minus the need
  std::string reason;               // why it does not fit (empty when it fits)
};

// The per-GPU need of `request` at TP = 1, 2, 4, ... up to max_tp (request.tp is ignored).
Result<std::vector<TpNeed>> tpNeeds(const PlanRequest& request, std::uint32_t max_tp = 8);

// Where `request` fits among `hosts`, per GPU (each of the chosen GPUs must hold the per-GPU
// need in its own free memory): at exactly request.tp when `fixed_tp` (the user asked for that
// degree), else at the smallest of TP 1, 2, 4, 8 that fits. The one placement path of
// POST /v1/placements, `hwledger plan --host` and `hwledger placements`.
Result<std::vector<Placement>> placeOn(const PlanRequest& request,
                                       const std::vector<HostCapacity>& hosts, bool fixed_tp);

// The per-GPU needs placement compares against: at exactly request.tp when `fixed_tp`, else at
// TP 1, 2, 4, 8.
Result<std::vector<TpNeed>> placementNeeds(const PlanRequest& request, bool fixed_tp);

// A rental offer as placement sees it: empty GPUs, all alike.
struct OfferCapacity {
  std::string id;
  std::uint32_t gpus = 0;
  std::uint64_t gpu_memory_bytes = 0;  // per GPU
  double price_hour_usd = 0;
  double reliability = 0;  // 0 when unknown
};

struct OfferFit {
  std::string id;
  bool fits = false;
  std::uint32_t tp = 0;             // the degree it would run at (or the closest tried)
  std::uint64_t per_gpu_bytes = 0;  // need per GPU at that degree
  std::int64_t headroom_bytes = 0;  // memory per GPU minus the need
  double price_hour_usd = 0;
  std::string reason;  // why not (empty when it fits)
};

// Rental offers ranked for a model: each at the smallest degree of `needs` its GPUs allow whose
// per-GPU need fits its memory per GPU, and at most `max_price`. Fitting offers first, cheapest
// first (then the more reliable, then the id); the others after them, cheapest first. A reason is
// written for each offer that does not fit and is no dearer than the cheapest fit (every one when
// none fits), up to kMaxReasons — the ones a caller explains. The plan is computed once per degree
// (by the caller, in `needs`), never per offer.
inline constexpr std::size_t kMaxReasons = 1000;
std::vector<OfferFit> rankOffers(const std::vector<TpNeed>& needs,
                                 const std::vector<OfferCapacity>& offers,
                                 std::optional<double> max_price_hour_usd = std::nullopt);

// Pure ranking: for each host, the smallest TP degree whose need fits the free memory of that many
// of its GPUs (the freest ones); hosts that fit come first (fewest GPUs, then most headroom), then
// the others with a reason. Stable for equal keys.
std::vector<Placement> rankHosts(const std::vector<TpNeed>& needs,
                                 const std::vector<HostCapacity>& hosts);

}  // namespace hwl::planner
