// Joining the fleet: the pinned-CA enrollment (key made here, only a CSR leaves the host), the
// identity kept in the state dir, and renewal at about two thirds of the certificate's life.
#pragma once

#include <atomic>
#include <boost/json/object.hpp>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "hwl/clock.hpp"
#include "hwl/result.hpp"

namespace hwl::agent {

struct EnrollOptions {
  std::string server;  // https://HOST:PORT
  std::string token;   // ID.SECRET
  std::string ca_pin;  // sha256:<hex>
  std::filesystem::path state_dir;
  std::string name;
  std::string advertise;  // HOST:PORT where the server reaches this agent
  boost::json::object platform;
};

// Files of an enrolled agent in its state dir.
struct Identity {
  std::string host_id;
  std::string server;
  std::string name;
  std::string advertise;
  std::filesystem::path identity_pem;  // certificate chain + private key (0600)
  std::filesystem::path ca_pem;
  // SHA-256 (hex) of the SubjectPublicKeyInfo of the server's agent-facing identity, learned at
  // enrollment over the CA-pinned channel: the only client the agent API accepts. Empty for an
  // identity stored before pins existed (the next renewal learns it).
  std::string server_spki;
  int64_t not_before_ms = 0;
  int64_t not_after_ms = 0;
};

Result<Identity> enroll(const EnrollOptions& opts);

// The address the server most likely reaches this host at, as "IP:PORT" ("[IPv6]:PORT"): the
// local address of the route towards the server named in `server_url` (a UDP socket is connected
// to it and asked its local name; no packet is sent). Refuses a server URL without a host and a
// route whose local address is unspecified.
Result<std::string> detectAdvertise(const std::string& server_url, std::uint16_t port);
// The identity in `state_dir`, or nullopt when the agent was never enrolled.
Result<std::optional<Identity>> loadIdentity(const std::filesystem::path& state_dir);
// Renews once now: new key, CSR, POST /v1/pki/renew over mutual TLS to a server that presents the
// pinned identity; stores the result atomically.
Result<Identity> renewOnce(const Identity& current);

// Renews in the background: at about 2/3 of the lifetime (with jitter), retrying on failure.
class Renewer {
 public:
  Renewer(Identity id, std::function<void(const Identity&)> on_renewed);
  ~Renewer();
  void start();
  void stop();
  [[nodiscard]] int64_t renewals() const { return renewals_; }

 private:
  void run();
  Identity id_;
  std::function<void(const Identity&)> on_renewed_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<int64_t> renewals_{0};
  std::thread thread_;
};

// OS, kernel, CPU, memory and hostname, as sent at enrollment and shown in /v1/info.
boost::json::object platformFacts();

// True for 64 lower-case hex digits (a SHA-256 in hex).
bool isSha256Hex(std::string_view s);

}  // namespace hwl::agent
