// What hwledger-agent's subcommands do: run the daemon, enroll.
#pragma once

#include <iosfwd>

#include "agent_config.hpp"
#include "enrollment.hpp"
#include "hwl/outbox/outbox.hpp"

namespace hwl::agent {

// Serves until SIGINT/SIGTERM; returns the exit code.
int runAgent(const AgentConfig& cfg, std::ostream& out);

// Records GPUs appearing or vanishing in the outbox (as host.inventory_changed), comparing with
// the inventory last recorded in `state_file` so changes while the agent was down count too.
class InventoryWatcher {
 public:
  InventoryWatcher(std::filesystem::path state_file) : file_(std::move(state_file)) {}
  // Compares `uuids → description` with the last inventory; appends an entry when they differ.
  Status observe(const std::vector<std::pair<std::string, boost::json::object>>& gpus,
                 outbox::Outbox& outbox);

 private:
  std::filesystem::path file_;
};

}  // namespace hwl::agent
