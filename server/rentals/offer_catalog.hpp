// The offers of every configured provider, cached for a TTL. Providers are asked concurrently (a
// thread each, never an Asio I/O thread), one refresh at a time (callers arriving meanwhile wait
// for it); a provider that fails keeps its last good offers, marked stale in the errors, and never
// empties the others' part of the catalogue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rentals/provider.hpp"

namespace hwl::rentals {

struct OfferSnapshot {
  std::vector<Offer> offers;                  // sorted by price, then id
  std::map<std::string, std::string> errors;  // provider → what went wrong (never the key)
};

class OfferCatalog {
 public:
  OfferCatalog(std::vector<std::shared_ptr<Provider>> providers, std::chrono::seconds ttl);
  // The offers that match `filter` (refreshed when older than the TTL); `provider` limits it to
  // one provider when not empty.
  OfferSnapshot get(const OfferFilter& filter, const std::string& provider = {});
  // One offer by its id ("provider:offer id"), as last listed (refreshed when stale).
  Result<Offer> find(std::string_view id);

 private:
  void refreshIfStale();
  std::vector<std::shared_ptr<Provider>> providers_;
  std::chrono::seconds ttl_;
  std::mutex mu_;
  std::condition_variable done_;
  bool refreshing_ = false;
  std::chrono::steady_clock::time_point fetched_{};
  bool fetched_once_ = false;
  std::map<std::string, std::vector<Offer>> by_provider_;
  std::map<std::string, std::string> errors_;
};

}  // namespace hwl::rentals
