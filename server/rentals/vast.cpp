// Vast.ai's REST API v0 as its reference documents it (https://docs.vast.ai/api-reference):
//   POST   /bundles/                search offers (a JSON query: rentable, verified, order)
//   PUT    /asks/{id}/              create an instance from an offer: {client_id: "me", image,
//                                   label, disk, runtype: "ssh", price (a bid: interruptible)}
//                                   → {success, new_contract}
//   POST   /instances/{id}/ssh/     attach an SSH key to an instance
//   GET    /instances/, GET /instances/{id}/   actual_status (mapped in stateOf) and
//                                   ssh_host/ssh_port of the SSH proxy
//   DELETE /instances/{id}/         destroy the instance
// Offers: gpu_name, num_gpus, gpu_ram (MiB per GPU), cpu_cores_effective, cpu_ram (MiB), disk_space
// (GB), dph_total (the on-demand $/h), min_bid (the lowest interruptible $/h), reliability2,
// geolocation. Authentication: Authorization: Bearer KEY. The instance's label is our label.
#include "rentals/vast.hpp"

#include <boost/json.hpp>
#include <cmath>

namespace hwl::rentals {

namespace bj = boost::json;

namespace {

// Vast reports GPU and CPU memory in MiB (gpu_ram 81559 is an H100's 80 GiB, as nvidia-smi shows).
constexpr int64_t kMiB = 1LL << 20;

Error badAnswer(const std::string& what) {
  return badGateway(std::string(kReasonBadAnswer), "vast: unexpected answer: " + what);
}

// actual_status as Vast documents it ("show instances"): null (being provisioned), loading,
// rebooting (transient) → provisioning; running → running; stopped (disk still billed), frozen
// (GPU still billed), exited → stopped, i.e. held; offline (the host left Vast) → failed;
// unknown (no recent heartbeat) → unknown, on which nothing is decided.
InstanceState stateOf(const std::string& actual, const std::string& intended) {
  if (actual == "running") return InstanceState::kRunning;
  if (actual == "created" || actual == "loading" || actual == "rebooting" || actual.empty())
    return intended == "stopped" ? InstanceState::kStopped : InstanceState::kProvisioning;
  if (actual == "exited" || actual == "stopped" || actual == "frozen")
    return InstanceState::kStopped;
  if (actual == "offline") return InstanceState::kFailed;
  return InstanceState::kUnknown;
}

std::string idText(const bj::value& v) {
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_string()) return std::string(v.as_string());
  return {};
}

class VastProvider final : public Provider {
 public:
  VastProvider(Endpoint ep, std::string image)
      : http_("vast", std::move(ep)), image_(std::move(image)) {}

  [[nodiscard]] std::string_view name() const override { return kVast; }

