// Lambda Cloud (REST v1, https://cloud.lambda.ai/api/v1; reference:
// https://docs-api.lambda.ai/api/cloud).
#pragma once

#include <memory>

#include "rentals/provider.hpp"
#include "rentals/provider_http.hpp"

namespace hwl::rentals {

// ssh_user (default ubuntu, the user of Lambda's images) and ssh_port (default 22) are how its
// instances are reached: Lambda reports only their address.
std::unique_ptr<Provider> makeLambdaProvider(Endpoint endpoint, std::string ssh_user = {},
                                             uint16_t ssh_port = 0);

}  // namespace hwl::rentals
