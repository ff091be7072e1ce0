// Tests of parseJobSpec: every bad spec names its field; good specs get their defaults.
#include "hwl/proto/job_spec.hpp"

#include <gtest/gtest.h>

#include <cctype>

namespace hwl::proto {
namespace {

const std::vector<std::string> kGpus = {"GPU-aaaa", "GPU-bbbb"};

Result<JobSpec> parse(std::string_view json) {
  return parseJobSpec(boost::json::parse(json), kGpus, "/srv/jobs");
}

TEST(JobSpecTest, ValidSpecWithDefaults) {
  auto spec = parse(R"({"id":"llama-1","command":["vllm","serve"],"gpus":["GPU-bbbb"]})");
  ASSERT_TRUE(spec) << spec.error().toString();
  EXPECT_EQ(spec->command, (std::vector<std::string>{"vllm", "serve"}));
  EXPECT_EQ(spec->working_dir, "/srv/jobs/llama-1");
  EXPECT_TRUE(spec->create_working_dir);
  EXPECT_EQ(spec->grace_ms, 10'000);
  EXPECT_EQ(spec->max_runtime_ms, 0);
  EXPECT_FALSE(spec->ready_url.has_value());
}

TEST(JobSpecTest, FullSpec) {
  auto spec = parse(R"({"id":"a","command":["x"],"env":{"HF_HOME":"/cache"},"gpus":[],
    "working_dir":"models/a","ready_url":"http://127.0.0.1:8000/health",
    "ready_timeout_s":120,"max_runtime_s":3600,"grace_s":0.5})");
  ASSERT_TRUE(spec) << spec.error().toString();
  EXPECT_EQ(spec->working_dir, "/srv/jobs/models/a");
  EXPECT_EQ(spec->env.at("HF_HOME"), "/cache");
  ASSERT_TRUE(spec->ready_url);
  EXPECT_EQ(spec->ready_url->port, 8000);
  EXPECT_EQ(spec->ready_url->target, "/health");
  EXPECT_EQ(spec->ready_timeout_ms, 120'000);
  EXPECT_EQ(spec->grace_ms, 500);
  // Same JSON, same spec: the idempotency key.
  EXPECT_TRUE(*spec == *parse(R"({"id":"a","command":["x"],"env":{"HF_HOME":"/cache"},
    "working_dir":"models/a","ready_url":"http://127.0.0.1:8000/health",
    "ready_timeout_s":120,"max_runtime_s":3600,"grace_s":0.5})"));
}

struct BadCase {
  const char* json;
  const char* field;
};

class BadJobSpecTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadJobSpecTest, RejectedWithFieldNamed) {
  auto spec = parse(GetParam().json);
  ASSERT_FALSE(spec) << GetParam().json;
  EXPECT_EQ(spec.error().code, Code::kInvalidArgument);
  EXPECT_EQ(spec.error().message.rfind(GetParam().field, 0), 0u)
      << "message \"" << spec.error().message << "\" should start with " << GetParam().field;
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadJobSpecTest,
    ::testing::Values(
        BadCase{R"([1,2])", "job spec"}, BadCase{R"({"command":["x"]})", "id"},
        BadCase{R"({"id":"../etc","command":["x"]})", "id"},
        BadCase{R"({"id":".hidden","command":["x"]})", "id"}, BadCase{R"({"id":"a"})", "command"},
        BadCase{R"({"id":"a","command":[]})", "command"},
        BadCase{R"({"id":"a","command":"ls -l"})", "command"},
        BadCase{R"({"id":"a","command":["ls",7]})", "command[1]"},
        BadCase{R"({"id":"a","command":[""]})", "command[0]"},
        BadCase{R"({"id":"a","command":["x"],"gpus":["GPU-zzzz"]})", "gpus[0]"},
        BadCase{R"({"id":"a","command":["x"],"gpus":["GPU-aaaa","GPU-aaaa"]})", "gpus[1]"},
        BadCase{R"({"id":"a","command":["x"],"gpus":"GPU-aaaa"})", "gpus"},
        BadCase{R"({"id":"a","command":["x"],"working_dir":"../../etc"})", "working_dir"},
        BadCase{R"({"id":"a","command":["x"],"working_dir":"a/../../b"})", "working_dir"},
        BadCase{R"({"id":"a","command":["x"],"working_dir":3})", "working_dir"},
        BadCase{R"({"id":"a","command":["x"],"env":{"A":1}})", "env.A"},
        BadCase{R"({"id":"a","command":["x"],"env":{"A=B":"c"}})", "env.A=B"},
        BadCase{R"({"id":"a","command":["x"],"env":["A"]})", "env"},
        BadCase{R"({"id":"a","command":["x"],"user":"root"})", "user"},
        BadCase{R"({"id":"a","command":["x"],"grace_s":-1})", "grace_s"},
        BadCase{R"({"id":"a","command":["x"],"grace_s":"10"})", "grace_s"},
        BadCase{R"({"id":"a","command":["x"],"max_runtime_s":1e12})", "max_runtime_s"},
        BadCase{R"({"id":"a","command":["x"],"ready_timeout_s":null})", "ready_timeout_s"},
        BadCase{R"({"id":"a","command":["x"],"ready_url":"https://127.0.0.1:1/"})", "ready_url"},
        BadCase{R"({"id":"a","command":["x"],"ready_url":"http://10.0.0.5:80/"})", "ready_url"},
        BadCase{R"({"id":"a","command":["x"],"ready_url":"http://127.0.0.1/"})", "ready_url"},
        BadCase{R"({"id":"a","command":["x"],"ready_url":"http://127.0.0.1:99999/"})",
                "ready_url"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      std::string name = std::to_string(info.index) + "_";
      for (const char* c = info.param.field; *c; ++c) {
        name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
      }
      return name;
    });

// Every stored field is bounded, and the message names the field.
TEST(JobSpecTest, OversizedFieldsAreRejectedNamingThem) {
  namespace bj = boost::json;
  auto base = [] { return bj::object{{"id", "a"}, {"command", bj::array{"x"}}}; };
  struct Case {
    std::string what;
    bj::object spec;
    std::string starts;
  };
  std::vector<Case> cases;
  {
    auto o = base();
    o["id"] = std::string(kMaxIdLength + 1, 'i');
    cases.push_back({"id", o, "id:"});
  }
  {
    auto o = base();
    o["command"] = bj::array(kMaxCommandArgs + 1, bj::string("x"));
    cases.push_back({"argument count", o, "command: more than 1024 arguments"});
  }
  {
    auto o = base();
    o["command"] = bj::array{"x", bj::string(std::string(kMaxArgBytes + 1, 'a'))};
    cases.push_back({"one argument", o, "command[1]: longer than 16384 bytes"});
  }
  {
    auto o = base();
    bj::array args;
    for (int i = 0; i < 5; ++i) args.emplace_back(std::string(kMaxArgBytes, 'a'));
    o["command"] = std::move(args);
    cases.push_back({"all arguments", o, "command: longer than 65536 bytes in all"});
  }
  {
    auto o = base();
    bj::object env;
    for (size_t i = 0; i <= kMaxEnvVars; ++i) env["V" + std::to_string(i)] = "x";
    o["env"] = std::move(env);
    cases.push_back({"variable count", o, "env: more than 256 variables"});
  }
  {
    auto o = base();
    o["env"] = bj::object{{std::string(kMaxEnvNameBytes + 1, 'N'), "x"}};
    cases.push_back({"variable name", o, "env: a variable name: longer than 128 bytes"});
  }
  {
    auto o = base();
    o["env"] = bj::object{{"V", std::string(kMaxEnvValueBytes + 1, 'v')}};
    cases.push_back({"variable value", o, "env.V: longer than 16384 bytes"});
  }
  {
    auto o = base();
    bj::object env;
    for (int i = 0; i < 5; ++i) env["V" + std::to_string(i)] = std::string(kMaxEnvValueBytes, 'v');
    o["env"] = std::move(env);
    cases.push_back({"all variables", o, "env: longer than 65536 bytes in all"});
  }
  {
    auto o = base();
    o["working_dir"] = "/" + std::string(kMaxWorkingDirBytes, 'w');
    cases.push_back({"working_dir", o, "working_dir: longer than 4096 bytes"});
  }
  {
    auto o = base();
    o["ready_url"] = "http://127.0.0.1:80/" + std::string(kMaxReadyUrlBytes, 'p');
    cases.push_back({"ready_url", o, "ready_url: longer than 2048 bytes"});
  }
  {
    auto o = base();
    bj::array gpus;
    for (size_t i = 0; i <= kMaxGpus; ++i) gpus.emplace_back("GPU-aaaa");
    o["gpus"] = std::move(gpus);
    cases.push_back({"gpu count", o, "gpus: more than 64 GPUs"});
  }
  {
    // Each field within its bound, the whole over it once escaped: control bytes are six
    // characters each in JSON.
    auto o = base();
    bj::array args{"x"};
    for (int i = 0; i < 3; ++i) args.emplace_back(std::string(kMaxArgBytes, '\x01'));
    o["command"] = std::move(args);
    bj::object env;
    for (int i = 0; i < 3; ++i)
      env["V" + std::to_string(i)] = std::string(kMaxEnvValueBytes, '\x01');
    o["env"] = std::move(env);
    cases.push_back({"the whole spec", o, "job spec:"});
  }
  for (const auto& c : cases) {
    auto spec = parseJobSpec(c.spec, kGpus, "/srv/jobs");
    ASSERT_FALSE(spec) << c.what;
    EXPECT_EQ(spec.error().code, Code::kInvalidArgument) << c.what;
    EXPECT_EQ(spec.error().message.rfind(c.starts, 0), 0u)
        << c.what << ": " << spec.error().message;
    EXPECT_LT(spec.error().message.size(), 200u) << c.what;
  }
  // At the bounds, accepted.
  auto o = base();
  o["command"] = bj::array{"x", bj::string(std::string(kMaxArgBytes, 'a'))};
  o["env"] = bj::object{{std::string(kMaxEnvNameBytes, 'N'), std::string(kMaxEnvValueBytes, 'v')}};
  auto ok = parseJobSpec(o, kGpus, "/srv/jobs");
  EXPECT_TRUE(ok) << ok.error().toString();
}

}  // namespace
}  // namespace hwl::proto
