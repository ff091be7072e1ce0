// The rentals as the ledger's events make them: a fold of the "rental/<id>" streams (and the
// "budget" stream) into one record per rental with its state, instance, price and accrued cost,
// plus every cost.accrued row. Built by replaying the events at start-up and kept current by
// applying each event the rental manager appends, so it depends on the events alone (never the
// clock) and a restart rebuilds exactly what was there.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hwl/result.hpp"
#include "ledger/event.hpp"

namespace hwl::rentals {

// requested: rental.requested is recorded, the provider has not (yet) confirmed an instance.
// provisioning: launched, not yet running. running: the provider reports it running.
// terminating: we asked the provider to end it and wait for its confirmation.
// terminated: the provider confirmed it gone (billing ended). failed: never got an instance.
// orphan: an instance the provider still bills that we could not end or never launched.
enum class RentalState {
  kRequested,
  kProvisioning,
  kRunning,
  kTerminating,
  kTerminated,
  kFailed,
  kOrphan
};
[[nodiscard]] std::string_view rentalStateName(RentalState s);
// Whether an instance may exist and bill: every state but terminated and failed.
[[nodiscard]] bool mayBill(RentalState s);

struct Rental {
  std::string id;  // "rental-…", or "orphan-<provider>-<instance>" for instances we never launched
  std::string provider;
  std::string offer_id;       // the provider's offer id
  boost::json::object offer;  // the offer as listed at launch
  std::string name;
  std::string label;  // hwledger-<id>
  bool spot = false;
  RentalState state = RentalState::kRequested;
  std::string instance_id;
  double price_hour_usd = 0;  // the price recorded at launch
  std::string price_source;   // "provider" (the provider's answer) or "offer" (its listing)
  int gpu_count = 0;
  std::string ssh_host;
  int ssh_port = 0;
  std::string ssh_user;
  std::string host_id;  // the host enrolled on it, once enrolled
  std::string message;  // the last failure or orphan reason
  std::string requested_by;
  int64_t requested_ms = 0;
  int64_t launched_ms = 0;  // billing starts here
  int64_t running_ms = 0;
  int64_t terminate_requested_ms = 0;
  int64_t ended_ms = 0;  // terminated (billing ends) or failed
  double accrued_usd = 0;
  int64_t accrued_to_ms = 0;                  // cost.accrued covers [launched_ms, accrued_to_ms)
  std::optional<double> provider_billed_usd;  // the last figure the provider reported
  int64_t version = 0;                        // of the rental's stream
  [[nodiscard]] boost::json::object toJson(int64_t now_ms) const;
  // Accrued plus what has run since the last cost.accrued, at the recorded price.
  [[nodiscard]] double costTo(int64_t now_ms) const;
};

struct CostRow {
  int64_t seq = 0;
  std::string rental_id;
  std::string provider;
  std::string host_id;
  std::string job_id;  // empty: the rental's own row
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  double amount_usd = 0;
  double price_hour_usd = 0;
  std::string price_source;
};

class RentalBook {
 public:
  // Applies one event of a rental stream or the budget stream; others are ignored. An event that
  // does not parse is an error (the ledger holds only events the manager wrote).
  Status apply(const ledger::Event& e);
  [[nodiscard]] const Rental* find(const std::string& id) const;
  [[nodiscard]] const std::map<std::string, Rental>& rentals() const { return rentals_; }
  [[nodiscard]] const std::vector<CostRow>& costs() const { return costs_; }
  // The rental whose label this is, when the label is ours ("hwledger-<id>").
  [[nodiscard]] static std::optional<std::string> rentalIdOfLabel(std::string_view label);
  [[nodiscard]] int64_t budgetVersion() const { return budget_version_; }
  // The last budget.exceeded time per cap ("max_hourly_usd", "max_total_usd").
  [[nodiscard]] const std::map<std::string, int64_t>& budgetReported() const { return budget_; }
  [[nodiscard]] int64_t lastSeq() const { return last_seq_; }

 private:
  std::map<std::string, Rental> rentals_;
  std::vector<CostRow> costs_;
  std::map<std::string, int64_t> budget_;
  int64_t budget_version_ = 0;
  int64_t last_seq_ = 0;
};

inline constexpr std::string_view kLabelPrefix = "hwledger-";
// A rental id: "rental-" and 16 lower-case hex digits (new ones), or an orphan's id.
[[nodiscard]] bool validRentalId(std::string_view id);

}  // namespace hwl::rentals
