// Host ranking for a planned model: the fewest GPUs that hold it, then the most headroom.
#include "hwl/planner/placement.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "hwl/planner/formats.hpp"

namespace hwl::planner {

Result<std::vector<TpNeed>> tpNeeds(const PlanRequest& request, std::uint32_t max_tp) {
  std::vector<TpNeed> needs;
  for (std::uint32_t tp = 1; tp <= std::max<std::uint32_t>(max_tp, 1); tp *= 2) {
    PlanRequest r = request;
    r.tp = tp;
    r.per_layer = false;
    r.gpu_mem_bytes.reset();
    auto plan = computePlan(r);
    if (!plan) return plan.error();
    needs.push_back({tp, plan->total_bytes});
  }
  return needs;
}

std::vector<Placement> rankHosts(const std::vector<TpNeed>& needs,
                                 const std::vector<HostCapacity>& hosts) {
  std::vector<Placement> out;
  out.reserve(hosts.size());
  std::vector<std::uint64_t> free;
  for (const auto& h : hosts) {
    Placement p;
    p.host_id = h.id;
    p.host_name = h.name;
    free.clear();
    for (const auto& g : h.gpus) free.push_back(g.free_bytes);
    std::sort(free.begin(), free.end(), std::greater<>());
    if (free.empty()) {
      p.reason = "host reports no GPUs";
      // Ranks below every host that has GPUs: short by the whole single-GPU need.
      p.headroom_bytes =
          needs.empty() ? 0 : -static_cast<std::int64_t>(needs.front().per_gpu_bytes);
      out.push_back(std::move(p));
      continue;
    }
    const TpNeed* best_short = nullptr;
    std::int64_t best_short_headroom = INT64_MIN;
    for (const auto& n : needs) {
      if (n.tp > free.size()) break;
      const std::uint64_t weakest = free[n.tp - 1];
      const std::int64_t headroom =
          static_cast<std::int64_t>(weakest) - static_cast<std::int64_t>(n.per_gpu_bytes);
      if (headroom >= 0) {
        p.fits = true;
        p.gpus_needed = n.tp;
        p.per_gpu_bytes = n.per_gpu_bytes;
        p.headroom_bytes = headroom;
        break;
      }
      if (headroom > best_short_headroom) {
        best_short_headroom = headroom;
        best_short = &n;
      }
    }
    if (!p.fits) {
      if (best_short == nullptr) {
        p.reason = "needs more GPUs than the host has";
      } else {
        p.gpus_needed = best_short->tp;
        p.per_gpu_bytes = best_short->per_gpu_bytes;
        p.headroom_bytes = best_short_headroom;
        p.reason = "needs " + formatBytes(best_short->per_gpu_bytes) + " per GPU on " +
                   std::to_string(best_short->tp) + " GPU(s), the freest " +
                   std::to_string(best_short->tp) + " have " +
                   formatBytes(free[best_short->tp - 1]) + " free (of " +
                   std::to_string(free.size()) + " GPU(s))";
      }
    }
    out.push_back(std::move(p));
  }
  std::stable_sort(out.begin(), out.end(), [](const Placement& a, const Placement& b) {
    if (a.fits != b.fits) return a.fits;
    if (a.fits) {
      if (a.gpus_needed != b.gpus_needed) return a.gpus_needed < b.gpus_needed;
      return a.headroom_bytes > b.headroom_bytes;
    }
    return a.headroom_bytes > b.headroom_bytes;
  });
  return out;
}

Result<std::vector<TpNeed>> placementNeeds(const PlanRequest& request, bool fixed_tp) {
  if (!fixed_tp) return tpNeeds(request);
  PlanRequest r = request;
  r.per_layer = false;
  r.gpu_mem_bytes.reset();
  auto plan = computePlan(r);
  if (!plan) return plan.error();
  return std::vector<TpNeed>{{request.tp, plan->total_bytes}};
}

std::vector<OfferFit> rankOffers(const std::vector<TpNeed>& needs,
                                 const std::vector<OfferCapacity>& offers,
                                 std::optional<double> max_price_hour_usd) {
  struct Judged {
    std::size_t offer;
    const TpNeed* closest;
    bool fits;
    bool over_price;
  };
  std::vector<Judged> judged;
  judged.reserve(offers.size());
  for (std::size_t i = 0; i < offers.size(); ++i) {
    const auto& o = offers[i];
    Judged j{i, nullptr, false, false};
    for (const auto& n : needs) {
      if (n.tp > o.gpus) break;
      j.closest = &n;
      if (n.per_gpu_bytes <= o.gpu_memory_bytes) {
        j.fits = true;
        break;
      }
    }
    if (j.fits && max_price_hour_usd && o.price_hour_usd > *max_price_hour_usd) {
      j.fits = false;
      j.over_price = true;
    }
    judged.push_back(j);
  }
  std::sort(judged.begin(), judged.end(), [&](const Judged& x, const Judged& y) {
    if (x.fits != y.fits) return x.fits;
    const auto& a = offers[x.offer];
    const auto& b = offers[y.offer];
    if (a.price_hour_usd != b.price_hour_usd) return a.price_hour_usd < b.price_hour_usd;
    if (a.reliability != b.reliability) return a.reliability > b.reliability;
    return a.id < b.id;
  });
  double cheapest_fit = -1;
  if (!judged.empty() && judged.front().fits)
    cheapest_fit = offers[judged.front().offer].price_hour_usd;
  std::vector<OfferFit> out;
  out.reserve(judged.size());
  std::size_t reasons = 0;
  for (const auto& j : judged) {
    const auto& o = offers[j.offer];
    OfferFit f;
    f.id = o.id;
    f.fits = j.fits;
    f.price_hour_usd = o.price_hour_usd;
    if (j.closest != nullptr) {
      f.tp = j.closest->tp;
      f.per_gpu_bytes = j.closest->per_gpu_bytes;
      f.headroom_bytes = static_cast<std::int64_t>(o.gpu_memory_bytes) -
                         static_cast<std::int64_t>(j.closest->per_gpu_bytes);
    }
    // Reasons are written for the offers a caller shows: those cheaper than the cheapest fit
    // (all, when none fits), at most kMaxReasons of them.
    bool explain =
        !j.fits && (cheapest_fit < 0 || o.price_hour_usd <= cheapest_fit) && reasons < kMaxReasons;
    if (explain) {
      ++reasons;
      if (j.over_price) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "costs %.4f USD/h, over the maximum of %.4f",
                      o.price_hour_usd, *max_price_hour_usd);
        f.reason = buf;
      } else if (j.closest == nullptr) {
        f.reason = "has " + std::to_string(o.gpus) + " GPU(s), fewer than the " +
                   std::to_string(needs.empty() ? 1 : needs.front().tp) + " it needs";
      } else {
        f.reason = "needs " + formatBytes(j.closest->per_gpu_bytes) +
                   " per GPU at tp=" + std::to_string(j.closest->tp) + " (the most its " +
                   std::to_string(o.gpus) + " GPU(s) allow), the offer has " +
                   formatBytes(o.gpu_memory_bytes);
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<Placement>> placeOn(const PlanRequest& request,
                                       const std::vector<HostCapacity>& hosts, bool fixed_tp) {
  auto n = placementNeeds(request, fixed_tp);
  if (!n) return n.error();
  std::vector<TpNeed> needs = std::move(*n);
  auto ranked = rankHosts(needs, hosts);
  if (fixed_tp)
    for (auto& p : ranked)
      if (p.gpus_needed == 0) p.gpus_needed = request.tp;  // the degree asked for, not met
  return ranked;
}

}  // namespace hwl::planner
