// RunPod's GraphQL API as its specification documents it (https://graphql-spec.runpod.io, and
// "Manage pods" in https://docs.runpod.io/sdks/graphql/manage-pods): every call is a POST of
// {query, variables} to the endpoint; values travel only as variables, never spliced into the
// query text.
//   gpuTypes { id displayName memoryInGb secureCloud communityCloud
//              lowestPrice(input: {gpuCount}) { minimumBidPrice uninterruptablePrice minVcpu
//              minMemory } }                      offers, one per GPU type, cloud and count
//   podFindAndDeployOnDemand(input) { id costPerHr }   on demand
//   podRentInterruptable(input) { id costPerHr }       spot, with bidPerGpu
//   pod(input: {podId}) { … desiredStatus runtime { ports { ip isIpPublic privatePort
//              publicPort } } }           desiredStatus: CREATED, RESTARTING (starting), RUNNING
//                                         (runtime is null until it is up), EXITED and PAUSED
//                                         (held), DEAD (failed), TERMINATED
//   myself { pods { … } }                 every pod of the account
//   podTerminate(input: {podId})
// GraphQL errors come with HTTP 200 and an "errors" array: they are errors here. The pod's name is
// our label; the SSH keys go in the PUBLIC_KEY environment variable RunPod's images read.
#include "rentals/runpod.hpp"

#include <boost/json.hpp>
#include <cmath>

namespace hwl::rentals {

namespace bj = boost::json;

namespace {

constexpr int64_t kGiB = 1LL << 30;

constexpr const char* kPodFields =
    "id name desiredStatus costPerHr gpuCount machine { gpuDisplayName } "
    "runtime { uptimeInSeconds ports { ip isIpPublic privatePort publicPort type } }";

Error badAnswer(const std::string& what) {
  return badGateway(std::string(kReasonBadAnswer), "runpod: unexpected answer: " + what);
}

class RunpodProvider final : public Provider {
 public:
  RunpodProvider(Endpoint ep, std::string image)
      : http_("runpod", std::move(ep)), image_(std::move(image)) {}

  [[nodiscard]] std::string_view name() const override { return kRunpod; }

  Result<std::vector<Offer>> offers(const OfferFilter& filter) override {
    auto data = graphql(
        "query GpuTypes($input: GpuLowestPriceInput) { gpuTypes { id displayName memoryInGb "
        "secureCloud communityCloud lowestPrice(input: $input) { minimumBidPrice "
        "uninterruptablePrice minVcpu minMemory } } }",
        bj::object{{"input", bj::object{{"gpuCount", 1}}}});
    if (!data) return data.error();
    const auto* types = data->if_contains("gpuTypes");
    if (types == nullptr || !types->is_array()) return badAnswer("no gpuTypes");
    std::vector<Offer> out;
    for (const auto& t : types->as_array()) {
      auto id = jsonString(t, "id");
      const auto* lp = t.is_object() ? t.as_object().if_contains("lowestPrice") : nullptr;
      if (!id || lp == nullptr || !lp->is_object()) continue;
      auto per_gpu = jsonNumber(*lp, "uninterruptablePrice");
      if (!per_gpu || !std::isfinite(*per_gpu) || *per_gpu <= 0) continue;
      auto bid = jsonNumber(*lp, "minimumBidPrice");
      for (const char* cloud : {"SECURE", "COMMUNITY"}) {
        const auto* has = t.as_object().if_contains(
            std::string(cloud) == "SECURE" ? "secureCloud" : "communityCloud");
        if (has == nullptr || !has->is_bool() || !has->as_bool()) continue;
        for (int count : {1, 2, 4, 8}) {
          Offer o;
          o.provider = std::string(kRunpod);
          o.offer_id = *id + "/" + cloud + "/" + std::to_string(count);
          o.id = "runpod:" + o.offer_id;
          o.gpu_model = http_.clean(jsonString(t, "displayName").value_or(*id));
          o.gpu_count = count;
          o.gpu_memory_bytes = jsonInt(t, "memoryInGb").value_or(0) * kGiB;
          o.vcpus = jsonNumber(*lp, "minVcpu").value_or(0) * count;
          o.ram_bytes =
              static_cast<int64_t>(jsonNumber(*lp, "minMemory").value_or(0)) * kGiB * count;
          o.price_hour_usd = std::round(*per_gpu * count * 1e6) / 1e6;
          if (bid && std::isfinite(*bid) && *bid > 0)
            o.spot_price_hour_usd = std::round(*bid * count * 1e6) / 1e6;
          o.region = std::string(cloud) == "SECURE" ? "secure cloud" : "community cloud";
          if (!validOfferId(o.offer_id) || !matches(filter, o)) continue;
          out.push_back(std::move(o));
        }
      }
    }
    return out;
  }

