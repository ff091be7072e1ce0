// Projections for enrollment: single-use enrollment tokens, hosts, and the certificates issued
// to each host (for per-request checks and revocation).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hwl/proto/types.hpp"
#include "projection.hpp"

namespace hwl::ledger {

struct EnrollTokenRow {
  std::string id;
  std::string secret_sha256;
  std::string host_hint;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::optional<int64_t> used_ms;
  std::optional<int64_t> revoked_ms;
};

struct HostRow {
  std::string id;
  std::string name;
  proto::HostKind kind = proto::HostKind::kUnknown;
  std::string address;  // HOST:PORT of the agent API
  proto::HostState state = proto::HostState::kUnknown;
  int64_t enrolled_ms = 0;
  int64_t state_changed_ms = 0;
  std::string cert_serial;
  std::string cert_spki;
  int64_t cert_not_after_ms = 0;
  std::string platform;  // canonical JSON
  std::optional<int64_t> revoked_ms;
};

class EnrollTokensProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "enroll_tokens"; }
  [[nodiscard]] std::vector<std::string> tables() const override { return {"enroll_tokens"}; }
  Status apply(sqlite::Db& db, const Event& e) override;
};

class HostsProjection final : public Projection {
 public:
  [[nodiscard]] std::string name() const override { return "hosts"; }
  [[nodiscard]] std::vector<std::string> tables() const override {
    return {"hosts", "host_certs"};
  }
  Status apply(sqlite::Db& db, const Event& e) override;
};

Result<std::optional<EnrollTokenRow>> findEnrollToken(sqlite::Db& db, std::string_view id);
Result<std::vector<EnrollTokenRow>> listEnrollTokens(sqlite::Db& db);
// A certificate the CA issued to a host, by its serial (hex).
struct HostCertRow {
  std::string host_id;
  std::string spki;  // SHA-256 of the public key, hex
};
Result<std::optional<HostCertRow>> findHostCert(sqlite::Db& db, std::string_view serial_hex);
// Revoked hosts: their ids and the serials of every certificate issued to them.
Result<std::pair<std::set<std::string>, std::set<std::string>>> revokedHosts(sqlite::Db& db);
Result<std::optional<HostRow>> findHost(sqlite::Db& db, std::string_view id);
// All hosts, or a page in id order after `after` when limit > 0.
Result<std::vector<HostRow>> listHosts(sqlite::Db& db, std::string_view after = {},
                                       int64_t limit = 0);

}  // namespace hwl::ledger
