// The "providers" section of the server's configuration: which cloud providers to rent from
// (each with its base URL, API key and CA file), how often to reconcile, the budget caps.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rentals/provider.hpp"
#include "rentals/provider_http.hpp"

namespace hwl::rentals {

// The production API of each provider (what base_url defaults to).
inline constexpr std::string_view kVastBaseUrl = "https://console.vast.ai/api/v0";
inline constexpr std::string_view kRunpodBaseUrl = "https://api.runpod.io/graphql";
inline constexpr std::string_view kLambdaBaseUrl = "https://cloud.lambda.ai/api/v1";
[[nodiscard]] std::string_view defaultBaseUrl(std::string_view provider);
// HWLEDGER_VAST_API_KEY, HWLEDGER_RUNPOD_API_KEY, HWLEDGER_LAMBDA_API_KEY.
[[nodiscard]] std::string apiKeyVariable(std::string_view provider);

struct ProviderConfig {
  std::string base_url;  // empty: the default
  std::string api_key;   // empty: from the environment variable
  std::string ca_file;
  std::string image;  // container image for providers that run containers (Vast.ai, RunPod)
  int64_t timeout_ms = 20'000;       // per call
  int64_t max_attempts = 5;          // 429, 5xx and no answer are retried
  int64_t backoff_initial_ms = 500;  // doubled per attempt, with full jitter
  // How instances are reached where the provider does not say (Lambda): the user of its images
  // and the port of their sshd. Empty / 0: the provider's default.
  std::string ssh_user;
  int64_t ssh_port = 0;
};

struct RentalsConfig {
  std::map<std::string, ProviderConfig> providers;  // by provider name
  int64_t reconcile_interval_s = 300;
  std::optional<double> max_hourly_usd;  // all running rentals together
  std::optional<double> max_total_usd;   // accrued since the ledger began
  bool terminate_on_budget = false;      // terminate every rental when a cap is reached
  bool terminate_orphans = false;        // terminate instances with our label the ledger lost
  int64_t provision_timeout_s = 900;     // launched but not running by then: terminated
  int64_t offers_ttl_s = 60;
  int64_t terminate_confirm_timeout_s = 300;  // then rental.orphan_found
  // What a running rental with an SSH address becomes: "agentless" (an SSH host, the default),
  // "agent" (hwledger-agent installed over SSH, with agent_install's options) or "none".
  std::string enroll = "agentless";
  boost::json::object agent_install;  // install_root, job_user, agent_listen, enable_unit
  int64_t poll_interval_ms = 5000;    // how often provisioning and terminating rentals are asked
};

// Parses the "providers" object of the server config; `env` looks up the key variables.
Result<RentalsConfig> parseRentalsConfig(const boost::json::object& section,
                                         const std::function<const char*(const char*)>& env);
// The endpoint of one configured provider (its key from the config or the environment).
Result<Endpoint> endpointOf(const std::string& provider, const ProviderConfig& c,
                            const std::function<const char*(const char*)>& env);

// Builds the adapters of the configured providers; a bad base URL or a missing key is an error
// naming the provider (never the key).
Result<std::vector<std::shared_ptr<Provider>>> makeProviders(const RentalsConfig& config);

}  // namespace hwl::rentals