  Result<Launched> launch(const Offer& offer, const LaunchRequest& req) override {
    // "<gpuTypeId>/<SECURE|COMMUNITY>/<count>"
    auto a = offer.offer_id.find('/');
    auto b = offer.offer_id.rfind('/');
    if (a == std::string::npos || a == b) return invalidArgument("not a runpod offer: " + offer.id);
    std::string gpu_type = offer.offer_id.substr(0, a);
    std::string cloud = offer.offer_id.substr(a + 1, b - a - 1);
    int count = std::atoi(offer.offer_id.c_str() + b + 1);
    if (count <= 0 || (cloud != "SECURE" && cloud != "COMMUNITY"))
      return invalidArgument("not a runpod offer: " + offer.id);
    std::string keys;
    for (const auto& k : req.ssh_public_keys) keys += k + "\n";
    bj::object input{{"cloudType", cloud},
                     {"gpuCount", count},
                     {"gpuTypeId", gpu_type},
                     {"name", req.label},
                     {"imageName", req.image.empty() ? image_ : req.image},
                     {"containerDiskInGb", req.disk_gb > 0 ? req.disk_gb : 40},
                     {"volumeInGb", 0},
                     {"ports", "22/tcp"},
                     {"startSsh", true},
                     {"supportPublicIp", true},
                     {"env", bj::array{bj::object{{"key", "PUBLIC_KEY"}, {"value", keys}}}}};
    std::string field;
    Result<bj::object> data = bj::object{};
    if (req.spot) {
      double bid = req.bid_hour_usd.value_or(offer.spot_price_hour_usd.value_or(0));
      if (bid <= 0) return invalidArgument("runpod: a spot launch needs a bid");
      input["bidPerGpu"] = bid / count;
      field = "podRentInterruptable";
      data = graphql(
          "mutation Rent($input: PodRentInterruptableInput!) { podRentInterruptable(input: $input) "
          "{ id costPerHr } }",
          bj::object{{"input", std::move(input)}}, Retry::kUnprocessed);
    } else {
      field = "podFindAndDeployOnDemand";
      data = graphql(
          "mutation Deploy($input: PodFindAndDeployOnDemandInput) { "
          "podFindAndDeployOnDemand(input: "
          "$input) { id costPerHr } }",
          bj::object{{"input", std::move(input)}}, Retry::kUnprocessed);
    }
    if (!data) return data.error();
    const auto* pod = data->if_contains(field);
    auto id = pod != nullptr ? jsonString(*pod, "id") : std::nullopt;
    if (!id || !validInstanceId(*id)) return badAnswer(field + " without a pod id");
    Launched l{*id, std::nullopt};
    if (auto c = jsonNumber(*pod, "costPerHr"); c && std::isfinite(*c) && *c > 0)
      l.price_hour_usd = *c;
    return l;
  }

  Result<Instance> status(const std::string& id) override {
    if (!validInstanceId(id)) return invalidArgument("not a runpod pod id");
    auto data = graphql(
        std::string("query Pod($input: PodFilter) { pod(input: $input) { ") + kPodFields + " } }",
        bj::object{{"input", bj::object{{"podId", id}}}});
    if (!data) return data.error();
    const auto* pod = data->if_contains("pod");
    if (pod == nullptr || pod->is_null()) return notFound("runpod: no pod " + id);
    return podOf(*pod);
  }

  Status terminate(const std::string& id) override {
    if (!validInstanceId(id)) return invalidArgument("not a runpod pod id");
    auto data =
        graphql("mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input) }",
                bj::object{{"input", bj::object{{"podId", id}}}});
    if (!data && data.error().code != Code::kNotFound) return data.error();
    return {};
  }

