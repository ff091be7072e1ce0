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
#include <thread>
#include <vector>

#include "rentals/provider.hpp"

namespace hwl::rentals {

struct OfferSnapshot {
  std::vector<Offer> offers;                  // sorted by price, then id
  std::map<std::string, std::string> errors;  // provider → what went wrong (never the key)
};

class OfferCatalog {
 public:
  // `fetch_timeout`: how long a refresh waits for a provider (whose calls retry with backoff);
  // one that has not answered by then is reported and keeps its last offers, and its answer, when
  // it comes, serves the next refresh.
  OfferCatalog(std::vector<std::shared_ptr<Provider>> providers, std::chrono::seconds ttl,
               std::chrono::milliseconds fetch_timeout = std::chrono::seconds(30));
  ~OfferCatalog();
  OfferCatalog(const OfferCatalog&) = delete;
  OfferCatalog& operator=(const OfferCatalog&) = delete;
  // The offers that match `filter` (refreshed when older than the TTL); `provider` limits it to
  // one provider when not empty.
  OfferSnapshot get(const OfferFilter& filter, const std::string& provider = {});
  // One offer by its id ("provider:offer id"), as last listed (refreshed when stale).
  Result<Offer> find(std::string_view id);

 private:
  // One provider's fetch, shared with its thread (which may outlive a refresh that gave up).
  struct Fetch {
    std::mutex mu;
    std::condition_variable done_cv;
    bool done = false;
    Result<std::vector<Offer>> result{std::vector<Offer>{}};
  };
  void refreshIfStale();
  void apply(const std::string& name, Result<std::vector<Offer>> result);
  std::vector<std::shared_ptr<Provider>> providers_;
  std::chrono::seconds ttl_;
  std::chrono::milliseconds fetch_timeout_;
  std::map<std::string, std::shared_ptr<Fetch>> in_flight_;  // by provider, under mu_
  std::mutex mu_;
  std::condition_variable done_;
  bool refreshing_ = false;
  std::chrono::steady_clock::time_point fetched_{};
  bool fetched_once_ = false;
  std::map<std::string, std::vector<Offer>> by_provider_;
  std::map<std::string, std::string> errors_;
};

}  // namespace hwl::rentals
