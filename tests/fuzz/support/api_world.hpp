// One in-process hwledger-server API for the fuzz targets: a real ledger (SQLite on tmpfs) with
// the server's projections, a fleet CA, tokens for each role, and the fleet routes (no collector:
// every host is unreachable, so nothing is dispatched to an agent). Shared by every input of a
// run, as the server shares one ledger across requests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/api.hpp"
#include "fuzz_support.hpp"
#include "hwl/clock.hpp"
#include "pki/fleet_ca.hpp"
#include "storage/sqlite_ledger.hpp"

namespace hwl::fuzz {

class ApiWorld {
 public:
  static ApiWorld& get();

  http::Response call(std::string method, std::string target, std::string body,
                      const std::string& token);
  http::Response call(http::Request& req);
  // Events appended after `seq`.
  std::vector<ledger::Event> eventsAfter(int64_t seq);
  // A fresh single-use enrollment token ("enr_….SECRET").
  std::string mintEnrollToken();
  // A valid PEM CSR on a P-256 key (one per process).
  [[nodiscard]] const std::string& csrPem() const { return csr_pem_; }

  // Checks what every answer must satisfy: a known status, a JSON body when JSON is claimed, and
  // a refusal (4xx) appended nothing but the rate-limited refusal trail (auth.denied).
  void checkAnswer(const http::Response& r, int64_t head_before, std::string_view input);

  ManualClock clock{1'700'000'000'000};
  std::unique_ptr<storage::SqliteLedger> ledger;
  std::unique_ptr<server::FleetCa> ca;
  std::unique_ptr<dispatch::Scheduler> scheduler;
  std::unique_ptr<api::Api> api;
  std::string admin, operator_token, viewer;

 private:
  ApiWorld();
  ScratchDir dir_{"api"};
  std::string csr_pem_;
  uint32_t remote_counter_ = 0;
};

// SAN entries of a certificate: "URI:…", "DNS:…", "IP:…", "OTHER".
std::vector<std::string> subjectAltNames(const std::string& cert_pem);

// Replaces every `from` in `s` with `to`.
std::string replaceAll(std::string s, std::string_view from, std::string_view to);
// A JSON string literal's content for `s` (quotes not included).
std::string jsonEscape(std::string_view s);

}  // namespace hwl::fuzz
