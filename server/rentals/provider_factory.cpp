// The adapters of the configured providers, each on its own HTTP endpoint.
#include <cstdlib>

#include "rentals/lambda.hpp"
#include "rentals/rentals_config.hpp"
#include "rentals/runpod.hpp"
#include "rentals/vast.hpp"

namespace hwl::rentals {

Result<std::vector<std::shared_ptr<Provider>>> makeProviders(const RentalsConfig& config) {
  std::vector<std::shared_ptr<Provider>> out;
  for (const auto& [name, pc] : config.providers) {
    auto ep = endpointOf(name, pc, [](const char* v) { return std::getenv(v); });
    if (!ep) return ep.error();
    if (name == kLambda) {
      out.push_back(
          makeLambdaProvider(std::move(*ep), pc.ssh_user, static_cast<uint16_t>(pc.ssh_port)));
    } else if (name == kVast) {
      out.push_back(makeVastProvider(std::move(*ep), pc.image));
    } else if (name == kRunpod) {
      out.push_back(makeRunpodProvider(std::move(*ep), pc.image));
    } else {
      return invalidArgument("\"providers\": " + name + " is not supported by this build");
    }
  }
  return out;
}

}  // namespace hwl::rentals
