// What hwledger-server's subcommands do: init a data directory, run, rebuild projections.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include "config.hpp"
#include "hwl/result.hpp"
#include "pki/fleet_ca.hpp"
#include "storage/sqlite_ledger.hpp"

namespace hwl::server {

inline constexpr const char* kVersion = "0.1.0";

struct InitOptions {
  std::filesystem::path data_dir;
  std::optional<std::filesystem::path> admin_token_file;
  std::string server_name;  // extra DNS name for the server certificate (default: hostname)
};
// Creates the data directory (mode 0700) with ledger, CA, server certificate and checkpoint key,
// and returns the first admin token. Refuses an existing non-empty directory, changing nothing.
Result<std::string> initDataDir(const InitOptions& opts);

// Opens the ledger of a data directory with every projection.
Result<std::unique_ptr<storage::SqliteLedger>> openLedger(const DataDir& dir,
                                                          int64_t checkpoint_every);

// Serves until SIGINT/SIGTERM; returns the exit code.
// Every route of the API (for `hwledger-server routes --json`).
std::string routesJson();

int runServer(const ServerConfig& cfg, std::ostream& out);

// Issues an admin or metrics client certificate from the fleet CA: a PKCS#12 file (no
// password) when out_p12 is set, else a PEM certificate and key.
Status issueClientCert(const DataDir& dir, ClientRole role, const std::string& name, int64_t days,
                       const std::filesystem::path& out_p12, const std::filesystem::path& cert_out,
                       const std::filesystem::path& key_out);

void addProjections(storage::LedgerOptions& lo);

// Replays the events into fresh projection tables and reports the digests before and after.
int rebuild(const DataDir& dir, std::ostream& out);

}  // namespace hwl::server
