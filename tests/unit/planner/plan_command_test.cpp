// `hwledger plan` behaviour and the JSON request/response of POST /v1/plan.
#include "hwl/planner/plan_command.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "hwl/planner/plan_json.hpp"
#include "hwl/test_fixtures.hpp"

namespace hwl::planner {
namespace {

namespace json = boost::json;

struct CommandRun {
  int code;
  std::string out, err;
};

CommandRun run(const PlanCliOptions& o) {
  std::ostringstream out, err;
  const int code = runPlanCommand(o, out, err);
  return {code, out.str(), err.str()};
}

PlanCliOptions base(const std::string& model = "Llama-3.1-8B") {
  PlanCliOptions o;
  o.model = hwl::test_fixtures::find("models", model + ".config.json").string();
  o.context = 8192;
  return o;
}

TEST(PlanCommand, JsonOutputHoldsTheBreakdown) {
  PlanCliOptions o = base("Qwen3-30B-A3B");
  o.json = true;
  o.batch = 2;
  o.kv = "fp8";
  o.gpu_mem = "80GiB";
  o.per_layer = true;
  const CommandRun r = run(o);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const json::object j = json::parse(r.out).as_object();
  EXPECT_EQ(j.at("model").as_string(), "Qwen3-30B-A3B");
  EXPECT_EQ(j.at("kv_bytes_per_token").to_number<std::uint64_t>(), 49152U);
  EXPECT_EQ(j.at("kv_bytes").to_number<std::uint64_t>(), 49152ULL * 8192 * 2);
  EXPECT_EQ(j.at("params_total").to_number<std::uint64_t>(), 30532122624ULL);
  EXPECT_EQ(j.at("params_active").to_number<std::uint64_t>(), 3353032704ULL);
  EXPECT_EQ(j.at("weights_bytes").to_number<std::uint64_t>(), 2 * 30532122624ULL);
  EXPECT_EQ(j.at("state_bytes").to_number<std::uint64_t>(), 0U);
  const std::uint64_t total = j.at("total_bytes").to_number<std::uint64_t>();
  EXPECT_EQ(total, j.at("weights_bytes").to_number<std::uint64_t>() +
                       j.at("kv_bytes").to_number<std::uint64_t>() +
                       j.at("activations_bytes").to_number<std::uint64_t>() +
                       j.at("overhead_bytes").to_number<std::uint64_t>());
  EXPECT_EQ(j.at("gpu_mem_bytes").to_number<std::uint64_t>(), 80ULL << 30);
  EXPECT_TRUE(j.at("fits").as_bool());
  EXPECT_GT(j.at("max_context").to_number<std::uint64_t>(), 0U);
  EXPECT_GE(j.at("max_batch").to_number<std::uint64_t>(), 2U);
  ASSERT_EQ(j.at("layers").as_array().size(), 48U);
  EXPECT_EQ(j.at("layers").as_array()[0].at("kv_bytes_per_token").to_number<std::uint64_t>(),
            1024U);
}

TEST(PlanCommand, TableAndDoesNotFit) {
  HWL_NEEDS_SHARED_DATA();
  PlanCliOptions o = base("Llama-3.1-70B");
  o.gpu_mem = "24GB";
  const CommandRun r = run(o);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("does NOT fit"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kv per token 327680 B"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max context  0 tokens"), std::string::npos) << r.out;
}

TEST(PlanCommand, BadInputsGetClearMessages) {
  auto err = [](PlanCliOptions o) {
    const CommandRun r = run(o);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.out, "");
    return r.err;
  };
  PlanCliOptions o = base();
  o.context.reset();
  EXPECT_EQ(err(o), "hwledger plan: --context is required\n");
  o = base();
  o.gpu_mem = "80 gigs";
  EXPECT_EQ(
      err(o),
      "hwledger plan: --gpu-mem: invalid size '80 gigs': unknown unit 'gigs' (use B, KB, MB, GB, "
      "TB, KiB, MiB, GiB, TiB)\n");
  o = base();
  o.kv = "fp4";
  EXPECT_EQ(err(o).substr(0, 55), "hwledger plan: --kv: unknown KV cache format 'fp4' (use");
  o = base();
  o.tp = 0;
  EXPECT_EQ(err(o), "hwledger plan: --tp must be between 1 and 1024\n");
  o = base();
  o.batch = 0;
  EXPECT_EQ(err(o), "hwledger plan: --batch must be between 1 and 16777216\n");
  o = base();
  o.model = "/nonexistent/model.gguf";
  EXPECT_EQ(err(o), "hwledger plan: model path /nonexistent/model.gguf does not exist\n");
  o = base();
  o.model = "";
  EXPECT_EQ(err(o),
            "hwledger plan: MODEL is required (config.json, GGUF, safetensors or a directory)\n");
}

