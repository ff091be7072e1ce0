// The server's one way of calling agents: mutual TLS with the server's identity, the agent's
// certificate checked to name the host it should be, and a pool of persistent keep-alive
// connections per host shared by everything that calls agents (the collector's scrapes, job
// dispatch, status, cancel). Calls run as coroutines on the transport's I/O thread, so a slow
// agent occupies a connection, never a thread or a lock. Beast stays in agent_transport.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "hwl/result.hpp"

namespace hwl::dispatch {

// The server's client identity towards agents (SAN hwledger://server) and the fleet CA.
struct AgentIdentity {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct AgentEndpoint {
  std::string host_id;  // the agent must present hwledger://host/<host_id>
  std::string address;  // HOST:PORT
};

struct AgentCall {
  std::string method = "GET";  // GET, POST or DELETE
  std::string target;          // built from validated values (see agentTarget)
  std::string body;            // JSON, for POST
  std::chrono::milliseconds timeout{10'000};
};

struct AgentReply {
  unsigned status = 0;
  std::string body;
};

struct TransportStats {
  uint64_t connections_opened = 0;  // TLS handshakes done since start
  uint64_t calls = 0;               // calls answered since start
};

class AgentTransport {
 public:
  explicit AgentTransport(AgentIdentity identity, size_t idle_per_host = 4);
  ~AgentTransport();  // stop()
  AgentTransport(const AgentTransport&) = delete;
  AgentTransport& operator=(const AgentTransport&) = delete;

  Status start();
  // Closes every connection; calls in flight end with an error. Idempotent.
  void stop();

  // Blocks the calling thread (never the transport's own) until the agent answers or the call
  // times out. Idempotent calls only: a call on a pooled connection that the agent had closed is
  // made once more on a new one.
  Result<AgentReply> call(const AgentEndpoint& to, AgentCall c);
  // Streams a response body (a followed log) to `on_data` until it ends, on_data returns false,
  // or `cancelled` returns true; on a connection of its own, since it may last for hours.
  Result<unsigned> stream(const AgentEndpoint& to, const std::string& target,
                          const std::function<bool(std::string_view)>& on_data,
                          const std::function<bool()>& cancelled);
  // Drops the pooled connections of a host (revoked, or its address changed).
  void closeHost(const std::string& host_id);
  [[nodiscard]] size_t idleConnections(const std::string& host_id) const;
  [[nodiscard]] TransportStats stats() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// A request target from path segments and query parameters, each encoded by Boost.URL.
std::string agentTarget(
    std::initializer_list<std::string_view> segments,
    std::initializer_list<std::pair<std::string_view, std::string_view>> params = {});

}  // namespace hwl::dispatch
