// Jobs on hosts that run the hwLedger agent: its HTTPS API over the shared AgentTransport.
#pragma once

#include <chrono>

#include "agent_transport.hpp"
#include "driver.hpp"

namespace hwl::dispatch {

class AgentDriver final : public Driver {
 public:
  explicit AgentDriver(AgentTransport& transport,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000))
      : transport_(transport), timeout_(timeout) {}
  [[nodiscard]] proto::HostKind kind() const override { return proto::HostKind::kAgent; }
  LaunchResult launch(const HostTarget& host, const LaunchSpec& job) override;
  Result<boost::json::object> status(const HostTarget& host, const proto::JobId& job) override;
  Result<LogResult> logs(const HostTarget& host, const proto::JobId& job, LogRequest req,
                         const LogSink& sink, const Cancelled& cancelled) override;
  Result<CancelResult> cancel(const HostTarget& host, const proto::JobId& job) override;

 private:
  AgentTransport& transport_;
  std::chrono::milliseconds timeout_;
};

// The message of an agent's error body, else the start of the body.
std::string agentMessage(const std::string& body);

}  // namespace hwl::dispatch