json::value requestBody(const std::string& extra) {
  std::ifstream in(hwl::test_fixtures::find("models", "Mistral-7B-v0.1.config.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(R"({"model": )" + ss.str() + R"(, "context": 8192)" + extra + "}");
}

TEST(PlanJson, RequestMirrorsTheFlags) {
  HWL_NEEDS_SHARED_DATA();
  auto req =
      planRequestFromJson(requestBody(R"(, "batch": 2, "weights": "int4", "kv": "q8_0", "tp": 2,
      "gpu_mem": "24GiB", "per_layer": true, "state_dtype": "fp32")"));
  ASSERT_TRUE(req.has_value()) << req.error().message;
  EXPECT_EQ(req->context, 8192U);
  EXPECT_EQ(req->batch, 2U);
  EXPECT_EQ(req->tp, 2U);
  EXPECT_EQ(*req->gpu_mem_bytes, 24ULL << 30);
  EXPECT_TRUE(req->per_layer);
  auto plan = computePlan(*req);
  ASSERT_TRUE(plan.has_value());
  const json::object j = planToJson(*plan);
  // q8_0 at TP 2: 4 KV heads x 128 per rank = 16 blocks of 34 bytes, K and V, 32 layers.
  EXPECT_EQ(j.at("kv_bytes_per_token").to_number<std::uint64_t>(), 32U * 2 * 16 * 34);
  EXPECT_EQ(j.at("kv_bytes").to_number<std::uint64_t>(), 32ULL * 2 * 16 * 34 * 4096 * 2);
  EXPECT_EQ(j.at("layers").as_array().size(), 32U);
  EXPECT_EQ(j.at("layers").as_array()[3].at("sliding_window").to_number<std::uint64_t>(), 4096U);
  EXPECT_EQ(j.at("tp").to_number<std::uint32_t>(), 2U);
}

TEST(PlanJson, BadRequestsNameTheKey) {
  HWL_NEEDS_SHARED_DATA();
  auto msg = [](const json::value& v) {
    auto r = planRequestFromJson(v);
    return r ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(msg(requestBody(R"(, "contxt": 5)")), "unknown key 'contxt' in plan request");
  EXPECT_EQ(msg(requestBody(R"(, "batch": -1)")), "'batch' must be a non-negative integer");
  EXPECT_EQ(msg(requestBody(R"(, "gpu_mem": "80GiB", "gpu_mem_bytes": 5)")),
            "give either 'gpu_mem_bytes' or 'gpu_mem', not both");
  EXPECT_EQ(msg(requestBody(R"(, "gpu_mem": "lots")")),
            "'gpu_mem': invalid size 'lots': no number");
  EXPECT_EQ(msg(requestBody(R"(, "weights": "q9")")).substr(0, 39),
            "'weights': unknown weights format 'q9' ");
  EXPECT_EQ(msg(requestBody(R"(, "per_layer": 1)")), "'per_layer' must be a boolean");
  EXPECT_EQ(msg(json::parse(R"({"context": 5})")), "'model' is required");
  EXPECT_EQ(msg(json::parse(R"({"model": {"hidden_size": 1}, "context": 5})")),
            "model: config.json: missing required key 'num_hidden_layers'");
  EXPECT_EQ(msg(json::parse(R"({"model": []})")), "'model' must be a config.json object");
  EXPECT_EQ(msg(json::parse(R"([])")), "plan request must be a JSON object");
}

}  // namespace
}  // namespace hwl::planner
