// Projections: tables derived from events, written in the same transaction as the events and
// rebuildable by replay. A projection must depend only on the events (never on the clock).
#pragma once

#include <string>
#include <vector>

#include "ledger/event.hpp"
#include "ledger/rows.hpp"
#include "sqlite.hpp"

namespace hwl::storage {

// The ledger's value types, used throughout the backend.
using ledger::EnrollTokenRow;
using ledger::Event;
using ledger::GpuRow;
using ledger::HostCertRow;
using ledger::HostRow;
using ledger::isTerminalJobState;
using ledger::JobRow;
using ledger::parseRole;
using ledger::Role;
using ledger::roleName;
using ledger::TokenRow;

class Projection {
 public:
  virtual ~Projection() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  // Tables this projection owns (their schema comes from the migrations).
  [[nodiscard]] virtual std::vector<std::string> tables() const = 0;
  // Applies one committed-to-be event. An error aborts the whole append.
  virtual Status apply(sqlite::Db& db, const Event& e) = 0;
};

}  // namespace hwl::storage