  Result<std::vector<Offer>> offers(const OfferFilter& filter) override {
    bj::value q(bj::object{{"rentable", bj::object{{"eq", true}}},
                           {"rented", bj::object{{"eq", false}}},
                           {"verified", bj::object{{"eq", true}}},
                           {"type", "on-demand"},
                           {"order", bj::array{bj::array{"dph_total", "asc"}}},
                           {"limit", 10'000}});
    auto v = http_.call("POST", "/bundles/", &q, Retry::kIdempotent);
    if (!v) return v.error();
    const auto* list = v->is_object() ? v->as_object().if_contains("offers") : nullptr;
    if (list == nullptr || !list->is_array()) return badAnswer("bundles without offers");
    std::vector<Offer> out;
    for (const auto& e : list->as_array()) {
      if (!e.is_object()) continue;
      const auto* idv = e.as_object().if_contains("id");
      auto price = jsonNumber(e, "dph_total");
      auto gpus = jsonInt(e, "num_gpus");
      if (idv == nullptr || !price || !gpus || !std::isfinite(*price) || *price < 0 || *gpus <= 0)
        continue;
      Offer o;
      o.provider = std::string(kVast);
      o.offer_id = idText(*idv);
      o.id = "vast:" + o.offer_id;
      o.gpu_model = http_.clean(jsonString(e, "gpu_name").value_or(""));
      o.gpu_count = static_cast<int>(*gpus);
      o.gpu_memory_bytes = static_cast<int64_t>(jsonNumber(e, "gpu_ram").value_or(0)) * kMiB;
      o.vcpus = jsonNumber(e, "cpu_cores_effective").value_or(0);
      o.ram_bytes = static_cast<int64_t>(jsonNumber(e, "cpu_ram").value_or(0)) * kMiB;
      o.disk_bytes = static_cast<int64_t>(jsonNumber(e, "disk_space").value_or(0) * 1e9);
      o.price_hour_usd = *price;
      if (auto bid = jsonNumber(e, "min_bid"); bid && std::isfinite(*bid) && *bid >= 0)
        o.spot_price_hour_usd = *bid;
      o.region = http_.clean(jsonString(e, "geolocation").value_or(""));
      if (auto r = jsonNumber(e, "reliability2"); r && *r >= 0 && *r <= 1) o.reliability = *r;
      if (!validInstanceId(o.offer_id) || !matches(filter, o)) continue;
      out.push_back(std::move(o));
    }
    return out;
  }

  Result<Launched> launch(const Offer& offer, const LaunchRequest& req) override {
    if (!validInstanceId(offer.offer_id)) return invalidArgument("not a vast offer: " + offer.id);
    bj::object body{{"client_id", "me"},
                    {"image", req.image.empty() ? image_ : req.image},
                    {"label", req.label},
                    {"disk", req.disk_gb > 0 ? req.disk_gb : 32},
                    {"runtype", "ssh"}};
    if (req.spot) {
      double bid = req.bid_hour_usd.value_or(offer.spot_price_hour_usd.value_or(0));
      if (bid <= 0) return invalidArgument("vast: a spot launch needs a bid");
      body["price"] = bid;
    }
    bj::value b(std::move(body));
    auto v = http_.call("PUT", "/asks/" + offer.offer_id + "/", &b, Retry::kUnprocessed);
    if (!v) return v.error();
    const auto* c = v->is_object() ? v->as_object().if_contains("new_contract") : nullptr;
    std::string id = c != nullptr ? idText(*c) : "";
    if (id.empty() || !validInstanceId(id)) return badAnswer("ask accepted without new_contract");
    // The keys: attached to the instance (the account's own keys are there as well).
    for (const auto& key : req.ssh_public_keys) {
      bj::value kb(bj::object{{"ssh_key", key}});
      auto k = http_.call("POST", "/instances/" + id + "/ssh/", &kb, Retry::kIdempotent);
      if (!k)
        return Error{k.error().code,
                     "vast: instance " + id +
                         " was created but its SSH key was refused: " + k.error().message,
                     k.error().reason,
                     {}};
    }
    return Launched{id, std::nullopt};
  }

  Result<Instance> status(const std::string& id) override {
    if (!validInstanceId(id)) return invalidArgument("not a vast instance id");
    auto v = http_.call("GET", "/instances/" + id + "/", nullptr, Retry::kIdempotent);
    if (!v) return v.error();
    const auto* inst = v->is_object() ? v->as_object().if_contains("instances") : nullptr;
    if (inst == nullptr || inst->is_null()) return notFound("vast: no instance " + id);
    if (!inst->is_object()) return badAnswer("instance is not an object");
    return instanceOf(*inst);
  }

  Status terminate(const std::string& id) override {
    if (!validInstanceId(id)) return invalidArgument("not a vast instance id");
    auto v = http_.call("DELETE", "/instances/" + id + "/", nullptr, Retry::kIdempotent);
    if (!v && v.error().code != Code::kNotFound) return v.error();
    return {};
  }

  Result<std::vector<Instance>> list() override {
    auto v = http_.call("GET", "/instances/", nullptr, Retry::kIdempotent);
    if (!v) return v.error();
    const auto* list = v->is_object() ? v->as_object().if_contains("instances") : nullptr;
    if (list == nullptr || !list->is_array()) return badAnswer("instances is not a list");
    std::vector<Instance> out;
    for (const auto& e : list->as_array()) {
      auto i = instanceOf(e);
      if (i) out.push_back(std::move(*i));
    }
    return out;
  }

  void cancel() override { http_.cancel(); }

 private:
  Result<Instance> instanceOf(const bj::value& e) {
    const auto* idv = e.is_object() ? e.as_object().if_contains("id") : nullptr;
    if (idv == nullptr) return badAnswer("instance without id");
    Instance i;
    i.instance_id = idText(*idv);
    i.label = jsonString(e, "label").value_or("");
    auto actual = jsonString(e, "actual_status").value_or("");
    auto intended = jsonString(e, "intended_status").value_or("");
    i.provider_status = http_.clean(actual.empty() ? "created" : actual);
    i.state = stateOf(actual, intended);
    i.message = http_.clean(jsonString(e, "status_msg").value_or(""));
    if (i.state == InstanceState::kRunning) {
      i.ssh_host = jsonString(e, "ssh_host").value_or("");
      auto port = jsonInt(e, "ssh_port").value_or(0);
      i.ssh_port = port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
      i.ssh_user = "root";
      if (i.ssh_port == 0) i.ssh_host.clear();
    }
    if (auto p = jsonNumber(e, "dph_total"); p && std::isfinite(*p) && *p >= 0)
      i.price_hour_usd = *p;
    i.gpu_model = http_.clean(jsonString(e, "gpu_name").value_or(""));
    i.gpu_count = static_cast<int>(jsonInt(e, "num_gpus").value_or(0));
    return i;
  }

  ProviderHttp http_;
  std::string image_;
};

}  // namespace

std::unique_ptr<Provider> makeVastProvider(Endpoint endpoint, std::string image) {
  return std::make_unique<VastProvider>(
      std::move(endpoint), image.empty() ? "vastai/base-image:cuda-12.4.1-auto" : std::move(image));
}

}  // namespace hwl::rentals
