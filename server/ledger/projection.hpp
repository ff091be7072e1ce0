// Projections: tables derived from events, written in the same transaction as the events and
// rebuildable by replay. A projection must depend only on the events (never on the clock).
#pragma once

#include <string>
#include <vector>

#include "event.hpp"
#include "sqlite.hpp"

namespace hwl::ledger {

class Projection {
 public:
  virtual ~Projection() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  // Tables this projection owns (their schema comes from the migrations).
  [[nodiscard]] virtual std::vector<std::string> tables() const = 0;
  // Applies one committed-to-be event. An error aborts the whole append.
  virtual Status apply(sqlite::Db& db, const Event& e) = 0;
};

}  // namespace hwl::ledger
