#include "rentals/provider.hpp"

#include <algorithm>
#include <cctype>

namespace hwl::rentals {

bool knownProvider(std::string_view name) {
  return name == kVast || name == kRunpod || name == kLambda;
}

namespace {
bool containsFolded(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}
}  // namespace

bool matches(const OfferFilter& f, const Offer& o) {
  if (!f.gpu.empty() && !containsFolded(o.gpu_model, f.gpu)) return false;
  if (o.gpu_memory_bytes < f.min_gpu_memory_bytes) return false;
  if (f.max_price_hour_usd && o.price_hour_usd > *f.max_price_hour_usd) return false;
  return o.gpu_count >= f.min_gpu_count;
}

boost::json::object toJson(const Offer& o) {
  boost::json::object j{{"id", o.id},
                        {"provider", o.provider},
                        {"offer_id", o.offer_id},
                        {"gpu_model", o.gpu_model},
                        {"gpu_count", o.gpu_count},
                        {"gpu_memory_bytes", o.gpu_memory_bytes},
                        {"vcpus", o.vcpus},
                        {"ram_bytes", o.ram_bytes},
                        {"disk_bytes", o.disk_bytes},
                        {"price_hour_usd", o.price_hour_usd},
                        {"region", o.region}};
  j["spot_price_hour_usd"] = o.spot_price_hour_usd ? boost::json::value(*o.spot_price_hour_usd)
                                                   : boost::json::value(nullptr);
  j["reliability"] =
      o.reliability ? boost::json::value(*o.reliability) : boost::json::value(nullptr);
  return j;
}

bool validOfferId(std::string_view s) {
  if (s.empty() || s.size() > 200 || s.front() == '/' || s.find("..") != std::string_view::npos)
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
           c == '/' || c == '-' || c == ' ';
  });
}

bool validInstanceId(std::string_view s) {
  if (s.empty() || s.size() > 128 || s.front() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string_view stateName(InstanceState s) {
  switch (s) {
    case InstanceState::kProvisioning:
      return "provisioning";
    case InstanceState::kRunning:
      return "running";
    case InstanceState::kStopped:
      return "stopped";
    case InstanceState::kTerminated:
      return "terminated";
    case InstanceState::kFailed:
      return "failed";
    case InstanceState::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace hwl::rentals
