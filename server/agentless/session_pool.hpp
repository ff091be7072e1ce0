// Persistent SSH sessions to agentless hosts, reused across polls and job calls: a host's idle
// sessions are kept (at most kMaxIdlePerHost) and handed to one caller at a time; a session that
// failed at the transport level, or is found dead, is dropped and a new one connected. Calls are
// synchronous and run on the caller's thread (the SSH source's and the driver's worker threads,
// never an Asio I/O thread).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agentless/key_store.hpp"
#include "agentless/ssh_target.hpp"
#include "hwl/result.hpp"
#include "ssh/ssh_session.hpp"

namespace hwl::agentless {

struct PoolSettings {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds command_timeout{60'000};
  std::chrono::seconds keepalive_interval{30};
};

class SessionPool {
 public:
  SessionPool(KeyStore keys, PoolSettings settings) : keys_(std::move(keys)), settings_(settings) {}

  using Use = std::function<Status(ssh::SshSession&)>;
  // Runs `use` on a session to the host. A connection error (host key refused, authentication,
  // unreachable) is returned as SshSession::connect gave it, reasons included.
  Status with(const std::string& host_id, const SshTarget& target, const Use& use);
  // Closes the host's idle sessions (revoked, or its address changed).
  void drop(const std::string& host_id);
  void clear();

  [[nodiscard]] const KeyStore& keys() const { return keys_; }
  [[nodiscard]] const PoolSettings& settings() const { return settings_; }

  static constexpr size_t kMaxIdlePerHost = 2;

 private:
  Result<std::unique_ptr<ssh::SshSession>> take(const std::string& host_id, const SshTarget& target,
                                                uint64_t& generation);
  KeyStore keys_;
  PoolSettings settings_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<ssh::SshSession>>> idle_;
  // Bumped by drop(): a session taken before a host was dropped is closed, not kept.
  std::map<std::string, uint64_t> generation_;
};

// Whether an error means the session itself is unusable (rather than the command failing).
[[nodiscard]] bool breaksSession(const Error& e);

}  // namespace hwl::agentless
