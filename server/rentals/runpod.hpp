// RunPod (GraphQL, https://api.runpod.io/graphql; reference: https://graphql-spec.runpod.io).
#pragma once

#include <memory>

#include "rentals/provider.hpp"
#include "rentals/provider_http.hpp"

namespace hwl::rentals {

std::unique_ptr<Provider> makeRunpodProvider(Endpoint endpoint, std::string image);

}  // namespace hwl::rentals
