// Fleet projections: GPUs per host (from host.inventory_changed), jobs (from job.* events), and
// how far each agent's outbox has been drained (from the ids of the events it produced).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hwl/proto/types.hpp"
#include "projection.hpp"

namespace hwl::storage {

class FleetProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "fleet"; }
  [[nodiscard]] std::vector<std::string> tables() const override {
    return {"gpus", "jobs", "agent_cursors"};
  }
  Status apply(sqlite::Db& db, const Event& e) override;
};

// The agent that produced an event: "<host-id>" when the event id is "<host-id>:<seq>" and the
// actor is "host:<host-id>", with the seq.
std::optional<std::pair<std::string, int64_t>> agentOrigin(const Event& e);

Result<std::vector<GpuRow>> listGpus(sqlite::Db& db, std::string_view host_id = {});
// GPUs of the hosts whose ids are between first and last (inclusive).
Result<std::vector<GpuRow>> listGpusBetween(sqlite::Db& db, std::string_view first,
                                            std::string_view last);
Result<std::vector<JobRow>> listJobs(sqlite::Db& db, std::string_view host_id = {});
// Jobs that have not ended (they hold their GPUs), oldest first.
Result<std::vector<JobRow>> listActiveJobs(sqlite::Db& db);
Result<std::optional<JobRow>> findJob(sqlite::Db& db, std::string_view id);
// How far each host's outbox has been drained: host id → last agent seq in the ledger.
Result<std::map<std::string, int64_t>> agentCursors(sqlite::Db& db);

}  // namespace hwl::storage
