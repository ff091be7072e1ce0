// Lambda Cloud's REST API v1, as its reference documents it (https://docs-api.lambda.ai/api/cloud):
//   GET  /instance-types                    offers: one per instance type and region with capacity
//   GET  /ssh-keys, POST /ssh-keys          launches name a registered key
//   POST /instance-operations/launch        {region_name, instance_type_name, ssh_key_names, name}
//   GET  /instances, GET /instances/{id}    status words: booting, active, unhealthy, terminating,
//                                           terminated (and preempted)
//   POST /instance-operations/terminate     {instance_ids}
// Errors are {"error": {"code", "message", "suggestion"}}. Lambda takes exactly one SSH key name
// per launch: the server's own key for the rental (its last key); the operator's keys go in
// through cloud-init user_data. There is no spot market and no per-instance billed figure.
#include "rentals/lambda.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <cmath>

namespace hwl::rentals {

namespace bj = boost::json;

namespace {

constexpr int64_t kGiB = 1LL << 30;

Error badAnswer(const std::string& what) {
  return badGateway(std::string(kReasonBadAnswer), "lambda: unexpected answer: " + what);
}

// "H100 (80 GB PCIe)" → 80 GiB per GPU (Lambda's GB are the GPU's nominal GiB).
int64_t memoryOf(const std::string& gpu_description) {
  auto open = gpu_description.find('(');
  if (open == std::string::npos) return 0;
  size_t i = open + 1;
  int64_t n = 0;
  bool any = false;
  while (i < gpu_description.size() &&
         std::isdigit(static_cast<unsigned char>(gpu_description[i]))) {
    n = n * 10 + (gpu_description[i] - '0');
    any = true;
    if (n > 100'000) return 0;
    ++i;
  }
  if (!any || gpu_description.compare(i, 3, " GB") != 0) return 0;
  return n * kGiB;
}

// What a status word means for billing and following.
InstanceState stateOf(const std::string& s) {
  if (s == "booting") return InstanceState::kProvisioning;
  if (s == "active" || s == "unhealthy") return InstanceState::kRunning;
  if (s == "terminating" || s == "preempted") return InstanceState::kStopped;  // still held
  if (s == "terminated") return InstanceState::kTerminated;
  return InstanceState::kUnknown;
}

bool safeYaml(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c == 0x7f || c == '\'') return false;
  return true;
}

class LambdaProvider final : public Provider {
 public:
  LambdaProvider(Endpoint ep, std::string ssh_user, uint16_t ssh_port)
      : http_("lambda", std::move(ep)), ssh_user_(std::move(ssh_user)), ssh_port_(ssh_port) {}

  [[nodiscard]] std::string_view name() const override { return kLambda; }

  Result<std::vector<Offer>> offers(const OfferFilter& filter) override {
    auto v = http_.call("GET", "/instance-types", nullptr, Retry::kIdempotent);
    if (!v) return v.error();
    const auto* data = v->is_object() ? v->as_object().if_contains("data") : nullptr;
    if (data == nullptr || !data->is_object()) return badAnswer("instance-types without data");
    std::vector<Offer> out;
    for (const auto& [key, entry] : data->as_object()) {
      if (!entry.is_object()) continue;
      const auto* it = entry.as_object().if_contains("instance_type");
      const auto* regions = entry.as_object().if_contains("regions_with_capacity_available");
      if (it == nullptr || !it->is_object() || regions == nullptr || !regions->is_array()) continue;
      auto type = jsonString(*it, "name");
      auto cents = jsonNumber(*it, "price_cents_per_hour");
      const auto* specs = it->as_object().if_contains("specs");
      if (!type || !cents || !std::isfinite(*cents) || *cents < 0 || specs == nullptr) continue;
      Offer o;
      o.provider = std::string(kLambda);
      auto desc = jsonString(*it, "gpu_description").value_or("");
      o.gpu_model = desc.substr(0, desc.find(" ("));
      o.gpu_memory_bytes = memoryOf(desc);
      o.gpu_count = static_cast<int>(jsonInt(*specs, "gpus").value_or(0));
      o.vcpus = static_cast<double>(jsonInt(*specs, "vcpus").value_or(0));
      o.ram_bytes = jsonInt(*specs, "memory_gib").value_or(0) * kGiB;
      o.disk_bytes = jsonInt(*specs, "storage_gib").value_or(0) * kGiB;
      o.price_hour_usd = *cents / 100.0;
      if (o.gpu_count <= 0) continue;
      for (const auto& r : regions->as_array()) {
        auto region = jsonString(r, "name");
        if (!region) continue;
        Offer ro = o;
        ro.region = *region;
        ro.offer_id = *type + ":" + *region;
        ro.id = "lambda:" + ro.offer_id;
        if (!validOfferId(ro.offer_id) || !matches(filter, ro)) continue;
        out.push_back(std::move(ro));
      }
    }
    return out;
  }

