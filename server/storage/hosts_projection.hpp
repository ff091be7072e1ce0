// Projections for enrollment: single-use enrollment tokens, hosts, and the certificates issued
// to each host (for per-request checks and revocation).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hwl/proto/types.hpp"
#include "projection.hpp"

namespace hwl::storage {

class EnrollTokensProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "enroll_tokens"; }
  [[nodiscard]] std::vector<std::string> tables() const override { return {"enroll_tokens"}; }
  Status apply(sqlite::Db& db, const Event& e) override;
};

class HostsProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "hosts"; }
  [[nodiscard]] std::vector<std::string> tables() const override { return {"hosts", "host_certs"}; }
  Status apply(sqlite::Db& db, const Event& e) override;
};

Result<std::optional<EnrollTokenRow>> findEnrollToken(sqlite::Db& db, std::string_view id);
Result<std::vector<EnrollTokenRow>> listEnrollTokens(sqlite::Db& db);
Result<std::optional<HostCertRow>> findHostCert(sqlite::Db& db, std::string_view serial_hex);
// Revoked hosts: their ids and the serials of every certificate issued to them.
Result<std::pair<std::set<std::string>, std::set<std::string>>> revokedHosts(sqlite::Db& db);
Result<std::optional<HostRow>> findHost(sqlite::Db& db, std::string_view id);
// All hosts, or a page in id order after `after` when limit > 0.
Result<std::vector<HostRow>> listHosts(sqlite::Db& db, std::string_view after = {},
                                       int64_t limit = 0);

}  // namespace hwl::storage
