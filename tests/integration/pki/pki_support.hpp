// Shared pieces of the PKI integration tests: the real hwledger-agent (enroll and run), curl as a
// mutual-TLS client, certificates made with the openssl command line (foreign CAs, self-signed,
// back- and forward-dated ones from the fleet CA), and ledger bookkeeping around refusals.
#pragma once

#include <gtest/gtest.h>

#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "server_fixture.hpp"

namespace hwl::itest::pki {

namespace fs = std::filesystem;

std::string agentBin();
// The recorded `nvidia-smi --query-gpu` output the agent's replay probe reads.
std::string replayProbe();

// What a TLS client presents and trusts. Empty fields are left out of the command line.
struct Creds {
  fs::path cacert;
  fs::path cert;
  fs::path key;
  bool p12 = false;  // cert is a PKCS#12 file with an empty password
};

// curl METHOD URL with the given credentials; `extra` goes before the URL.
Http curlTls(const std::string& method, const std::string& url, const Creds& creds,
             const std::optional<std::string>& body = {},
             const std::vector<std::string>& extra = {});

// Passes when curl got no HTTP response because the TLS handshake was refused by the peer
// (curl exit 35 or 56 with a TLS alert), and the alert text contains `alert` (e.g. "unknown ca").
::testing::AssertionResult refusedByTls(const Http& h, const std::string& alert = "");

// A new enrollment token from POST /v1/enroll-tokens.
struct EnrollToken {
  std::string id;
  std::string token;  // ID.SECRET
  std::string ca_pin;
  int64_t expires_ms = 0;
  [[nodiscard]] std::string secret() const { return token.substr(token.find('.') + 1); }
};
EnrollToken createEnrollToken(const LedgerServer& srv, std::optional<int64_t> ttl_s = {},
                              const std::string& host_hint = "");

// Events with seq > `after`, and just their types (without the collector's reachability events).
std::vector<boost::json::object> eventsAfter(const LedgerServer& srv, int64_t after);
std::vector<std::string> typesAfter(const LedgerServer& srv, int64_t after);

// The real agent: a state directory under `root`, enrolled with `enroll`, served with `start`.
class Agent {
 public:
  Agent(const fs::path& root, const std::string& name);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // hwledger-agent enroll --server URL --token T --ca-pin P --state-dir S EXTRA...
  RunResult enroll(const std::string& server_url, const std::string& token,
                   const std::string& ca_pin, const std::vector<std::string>& extra = {}) const;
  // Enrolls with a fresh token and throws unless it works.
  void enrollWith(const LedgerServer& srv, const std::vector<std::string>& extra = {});
  // hwledger-agent run --state-dir S --listen 127.0.0.1:0 --probe replay:...; waits for the
  // address it prints.
  void start(const std::vector<std::string>& extra = {});
  void stop();

  [[nodiscard]] const fs::path& stateDir() const { return dir_; }
  [[nodiscard]] fs::path identity() const { return dir_ / "identity.pem"; }
  [[nodiscard]] fs::path caCert() const { return dir_ / "ca.crt"; }
  [[nodiscard]] std::string hostId() const;  // from enrollment.json
  [[nodiscard]] const std::string& address() const { return addr_; }
  [[nodiscard]] std::string url() const { return "https://" + addr_; }
  [[nodiscard]] Creds asSelf() const { return {caCert(), identity(), identity()}; }
  [[nodiscard]] std::string out() const { return proc_ ? proc_->out() : ""; }
  [[nodiscard]] std::string err() const { return proc_ ? proc_->err() : ""; }
  [[nodiscard]] bool running() { return proc_ && proc_->running(); }
  // How the agent process ended ("still running" while it runs).
  [[nodiscard]] std::string exitDescription() {
    return proc_ && !proc_->running() ? proc_->kill().describe() : "still running";
  }

 private:
  fs::path root_;
  fs::path dir_;
  std::string name_;
  std::string addr_;
  std::unique_ptr<Process> proc_;
};

// The server's own client identity (D/server.crt, D/server.key), trusting D/ca.crt.
Creds serverIdentity(const LedgerServer& srv);

// Runs an openssl subcommand; throws with its stderr when it fails.
std::string openssl(const std::vector<std::string>& args, const std::string& input = "");

// A fresh P-256 key (dir/NAME.key) and a CSR for it (dir/NAME.csr) with subject CN=NAME, plus
// `addext` entries (openssl req -addext). Returns the CSR path.
fs::path makeKeyAndCsr(const fs::path& dir, const std::string& name,
                       const std::vector<std::string>& addext = {});

// A self-signed CA made with openssl req -x509 (dir/NAME.crt, dir/NAME.key).
struct CaFiles {
  fs::path cert;
  fs::path key;
};
CaFiles makeOpensslCa(const fs::path& dir, const std::string& name);
// A self-signed leaf with SAN `san` (dir/NAME.crt, dir/NAME.key).
CaFiles makeSelfSigned(const fs::path& dir, const std::string& name, const std::string& san);

// `openssl ca` over an existing CA certificate and key: certificates with any validity window
// (openssl x509 -days cannot reach into the past; `openssl ca -startdate/-enddate` can).
class OpensslCa {
 public:
  OpensslCa(const fs::path& dir, CaFiles ca);
  // A leaf for a new key: dir/NAME.crt and dir/NAME.key, SAN `san` (e.g. URI:hwledger://server),
  // EKU client+server, valid from `start` to `end` (YYYYMMDDHHMMSSZ).
  CaFiles issue(const std::string& name, const std::string& san, const std::string& start,
                const std::string& end);
  // The same for an existing key (PEM file): e.g. the server's own key, which agents pin.
  CaFiles issueFor(const std::string& name, const fs::path& key, const std::string& san,
                   const std::string& start, const std::string& end);

 private:
  fs::path dir_;
  CaFiles ca_;
};

// YYYYMMDDHHMMSSZ for now + offset.
std::string asn1Time(std::chrono::seconds offset);

// Lower-case hex without leading zeros: the form serials are compared in.
std::string normaliseSerial(std::string hex);
// The serial of a PEM certificate (file or text), normalised.
std::string serialOf(const fs::path& cert_pem);
std::string serialOfPem(const std::string& cert_pem);
// The leaf certificate a TLS server presents (openssl s_client -showcerts), as PEM.
std::string servedCertificate(const std::string& address, const Creds& creds);

}  // namespace hwl::itest::pki
