#include "rentals/offer_catalog.hpp"

#include <algorithm>
#include <cmath>

namespace hwl::rentals {

OfferCatalog::OfferCatalog(std::vector<std::shared_ptr<Provider>> providers,
                           std::chrono::seconds ttl, std::chrono::milliseconds fetch_timeout)
    : providers_(std::move(providers)), ttl_(ttl), fetch_timeout_(fetch_timeout) {}

// Fetches still running hold their provider and their Fetch, never this catalogue.
OfferCatalog::~OfferCatalog() = default;

void OfferCatalog::apply(const std::string& name, Result<std::vector<Offer>> result) {
  if (!result) {
    bool stale = by_provider_.contains(name);
    errors_[name] = result.error().message + (stale ? " (showing the offers listed before)" : "");
    return;
  }
  std::vector<Offer> good;
  size_t dropped = 0;
  for (auto& o : *result) {
    bool ok = o.provider == name && o.id == name + ":" + o.offer_id && validOfferId(o.offer_id) &&
              o.gpu_count > 0 && std::isfinite(o.price_hour_usd) && o.price_hour_usd >= 0 &&
              (!o.spot_price_hour_usd ||
               (std::isfinite(*o.spot_price_hour_usd) && *o.spot_price_hour_usd >= 0));
    if (ok) {
      good.push_back(std::move(o));
    } else {
      ++dropped;
    }
  }
  by_provider_[name] = std::move(good);
  if (dropped > 0) {
    errors_[name] =
        std::to_string(dropped) + " offers without a usable id, GPU count or price were left out";
  } else {
    errors_.erase(name);
  }
}

void OfferCatalog::refreshIfStale() {
  std::unique_lock lock(mu_);
  auto fresh = [&] { return fetched_once_ && std::chrono::steady_clock::now() - fetched_ < ttl_; };
  if (fresh()) return;
  if (refreshing_) {
    done_.wait(lock, [&] { return !refreshing_; });
    return;
  }
  refreshing_ = true;
  // A provider still busy with the fetch of an earlier refresh is not asked again.
  std::vector<std::pair<std::string, std::shared_ptr<Fetch>>> fetches;
  for (const auto& p : providers_) {
    std::string name(p->name());
    auto& f = in_flight_[name];
    if (!f) {
      f = std::make_shared<Fetch>();
      std::thread([p, f] {
        auto r = p->offers(OfferFilter{});
        std::lock_guard fl(f->mu);
        f->result = std::move(r);
        f->done = true;
        f->done_cv.notify_all();
      }).detach();
    }
    fetches.emplace_back(name, f);
  }
  lock.unlock();
  auto deadline = std::chrono::steady_clock::now() + fetch_timeout_;
  std::vector<std::pair<std::string, Result<std::vector<Offer>>>> results;
  for (auto& entry : fetches) {
    const std::string& name = entry.first;
    Fetch& f = *entry.second;
    std::unique_lock fl(f.mu);
    if (f.done_cv.wait_until(fl, deadline, [&f] { return f.done; })) {
      results.emplace_back(name, std::move(f.result));
    } else {
      results.emplace_back(name, Error{Code::kUnavailable,
                                       name + ": no answer within " +
                                           std::to_string(fetch_timeout_.count() / 1000) + " s",
                                       "provider_unavailable",
                                       {}});
    }
  }
  lock.lock();
  for (auto& [name, r] : results) {
    bool done = r.has_value() || r.error().reason != "provider_unavailable";
    if (done || in_flight_[name]->done) in_flight_.erase(name);
    apply(name, std::move(r));
  }
  fetched_ = std::chrono::steady_clock::now();
  fetched_once_ = true;
  refreshing_ = false;
  done_.notify_all();
}

OfferSnapshot OfferCatalog::get(const OfferFilter& filter, const std::string& provider) {
  refreshIfStale();
  std::lock_guard lock(mu_);
  OfferSnapshot s;
  for (const auto& [name, offers] : by_provider_) {
    if (!provider.empty() && name != provider) continue;
    for (const auto& o : offers)
      if (matches(filter, o)) s.offers.push_back(o);
  }
  for (const auto& [name, e] : errors_)
    if (provider.empty() || name == provider) s.errors[name] = e;
  std::sort(s.offers.begin(), s.offers.end(), [](const Offer& a, const Offer& b) {
    return a.price_hour_usd != b.price_hour_usd ? a.price_hour_usd < b.price_hour_usd : a.id < b.id;
  });
  return s;
}

Result<Offer> OfferCatalog::find(std::string_view id) {
  refreshIfStale();
  std::lock_guard lock(mu_);
  auto colon = id.find(':');
  if (colon != std::string_view::npos) {
    auto it = by_provider_.find(std::string(id.substr(0, colon)));
    if (it != by_provider_.end()) {
      for (const auto& o : it->second)
        if (o.id == id) return o;
    }
    auto err = errors_.find(std::string(id.substr(0, colon)));
    if (err != errors_.end() && (it == by_provider_.end()))
      return Error{Code::kUnavailable,
                   "offers of " + err->first + " are unavailable: " + err->second,
                   "provider_unavailable",
                   {}};
  }
  return Error{
      Code::kNotFound, "no offer " + std::string(id) + " is listed now", "offer_not_found", {}};
}

}  // namespace hwl::rentals
