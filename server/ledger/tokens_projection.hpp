// The `tokens` projection: API tokens by id, with role, secret hash, expiry and revocation.
#pragma once

#include <optional>
#include <string>

#include "projection.hpp"

namespace hwl::ledger {

enum class Role { kViewer = 1, kOperator = 2, kAdmin = 3 };
std::string_view roleName(Role r);
std::optional<Role> parseRole(std::string_view s);

struct TokenRow {
  std::string id;
  Role role = Role::kViewer;
  std::string secret_sha256;
  std::string note;
  int64_t created_ms = 0;
  std::string created_by;
  std::optional<int64_t> expires_ms;
  std::optional<int64_t> revoked_ms;
};

class TokensProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "tokens"; }
  [[nodiscard]] std::vector<std::string> tables() const override { return {"tokens"}; }
  Status apply(sqlite::Db& db, const Event& e) override;
};

Result<std::optional<TokenRow>> findToken(sqlite::Db& db, std::string_view id);
Result<std::vector<TokenRow>> listTokens(sqlite::Db& db);

}  // namespace hwl::ledger
