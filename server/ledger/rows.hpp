// The ledger's read models as values: the rows of its projections (tokens, enrollment tokens,
// hosts and their certificates, GPUs, jobs) and the API roles. No storage here: a backend fills
// them (server/storage for SQLite).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/proto/types.hpp"

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
  std::string ssh;  // agentless hosts: how to reach them (agentless::SshTarget), canonical JSON
};

// A certificate the CA issued to a host, by its serial (hex).
struct HostCertRow {
  std::string host_id;
  std::string spki;  // SHA-256 of the public key, hex
};

struct GpuRow {
  std::string host_id;
  std::string uuid;
  int64_t index = 0;
  std::string name;
  std::optional<int64_t> memory_total_bytes;
  std::string driver_version;
  bool present = true;
};

struct JobRow {
  std::string id;
  std::string name;
  std::string host_id;
  std::string state;
  std::string gpus;  // JSON array of uuids
  std::string spec;  // canonical JSON
  std::string submitted_by;
  int64_t submitted_ms = 0;
  std::optional<int64_t> started_ms, ready_ms, ended_ms, exit_code, signal;
  std::string reason;
};

using proto::isTerminalJobState;

}  // namespace hwl::ledger
