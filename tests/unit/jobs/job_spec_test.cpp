// Tests of parseJobSpec: every bad spec names its field; good specs get their defaults.
#include "hwl/jobs/job_spec.hpp"

#include <gtest/gtest.h>

#include <cctype>

namespace hwl::jobs {
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

}  // namespace
}  // namespace hwl::jobs
