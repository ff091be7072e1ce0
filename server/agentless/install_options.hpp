// What an install-agent enrollment (POST /v1/hosts/ssh, "mode": "install-agent") asks for beyond
// the SSH connection: where to install, the job user, where the agent listens, and whether the
// unit is enabled. Parsed with the rest of the request, before anything is connected to.
#pragma once

#include <boost/json/object.hpp>
#include <string>

#include "hwl/result.hpp"

namespace hwl::agentless {

struct InstallOptions {
  // "/" installs as deploy/install-agent.sh does. Another absolute directory (which must exist on
  // the host) relocates the whole installation under it: every path, in the files written and in
  // the unit, is under it, and no system user is created (the job user must exist already).
  std::string install_root = "/";
  std::string job_user = "hwledger-job";
  // The agent's listen address (agent.json "listen"). With a wildcard host the agent advertises
  // its own address on the route to the server; with an address, that address.
  std::string agent_listen = "0.0.0.0:9443";
  // `systemctl enable --now` (needs systemd as PID 1 on the host). When false the unit is
  // installed and the agent enrolled but nothing is started.
  bool enable_unit = true;
};

// The request's keys this reads (the others are enroll_ssh's).
inline constexpr std::string_view kInstallKeys[] = {"install_root", "job_user", "agent_listen",
                                                    "enable_unit"};

// Checks and reads them. install_root: absolute, of letters, digits and "/._-+@" only (it goes
// into the unit, the config and shell commands), no "." or ".." component. job_user: a plain user
// name other than root and hwledger-agent. agent_listen: IP:PORT or [IPv6]:PORT.
[[nodiscard]] Result<InstallOptions> parseInstallOptions(const boost::json::object& body);

}  // namespace hwl::agentless
