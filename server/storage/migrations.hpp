// Numbered schema migrations, recorded in schema_migrations and applied in order at open.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sqlite.hpp"

namespace hwl::storage {

struct Migration {
  int64_t version;
  std::string name;
  std::string sql;
};

const std::vector<Migration>& migrations();
// Applies every migration newer than the database's; refuses a database from a newer build.
Status migrate(sqlite::Db& db, int64_t now_ms);

}  // namespace hwl::storage
