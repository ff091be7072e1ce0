// The shared in-process API of the fuzz targets.
#include "api_world.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/json.hpp>
#include <fstream>

#include "app/server_app.hpp"
#include "hwl/crypto.hpp"
#include "hwl/pki.hpp"

namespace hwl::fuzz {

namespace bj = boost::json;

namespace {

void writeText(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
  HWL_FUZZ_CHECK(out.good(), p.string());
}

}  // namespace

ApiWorld& ApiWorld::get() {
  static ApiWorld* world = new ApiWorld();  // never destroyed: inputs may run until _exit
  return *world;
}

ApiWorld::ApiWorld() {
  storage::LedgerOptions o;
  o.db_path = dir_.path() / "ledger.db";
  o.create = true;
  o.clock = &clock;
  server::addProjections(o);  // the server's own projections
  auto l = storage::SqliteLedger::open(std::move(o));
  HWL_FUZZ_CHECK(l.has_value(), l ? "" : l.error().message);
  ledger = std::move(*l);

  auto ca_key = pki::generateP256();
  pki::CertSpec spec;
  spec.common_name = "fuzz fleet CA";
  spec.lifetime_s = 10LL * 365 * 24 * 3600;
  auto ca_cert = pki::makeCa(ca_key.get(), spec);
  HWL_FUZZ_CHECK(ca_cert.has_value(), "makeCa");
  writeText(dir_.path() / "ca.pem", pki::certPem(ca_cert->get()));
  writeText(dir_.path() / "ca.key", crypto::privateKeyPem(ca_key.get()));
  auto fca = server::FleetCa::load(dir_.path() / "ca.pem", dir_.path() / "ca.key");
  HWL_FUZZ_CHECK(fca.has_value(), fca ? "" : fca.error().message);
  ca = std::move(*fca);

  auto mint = [&](ledger::Role role) {
    auto t = api::createToken(*ledger, clock, role, std::nullopt, "fuzz", "system");
    HWL_FUZZ_CHECK(t.has_value(), "createToken");
    return t->token;
  };
  admin = mint(ledger::Role::kAdmin);
  operator_token = mint(ledger::Role::kOperator);
  viewer = mint(ledger::Role::kViewer);

  api = std::make_unique<api::Api>(*ledger, clock, api::ApiSettings{.version = "fuzz"}, ca.get());
  // Enrollment answers carry the SPKI of the server's agent-facing identity: any certificate
  // will do for that here.
  api::FleetServices fleet;
  fleet.cert_file = (dir_.path() / "ca.pem").string();
  scheduler = std::make_unique<dispatch::Scheduler>(*ledger, dispatch::LiveView{}, clock);
  fleet.scheduler = scheduler.get();
  api->setFleet(std::move(fleet));

  auto key = pki::generateP256();
  auto csr = pki::makeCsr(key.get(), "fuzz-agent");
  HWL_FUZZ_CHECK(csr.has_value(), "makeCsr");
  csr_pem_ = pki::csrPem(csr->get());
}

http::Response ApiWorld::call(http::Request& req) {
  if (req.remote_addr.empty()) {
    // Many sources, so a per-source limit on refusals does not hide the handlers behind it.
    ++remote_counter_;
    req.remote_addr = "10." + std::to_string((remote_counter_ >> 16) & 0xff) + "." +
                      std::to_string((remote_counter_ >> 8) & 0xff) + "." +
                      std::to_string(remote_counter_ & 0xff);
  }
  return api->handle(req);
}

http::Response ApiWorld::call(std::string method, std::string target, std::string body,
                              const std::string& token) {
  http::Request r;
  r.method = std::move(method);
  r.path = target.substr(0, target.find('?'));
  r.target = std::move(target);
  r.body = std::move(body);
  if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
  return call(r);
}

std::vector<ledger::Event> ApiWorld::eventsAfter(int64_t seq) {
  auto evs = ledger->read({seq, 1000, "", ""});
  HWL_FUZZ_CHECK(evs.has_value(), evs ? "" : evs.error().message);
  return std::move(*evs);
}

std::string ApiWorld::mintEnrollToken() {
  auto r = call("POST", "/v1/enroll-tokens", "{}", operator_token);
  HWL_FUZZ_CHECK(r.status == 201, r.body);
  return std::string(bj::parse(r.body).at("token").as_string());
}

void ApiWorld::checkAnswer(const http::Response& r, int64_t head_before, std::string_view input) {
  static const std::vector<unsigned> kKnown = {200, 201, 202, 400, 401, 403, 404,
                                               405, 409, 412, 413, 429, 503};
  std::string what = "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 500) +
                     "\n  input: " + std::string(input.substr(0, 500));
  HWL_FUZZ_CHECK(std::find(kKnown.begin(), kKnown.end(), r.status) != kKnown.end(), what);
  if (r.content_type == "application/json" && !r.stream) {
    boost::system::error_code ec;
    auto v = bj::parse(r.body, ec);
    HWL_FUZZ_CHECK(!ec && v.is_object(), what);
    if (r.status >= 400) {
      HWL_FUZZ_CHECK(v.as_object().contains("error"), what);
    }
  }
  if (r.status >= 400) {
    for (const auto& e : eventsAfter(head_before))
      HWL_FUZZ_CHECK(e.type == "auth.denied", what + "\n  appended " + e.type + " " + e.data);
  }
}

std::vector<std::string> subjectAltNames(const std::string& cert_pem) {
  std::vector<std::string> out;
  auto cert = pki::certFromPem(cert_pem);
  HWL_FUZZ_CHECK(cert.has_value(), "issued certificate does not parse");
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    auto str = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    };
    switch (n->type) {
      case GEN_URI:
        out.push_back("URI:" + str(n->d.uniformResourceIdentifier));
        break;
      case GEN_DNS:
        out.push_back("DNS:" + str(n->d.dNSName));
        break;
      case GEN_IPADD:
        out.push_back("IP:" + crypto::hex(str(n->d.iPAddress)));
        break;
      default:
        out.push_back("OTHER");
        break;
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

std::string jsonEscape(std::string_view s) {
  std::string lit = bj::serialize(bj::string(s));
  return lit.substr(1, lit.size() - 2);
}

}  // namespace hwl::fuzz
