// The agent's job spec parser (the body of the agent's POST /v1/jobs). Invariants for an accepted
// spec: the id is of the documented alphabet, argv and env carry no NUL and env names are
// variable names, GPUs are known and distinct, a working directory the agent creates lies inside
// the jobs root, the readiness URL is loopback, durations are within 30 days, and the spec's
// submission form parses back to the same spec.
#include "hwl/proto/job_spec.hpp"

#include <boost/json.hpp>

#include "fuzz_support.hpp"
#include "hwl/json.hpp"

using namespace hwl;

namespace {

const std::vector<std::string> kGpus = {"GPU-5f1bd2c4-0c53-8a2e-1d3b-1e0b5bfbb2a1",
                                        "GPU-9d3c1a77-4e1f-2b6a-8c0d-77aa01c3e9f2"};
const std::filesystem::path kRoot = "/var/lib/hwledger/jobs";

bool isVarName(const std::string& n) {
  if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

void checkSpec(const proto::JobSpec& s, const std::string& in) {
  HWL_FUZZ_CHECK(!s.id.empty() && s.id.size() <= 128 && s.id.front() != '.', in);
  for (char c : s.id)
    HWL_FUZZ_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-',
                   s.id);
  HWL_FUZZ_CHECK(!s.command.empty() && !s.command[0].empty(), in);
  for (const auto& a : s.command) HWL_FUZZ_CHECK(a.find('\0') == std::string::npos, in);
  for (const auto& [k, v] : s.env) {
    HWL_FUZZ_CHECK(isVarName(k), "env name " + k);
    HWL_FUZZ_CHECK(v.find('\0') == std::string::npos, in);
  }
  for (size_t i = 0; i < s.gpus.size(); ++i) {
    HWL_FUZZ_CHECK(std::find(kGpus.begin(), kGpus.end(), s.gpus[i]) != kGpus.end(), s.gpus[i]);
    for (size_t j = 0; j < i; ++j) HWL_FUZZ_CHECK(s.gpus[i] != s.gpus[j], s.gpus[i]);
  }
  HWL_FUZZ_CHECK(s.working_dir.is_absolute(), s.working_dir.string());
  if (s.create_working_dir) {
    auto rel = s.working_dir.lexically_relative(kRoot);
    HWL_FUZZ_CHECK(!rel.empty() && *rel.begin() != ".." && rel != ".",
                   "working_dir " + s.working_dir.string() + " outside the jobs root");
  }
  if (s.ready_url) {
    HWL_FUZZ_CHECK(s.ready_url->host == "127.0.0.1" || s.ready_url->host == "::1",
                   s.ready_url->host);
    HWL_FUZZ_CHECK(s.ready_url->port >= 1, s.ready_url->text);
    HWL_FUZZ_CHECK(!s.ready_url->target.empty() && s.ready_url->target.front() == '/' &&
                       s.ready_url->target.find_first_of(" \r\n") == std::string::npos,
                   s.ready_url->text);
  }
  constexpr int64_t kMaxMs = 30LL * 24 * 3600 * 1000;
  for (int64_t ms : {s.ready_timeout_ms, s.max_runtime_ms, s.grace_ms})
    HWL_FUZZ_CHECK(ms >= 0 && ms <= kMaxMs, std::to_string(ms));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = fuzz::text(data, size);
  auto v = json::parse(in);
  if (!v) return 0;
  auto spec = proto::parseJobSpec(*v, kGpus, kRoot);
  if (!spec) {
    HWL_FUZZ_CHECK(spec.error().code == Code::kInvalidArgument, spec.error().message);
    return 0;
  }
  std::string s(in.substr(0, 1000));
  checkSpec(*spec, s);
  auto again = proto::parseJobSpec(boost::json::value(spec->toJson()), kGpus, kRoot);
  HWL_FUZZ_CHECK(again.has_value(), again ? "" : again.error().message + "\n  input: " + s);
  HWL_FUZZ_CHECK(*again == *spec, boost::json::serialize(spec->toJson()) + " became " +
                                      boost::json::serialize(again->toJson()));
  return 0;
}
