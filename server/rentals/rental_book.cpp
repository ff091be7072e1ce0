#include "rentals/rental_book.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <cctype>

#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::rentals {

namespace bj = boost::json;
namespace ev = proto::event;

std::string_view rentalStateName(RentalState s) {
  switch (s) {
    case RentalState::kRequested:
      return "requested";
    case RentalState::kProvisioning:
      return "provisioning";
    case RentalState::kRunning:
      return "running";
    case RentalState::kTerminating:
      return "terminating";
    case RentalState::kTerminated:
      return "terminated";
    case RentalState::kFailed:
      return "failed";
    case RentalState::kOrphan:
      return "orphan";
  }
  return "unknown";
}

bool mayBill(RentalState s) { return s != RentalState::kTerminated && s != RentalState::kFailed; }

bool validRentalId(std::string_view id) {
  if (id.size() < 3 || id.size() > 160) return false;
  if (!id.starts_with("rental-") && !id.starts_with("orphan-")) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::optional<std::string> RentalBook::rentalIdOfLabel(std::string_view label) {
  if (!label.starts_with(kLabelPrefix)) return std::nullopt;
  std::string id(label.substr(kLabelPrefix.size()));
  if (!validRentalId(id) || !id.starts_with("rental-")) return std::nullopt;
  return id;
}

double Rental::costTo(int64_t now_ms) const {
  if (launched_ms == 0) return accrued_usd;
  int64_t end = ended_ms != 0 ? ended_ms : now_ms;
  int64_t from = std::max(accrued_to_ms, launched_ms);
  if (end <= from) return accrued_usd;
  return accrued_usd + price_hour_usd * static_cast<double>(end - from) / 3'600'000.0;
}

bj::object Rental::toJson(int64_t now_ms) const {
  bj::object o{{"id", id},
               {"provider", provider},
               {"offer_id", offer_id},
               {"offer", offer},
               {"name", name},
               {"label", label},
               {"spot", spot},
               {"state", rentalStateName(state)},
               {"instance_id", instance_id},
               {"price_hour_usd", price_hour_usd},
               {"price_source", price_source},
               {"gpu_count", gpu_count},
               {"host_id", host_id},
               {"message", message},
               {"requested_by", requested_by},
               {"requested_ms", requested_ms},
               {"accrued_usd", accrued_usd},
               {"accrued_to_ms", accrued_to_ms},
               {"cost_to_now_usd", costTo(now_ms)}};
  if (!ssh_host.empty()) {
    o["address"] = bj::object{{"host", ssh_host}, {"port", ssh_port}, {"user", ssh_user}};
  } else {
    o["address"] = nullptr;
  }
  auto optMs = [&](const char* k, int64_t v) {
    if (v != 0) {
      o[k] = v;
    } else {
      o[k] = nullptr;
    }
  };
  optMs("launched_ms", launched_ms);
  optMs("running_ms", running_ms);
  optMs("terminate_requested_ms", terminate_requested_ms);
  optMs("ended_ms", ended_ms);
  if (provider_billed_usd) {
    o["provider_billed_usd"] = *provider_billed_usd;
  } else {
    o["provider_billed_usd"] = nullptr;
  }
  return o;
}

namespace {

using json::flagOf;
using json::intOf;
using json::numberOf;
using json::textOf;

}  // namespace

const Rental* RentalBook::find(const std::string& id) const {
  auto it = rentals_.find(id);
  return it == rentals_.end() ? nullptr : &it->second;
}

Status RentalBook::apply(const ledger::Event& e) {
  bool rental_stream = e.stream.starts_with(proto::stream::kRentalPrefix);
  if (!rental_stream && e.stream != proto::stream::kBudget) return {};
  last_seq_ = std::max(last_seq_, e.seq);
  auto parsed = json::parseObject(e.data);
  if (!parsed) return parsed.error();
  const bj::object& d = *parsed;
  if (e.stream == proto::stream::kBudget) {
    budget_version_ = e.version;
    if (e.type == ev::kBudgetExceeded) budget_[textOf(d, "cap")] = e.time_ms;
    return {};
  }
  std::string id = e.stream.substr(std::string_view(proto::stream::kRentalPrefix).size());
  if (e.type == ev::kRentalRequested) {
    Rental r;
    r.id = id;
    r.provider = textOf(d, "provider");
    r.offer_id = textOf(d, "offer_id");
    if (const auto* o = d.if_contains("offer"); o != nullptr && o->is_object())
      r.offer = o->as_object();
    r.name = textOf(d, "name");
    r.label = textOf(d, "label");
    r.spot = flagOf(d, "spot");
    r.price_hour_usd = numberOf(d, "quoted_price_hour_usd");
    r.price_source = "offer";
    r.gpu_count = static_cast<int>(intOf(d, "gpu_count"));
    r.requested_by = e.actor;
    r.requested_ms = e.time_ms;
    r.version = e.version;
    rentals_[id] = std::move(r);
    return {};
  }
  if (e.type == ev::kRentalOrphanFound && !rentals_.contains(id)) {
    // An instance with our label (or in our account) that no rental of the ledger launched.
    Rental r;
    r.id = id;
    r.provider = textOf(d, "provider");
    r.label = textOf(d, "label");
    r.instance_id = textOf(d, "instance_id");
    r.price_hour_usd = numberOf(d, "price_hour_usd");
    r.price_source = r.price_hour_usd > 0 ? "provider" : "unknown";
    r.gpu_count = static_cast<int>(intOf(d, "gpu_count"));
    r.state = RentalState::kOrphan;
    r.message = textOf(d, "reason");
    r.requested_by = e.actor;
    r.requested_ms = e.time_ms;
    r.launched_ms = e.time_ms;
    r.version = e.version;
    rentals_[id] = std::move(r);
    return {};
  }
  auto it = rentals_.find(id);
  if (it == rentals_.end()) return {};  // a cost row of a rental whose start was not kept
  Rental& r = it->second;
  r.version = e.version;
  if (e.type == ev::kRentalLaunched) {
    r.instance_id = textOf(d, "instance_id");
    r.price_hour_usd = numberOf(d, "price_hour_usd");
    r.price_source = textOf(d, "price_source");
    r.launched_ms = e.time_ms;
    if (r.state == RentalState::kRequested || r.state == RentalState::kFailed) {
      r.state = RentalState::kProvisioning;
      r.ended_ms = 0;
    }
  } else if (e.type == ev::kRentalRunning) {
    r.ssh_host = textOf(d, "ssh_host");
    r.ssh_port = static_cast<int>(intOf(d, "ssh_port"));
    r.ssh_user = textOf(d, "ssh_user");
    r.running_ms = e.time_ms;
    if (r.state == RentalState::kProvisioning || r.state == RentalState::kRequested)
      r.state = RentalState::kRunning;
  } else if (e.type == ev::kRentalFailed) {
    r.message = textOf(d, "message");
    if (r.instance_id.empty()) {
      r.state = RentalState::kFailed;
      r.ended_ms = e.time_ms;
    }
  } else if (e.type == ev::kRentalHostEnrolled) {
    r.host_id = textOf(d, "host_id");
  } else if (e.type == ev::kRentalTerminateRequested) {
    r.terminate_requested_ms = e.time_ms;
    if (r.state != RentalState::kOrphan) r.state = RentalState::kTerminating;
  } else if (e.type == ev::kRentalTerminated) {
    r.state = RentalState::kTerminated;
    r.ended_ms = e.time_ms;
  } else if (e.type == ev::kRentalOrphanFound) {
    r.state = RentalState::kOrphan;
    r.message = textOf(d, "reason");
    if (r.instance_id.empty()) r.instance_id = textOf(d, "instance_id");
    if (r.launched_ms == 0) r.launched_ms = e.time_ms;
    if (r.ended_ms != 0) {
      // Found still billing after we recorded its end: billing resumes from now.
      r.accrued_to_ms = std::max(r.accrued_to_ms, e.time_ms);
      r.ended_ms = 0;
    }
  } else if (e.type == ev::kCostAccrued) {
    CostRow row;
    row.seq = e.seq;
    row.rental_id = id;
    row.provider = r.provider;
    row.host_id = textOf(d, "host_id");
    row.from_ms = intOf(d, "from_ms");
    row.to_ms = intOf(d, "to_ms");
    row.amount_usd = numberOf(d, "amount_usd");
    row.price_hour_usd = numberOf(d, "price_hour_usd");
    row.price_source = textOf(d, "price_source");
    r.accrued_usd += row.amount_usd;
    r.accrued_to_ms = std::max(r.accrued_to_ms, row.to_ms);
    if (const auto* jobs = d.if_contains("jobs"); jobs != nullptr && jobs->is_array()) {
      for (const auto& j : jobs->as_array()) {
        if (!j.is_object()) continue;
        CostRow jr = row;
        jr.job_id = textOf(j.as_object(), "job");
        jr.amount_usd = numberOf(j.as_object(), "amount_usd");
        costs_.push_back(std::move(jr));
      }
    }
    costs_.push_back(std::move(row));
  } else if (e.type == ev::kCostDiscrepancy) {
    r.provider_billed_usd = numberOf(d, "provider_usd");
  }
  return {};
}

}  // namespace hwl::rentals
