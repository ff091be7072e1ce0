// Vast.ai (REST, https://console.vast.ai/api/v0; reference: https://docs.vast.ai/api-reference).
#pragma once

#include <memory>

#include "rentals/provider.hpp"
#include "rentals/provider_http.hpp"

namespace hwl::rentals {

std::unique_ptr<Provider> makeVastProvider(Endpoint endpoint, std::string image);

}  // namespace hwl::rentals