  Result<Launched> launch(const Offer& offer, const LaunchRequest& req) override {
    if (req.spot) return invalidArgument("lambda has no spot instances: launch on demand");
    if (req.ssh_public_keys.empty()) return invalidArgument("lambda launches need an SSH key");
    auto colon = offer.offer_id.find(':');
    if (colon == std::string::npos) return invalidArgument("not a lambda offer: " + offer.id);
    auto key_name = ensureKey(req.label, req.ssh_public_keys.back());
    if (!key_name) return key_name.error();
    bj::object body{{"region_name", offer.offer_id.substr(colon + 1)},
                    {"instance_type_name", offer.offer_id.substr(0, colon)},
                    {"ssh_key_names", bj::array{bj::value(*key_name)}},
                    {"name", req.label},
                    {"quantity", 1}};
    if (req.ssh_public_keys.size() > 1) {
      std::string ud = "#cloud-config\nssh_authorized_keys:\n";
      for (size_t i = 0; i + 1 < req.ssh_public_keys.size(); ++i) {
        if (!safeYaml(req.ssh_public_keys[i])) return invalidArgument("ssh key not usable");
        ud += "  - '" + req.ssh_public_keys[i] + "'\n";
      }
      body["user_data"] = ud;
    }
    bj::value b(std::move(body));
    auto v = http_.call("POST", "/instance-operations/launch", &b, Retry::kUnprocessed);
    if (!v) return v.error();
    const auto* data = v->is_object() ? v->as_object().if_contains("data") : nullptr;
    const auto* ids = data != nullptr && data->is_object()
                          ? data->as_object().if_contains("instance_ids")
                          : nullptr;
    if (ids == nullptr || !ids->is_array() || ids->as_array().empty() ||
        !ids->as_array()[0].is_string())
      return badAnswer("launch without instance_ids");
    return Launched{std::string(ids->as_array()[0].as_string()), std::nullopt};
  }

  Result<Instance> status(const std::string& id) override {
    if (!validInstanceId(id)) return invalidArgument("not a lambda instance id");
    auto v = http_.call("GET", "/instances/" + id, nullptr, Retry::kIdempotent);
    if (!v) return v.error();
    const auto* data = v->is_object() ? v->as_object().if_contains("data") : nullptr;
    if (data == nullptr || !data->is_object()) return badAnswer("instance without data");
    return instanceOf(*data);
  }

  Status terminate(const std::string& id) override {
    bj::value b(bj::object{{"instance_ids", bj::array{bj::value(id)}}});
    auto v = http_.call("POST", "/instance-operations/terminate", &b, Retry::kIdempotent);
    if (!v && v.error().code != Code::kNotFound) return v.error();
    return {};
  }

  Result<std::vector<Instance>> list() override {
    auto v = http_.call("GET", "/instances", nullptr, Retry::kIdempotent);
    if (!v) return v.error();
    const auto* data = v->is_object() ? v->as_object().if_contains("data") : nullptr;
    if (data == nullptr || !data->is_array()) return badAnswer("instances without data");
    std::vector<Instance> out;
    for (const auto& i : data->as_array()) {
      auto inst = instanceOf(i);
      if (inst) out.push_back(std::move(*inst));
    }
    return out;
  }

  void cancel() override { http_.cancel(); }

 private:
  Result<Instance> instanceOf(const bj::value& d) {
    auto id = jsonString(d, "id");
    auto status = jsonString(d, "status");
    if (!id || !status) return badAnswer("instance without id or status");
    Instance i;
    i.instance_id = *id;
    i.label = jsonString(d, "name").value_or("");
    i.provider_status = http_.clean(*status);
    i.state = stateOf(*status);
    if (i.state == InstanceState::kRunning) {
      i.ssh_host = jsonString(d, "ip").value_or("");
      i.ssh_port = ssh_port_;
      i.ssh_user = ssh_user_;
    }
    if (*status == "unhealthy") i.message = "lambda reports the instance unhealthy";
    if (const auto* t = d.as_object().if_contains("instance_type");
        t != nullptr && t->is_object()) {
      if (auto c = jsonNumber(*t, "price_cents_per_hour"); c && std::isfinite(*c) && *c >= 0)
        i.price_hour_usd = *c / 100.0;
      if (const auto* specs = t->as_object().if_contains("specs"); specs != nullptr)
        i.gpu_count = static_cast<int>(jsonInt(*specs, "gpus").value_or(0));
      i.gpu_model = http_.clean(jsonString(*t, "gpu_description").value_or(""));
    }
    return i;
  }

  // The name of a registered key with this public key, registering it under `name` when none.
  Result<std::string> ensureKey(const std::string& name, const std::string& public_key) {
    auto v = http_.call("GET", "/ssh-keys", nullptr, Retry::kIdempotent);
    if (!v) return v.error();
    const auto* data = v->is_object() ? v->as_object().if_contains("data") : nullptr;
    if (data == nullptr || !data->is_array()) return badAnswer("ssh-keys without data");
    for (const auto& k : data->as_array()) {
      auto pk = jsonString(k, "public_key");
      auto n = jsonString(k, "name");
      if (pk && n && pk->substr(0, pk->rfind(' ')) == public_key.substr(0, public_key.rfind(' ')))
        return *n;
    }
    bj::value b(bj::object{{"name", name}, {"public_key", public_key}});
    auto added = http_.call("POST", "/ssh-keys", &b, Retry::kUnprocessed);
    if (!added) return added.error();
    return name;
  }

  ProviderHttp http_;
  std::string ssh_user_;
  uint16_t ssh_port_;
};

}  // namespace

std::unique_ptr<Provider> makeLambdaProvider(Endpoint endpoint, std::string ssh_user,
                                             uint16_t ssh_port) {
  return std::make_unique<LambdaProvider>(std::move(endpoint),
                                          ssh_user.empty() ? "ubuntu" : std::move(ssh_user),
                                          ssh_port == 0 ? 22 : ssh_port);
}

}  // namespace hwl::rentals
