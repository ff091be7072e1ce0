// Cloud GPU providers behind one interface: the catalogue of offers, launching an instance for a
// rental, its status, terminating it and listing every instance the account holds. One adapter per
// provider (vast.cpp, runpod.cpp, lambda.cpp), each speaking the provider's documented API through
// ProviderHttp (provider_http.hpp: base URL checks, timeouts, retries, the API key). The adapters
// only translate: what to rent, when, and what it cost is decided by the RentalManager.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwl/result.hpp"

namespace hwl::rentals {

// The providers hwLedger rents from, by the name used in offer ids, config keys and events.
inline constexpr std::string_view kVast = "vast";
inline constexpr std::string_view kRunpod = "runpod";
inline constexpr std::string_view kLambda = "lambda";
[[nodiscard]] bool knownProvider(std::string_view name);

// One rentable configuration, normalised across providers.
struct Offer {
  // "<provider>:<offer_id>", unique across providers (e.g. "lambda:gpu_1x_h100_pcie:us-west-1").
  std::string id;
  std::string provider;
  // What the provider launches from: a Vast.ai ask id, "<gpuTypeId>/<SECURE|COMMUNITY>/<count>"
  // for RunPod, "<instance type>:<region>" for Lambda. Only [A-Za-z0-9._:/ -] (checked by
  // validOfferId), so it can travel in ids, URLs and events.
  std::string offer_id;
  std::string gpu_model;  // as the provider names it, e.g. "H100 PCIe"
  int gpu_count = 0;
  int64_t gpu_memory_bytes = 0;  // per GPU
  double vcpus = 0;
  int64_t ram_bytes = 0;
  int64_t disk_bytes = 0;
  double price_hour_usd = 0;                  // on demand, the whole offer
  std::optional<double> spot_price_hour_usd;  // interruptible / minimum bid, where offered
  std::string region;
  std::optional<double> reliability;  // 0..1, where the provider gives one
};

struct OfferFilter {
  std::string gpu;                   // case-insensitive substring of gpu_model; empty: any
  int64_t min_gpu_memory_bytes = 0;  // per GPU
  std::optional<double> max_price_hour_usd;
  int min_gpu_count = 0;
};
[[nodiscard]] bool matches(const OfferFilter& f, const Offer& o);
// The offer as the API answers it and as rental.requested records it.
[[nodiscard]] boost::json::object toJson(const Offer& o);
[[nodiscard]] bool validOfferId(std::string_view s);
// An instance id as it may go into a URL path: 1-128 of [A-Za-z0-9._-], not starting with '.'.
[[nodiscard]] bool validInstanceId(std::string_view s);

struct LaunchRequest {
  // "hwledger-<rental id>": put in the provider's name or label field, so that every instance we
  // launched can be recognised in list() later.
  std::string label;
  // OpenSSH public keys ("ssh-ed25519 AAAA… comment") to authorise on the instance.
  std::vector<std::string> ssh_public_keys;
  bool spot = false;
  std::optional<double> bid_hour_usd;  // spot: the bid (default: the offer's spot price)
  std::string image;                   // container image where the provider runs containers
  int64_t disk_gb = 0;                 // 0: the provider's default
};

enum class InstanceState {
  kProvisioning,  // accepted, not yet running
  kRunning,
  kStopped,     // no longer running but still held (and perhaps billed): exited, outbid, paused
  kTerminated,  // gone, no longer billed
  kFailed,      // the provider gave up on it
  kUnknown,
};
[[nodiscard]] std::string_view stateName(InstanceState s);

struct Instance {
  std::string instance_id;
  std::string label;  // the name/label field as the provider reports it
  InstanceState state = InstanceState::kUnknown;
  std::string provider_status;  // the provider's own status word, for messages
  std::string message;          // the provider's status message, bounded and printable
  std::string ssh_host;         // empty until known
  uint16_t ssh_port = 0;
  std::string ssh_user;
  std::optional<double> price_hour_usd;
  std::optional<double> billed_usd;  // what the provider reports charged so far, where it does
  std::string gpu_model;
  int gpu_count = 0;
};

struct Launched {
  std::string instance_id;
  // The price the provider put on the instance, when its launch answer (or an immediate status)
  // states one; otherwise the offer's price is recorded with source "offer".
  std::optional<double> price_hour_usd;
};

class Provider {
 public:
  virtual ~Provider() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  // The offers now available, filtered. Errors name the provider's problem, never the key.
  virtual Result<std::vector<Offer>> offers(const OfferFilter& filter) = 0;
  // Launches `offer` (as listed by offers()). Not retried on errors that may have reached the
  // provider: the caller finds out through list() whether the label exists.
  virtual Result<Launched> launch(const Offer& offer, const LaunchRequest& req) = 0;
  // kNotFound when the provider no longer knows the instance.
  virtual Result<Instance> status(const std::string& instance_id) = 0;
  // Asks the provider to terminate; success means it accepted the request, not that it is gone.
  // Terminating an instance the provider no longer knows is success.
  virtual Status terminate(const std::string& instance_id) = 0;
  // Every instance of the account (ours carry labels starting "hwledger-").
  virtual Result<std::vector<Instance>> list() = 0;
  // Shutdown: ends any wait between retries at once; later calls fail without waiting.
  virtual void cancel() {}
};

}  // namespace hwl::rentals
