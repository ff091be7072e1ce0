// The agent's job API (POST /v1/jobs, GET /v1/jobs/{id}, …/logs, DELETE) behind the Driver seam.
#include "agent_driver.hpp"

#include <boost/json.hpp>

#include "hwl/json.hpp"

namespace hwl::dispatch {

namespace bj = boost::json;

namespace {
AgentEndpoint endpoint(const HostTarget& h) { return {h.id.str(), h.address}; }
}  // namespace

std::string agentMessage(const std::string& body) {
  if (auto o = json::parseObject(body)) {
    if (const auto* e = o->if_contains("error"); e && e->is_object())
      if (const auto* m = e->as_object().if_contains("message"); m && m->is_string())
        return std::string(m->as_string()).substr(0, 300);
  }
  return body.substr(0, 300);
}

LaunchResult AgentDriver::launch(const HostTarget& host, const LaunchSpec& job) {
  // The agent treats a repeated id with the same spec as the same job (200), and answers 409 for
  // an id it already holds with another spec: both mean the agent has a job of that id, which
  // will report through its outbox.
  auto res = transport_.call(endpoint(host), {.method = "POST",
                                              .target = "/v1/jobs",
                                              .body = bj::serialize(job.spec),
                                              .timeout = timeout_});
  if (!res) return {LaunchResult::Outcome::kNoAnswer, res.error().message};
  if (res->status < 300 || res->status == 409) return {LaunchResult::Outcome::kAccepted, ""};
  std::string why =
      "the agent answered HTTP " + std::to_string(res->status) + ": " + agentMessage(res->body);
  // 5xx: the agent is there but cannot take it now (stopping, its outbox full): not a verdict.
  if (res->status >= 500) return {LaunchResult::Outcome::kNoAnswer, why};
  return {LaunchResult::Outcome::kRefused, why};
}

Result<bj::object> AgentDriver::status(const HostTarget& host, const proto::JobId& job) {
  auto res = transport_.call(
      endpoint(host),
      {.method = "GET", .target = agentTarget({"v1", "jobs", job.str()}), .timeout = timeout_});
  if (!res) return unavailable("the agent of " + host.id.str() + ": " + res.error().message);
  if (res->status == 404)
    return notFound("the agent of " + host.id.str() + " has no job " + job.str());
  if (res->status >= 300)
    return badGateway("agent_error", "the agent answered HTTP " + std::to_string(res->status) +
                                         ": " + agentMessage(res->body));
  return json::parseObject(res->body);
}

Result<LogResult> AgentDriver::logs(const HostTarget& host, const proto::JobId& job, LogRequest req,
                                    const LogSink& sink, const Cancelled& cancelled) {
  const std::string tail = std::to_string(req.tail);
  if (!req.follow) {
    auto r = transport_.call(
        endpoint(host), {.method = "GET",
                         .target = agentTarget({"v1", "jobs", job.str(), "logs"}, {{"tail", tail}}),
                         .timeout = timeout_});
    if (!r) return unavailable("the agent of " + host.id.str() + ": " + r.error().message);
    return LogResult{r->status, std::move(r->body)};
  }
  auto status = transport_.stream(
      endpoint(host),
      agentTarget({"v1", "jobs", job.str(), "logs"}, {{"tail", tail}, {"follow", "1"}}), sink,
      cancelled);
  if (!status) return status.error();
  return LogResult{*status, {}};
}

Result<CancelResult> AgentDriver::cancel(const HostTarget& host, const proto::JobId& job) {
  auto r = transport_.call(
      endpoint(host),
      {.method = "DELETE", .target = agentTarget({"v1", "jobs", job.str()}), .timeout = timeout_});
  if (!r) return unavailable("the agent of " + host.id.str() + ": " + r.error().message);
  if (r->status == 404) return CancelResult{CancelResult::Outcome::kUnknownJob};
  if (r->status >= 300)
    return badGateway("agent_error", "the agent answered HTTP " + std::to_string(r->status) + ": " +
                                         r->body.substr(0, 300));
  return CancelResult{CancelResult::Outcome::kCancelling};
}

}  // namespace hwl::dispatch
