// The `tokens` projection: API tokens by id, with role, secret hash, expiry and revocation.
#pragma once

#include <optional>
#include <string>

#include "projection.hpp"

namespace hwl::storage {

class TokensProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "tokens"; }
  [[nodiscard]] std::vector<std::string> tables() const override { return {"tokens"}; }
  Status apply(sqlite::Db& db, const Event& e) override;
};

Result<std::optional<TokenRow>> findToken(sqlite::Db& db, std::string_view id);
Result<std::vector<TokenRow>> listTokens(sqlite::Db& db);

}  // namespace hwl::storage
