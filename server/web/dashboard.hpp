// The web dashboard's files, served by hwledger-server over its own TLS listener: GET / (the
// page) and GET /ui/<file> (its script, styles and the bundled uPlot). Public: the page holds no
// data; every figure it shows comes from the API with the caller's own token or certificate.
// Every answer carries a Content-Security-Policy without inline scripts or styles, nosniff, and
// frame-ancestors 'none'.
#pragma once

#include "hwl/routes.hpp"

namespace hwl::web {

// The headers every dashboard answer carries.
const std::vector<std::pair<std::string, std::string>>& securityHeaders();

// Adds GET / and GET /ui/{name}.
void addDashboardRoutes(http::RouteTable& table);

}  // namespace hwl::web