  Result<std::vector<Instance>> list() override {
    auto data =
        graphql(std::string("query Pods { myself { pods { ") + kPodFields + " } } }", bj::object{});
    if (!data) return data.error();
    const auto* me = data->if_contains("myself");
    const auto* pods =
        me != nullptr && me->is_object() ? me->as_object().if_contains("pods") : nullptr;
    if (pods == nullptr || !pods->is_array()) return badAnswer("myself without pods");
    std::vector<Instance> out;
    for (const auto& p : pods->as_array()) {
      auto i = podOf(p);
      if (i) out.push_back(std::move(*i));
    }
    return out;
  }

  void cancel() override { http_.cancel(); }

 private:
  // One GraphQL request; the "data" object, or the errors it answered with (HTTP 200 or not).
  Result<bj::object> graphql(const std::string& query, bj::object variables,
                             Retry retry = Retry::kIdempotent) {
    bj::value body(bj::object{{"query", query}, {"variables", std::move(variables)}});
    auto v = http_.call("POST", "", &body, retry);
    if (!v) return v.error();
    if (!v->is_object()) return badAnswer("not a GraphQL response");
    const auto& o = v->as_object();
    if (const auto* errs = o.if_contains("errors");
        errs != nullptr && errs->is_array() && !errs->as_array().empty()) {
      std::string msg = jsonString(errs->as_array()[0], "message").value_or("GraphQL error");
      std::string lower;
      for (char c : msg)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      std::string clean = "runpod: " + http_.clean(msg);
      if (lower.find("unauthorized") != std::string::npos ||
          lower.find("api key") != std::string::npos)
        return badGateway(std::string(kReasonAuth), clean);
      if (lower.find("not found") != std::string::npos) return notFound(clean);
      return badGateway(std::string(kReasonError), clean);
    }
    const auto* data = o.if_contains("data");
    if (data == nullptr || !data->is_object()) return badAnswer("GraphQL response without data");
    return data->as_object();
  }

  Result<Instance> podOf(const bj::value& p) {
    auto id = jsonString(p, "id");
    if (!id) return badAnswer("pod without id");
    Instance i;
    i.instance_id = *id;
    i.label = jsonString(p, "name").value_or("");
    auto desired = jsonString(p, "desiredStatus").value_or("");
    i.provider_status = http_.clean(desired);
    const auto* rt = p.as_object().if_contains("runtime");
    bool up = rt != nullptr && rt->is_object();
    if (desired == "RUNNING") {
      i.state = up ? InstanceState::kRunning : InstanceState::kProvisioning;
    } else if (desired == "CREATED" || desired == "RESTARTING") {
      i.state = InstanceState::kProvisioning;
    } else if (desired == "DEAD") {
      i.state = InstanceState::kFailed;
      i.message = "the pod is dead";
    } else if (desired == "EXITED" || desired == "PAUSED") {
      i.state = InstanceState::kStopped;
      i.message = "the pod exited (a spot pod is stopped when it is outbid)";
    } else if (desired == "TERMINATED") {
      i.state = InstanceState::kTerminated;
    } else {
      i.state = InstanceState::kUnknown;
    }
    if (i.state == InstanceState::kRunning) {
      const auto* ports = rt->as_object().if_contains("ports");
      if (ports != nullptr && ports->is_array()) {
        for (const auto& port : ports->as_array()) {
          const auto* pub = port.is_object() ? port.as_object().if_contains("isIpPublic") : nullptr;
          if (jsonInt(port, "privatePort").value_or(0) == 22 && pub != nullptr && pub->is_bool() &&
              pub->as_bool()) {
            i.ssh_host = jsonString(port, "ip").value_or("");
            auto pp = jsonInt(port, "publicPort").value_or(0);
            i.ssh_port = pp > 0 && pp < 65536 ? static_cast<uint16_t>(pp) : 0;
            i.ssh_user = "root";
          }
        }
      }
      if (i.ssh_port == 0) i.ssh_host.clear();
    }
    if (auto c = jsonNumber(p, "costPerHr"); c && std::isfinite(*c) && *c >= 0)
      i.price_hour_usd = *c;
    i.gpu_count = static_cast<int>(jsonInt(p, "gpuCount").value_or(0));
    return i;
  }

  ProviderHttp http_;
  std::string image_;
};

}  // namespace

std::unique_ptr<Provider> makeRunpodProvider(Endpoint endpoint, std::string image) {
  return std::make_unique<RunpodProvider>(
      std::move(endpoint), image.empty()
                               ? "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
                               : std::move(image));
}

}  // namespace hwl::rentals
