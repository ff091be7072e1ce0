// The operator CLI `hwledger`: talks to the server's REST API, and verifies a ledger offline.
#pragma once

#include <ostream>

namespace hwl::cli {

int runCli(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace hwl::cli
