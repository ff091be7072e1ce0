// Jobs: submission through the scheduler, listing, logs (followed or not) and cancel, each
// reaching the host through the driver of its kind.
#include <algorithm>
#include <boost/json.hpp>
#include <boost/json/parse.hpp>

#include "api.hpp"
#include "dispatch/scheduler.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/json_text.hpp"
#include "hwl/planner/plan.hpp"
#include "hwl/planner/plan_json.hpp"
#include "hwl/proto/events.hpp"
#include "hwl/proto/job_request.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ledger/rows.hpp"
#include "params.hpp"

namespace hwl::api {

namespace bj = boost::json;

namespace {

bj::object jobJson(const ledger::JobRow& j, const std::string& host_state) {
  boost::system::error_code ec;
  bj::object o{{"id", j.id},
               {"name", j.name},
               {"host", j.host_id},
               {"state", j.state},
               {"gpus", bj::parse(j.gpus, ec)},
               {"submitted_by", j.submitted_by},
               {"submitted_ms", j.submitted_ms},
               {"reason", j.reason}};
  auto opt = [&](const char* k, const std::optional<int64_t>& v) {
    o[k] = v ? bj::value(*v) : bj::value(nullptr);
  };
  opt("started_ms", j.started_ms);
  opt("ready_ms", j.ready_ms);
  opt("ended_ms", j.ended_ms);
  opt("exit_code", j.exit_code);
  opt("signal", j.signal);
  o["spec"] = bj::parse(j.spec, ec);
  // A job whose host does not answer is not silently "running": its last known state is kept
  // and the state says what is known now.
  if (!ledger::isTerminalJobState(j.state) && !j.host_id.empty() &&
      (host_state == "unreachable" || host_state == "revoked")) {
    o["last_known_state"] = j.state;
    o["state"] = "host_" + host_state;
  }
  o["host_state"] = host_state;
  return o;
}

// The planner's per-GPU prediction for a job's "model" ({"config", "context", "batch", "kv",
// "tp"}): tp defaults to the job's GPUs. A bad model is refused before anything is recorded.
Result<bj::object> predictJob(const bj::object& model, int64_t gpus) {
  bj::object req;
  for (const auto& [k, v] : model) {
    if (k == "config") {
      if (v.is_string()) {
        auto parsed = planner::parseJsonLenient(v.as_string(), "model.config");
        if (!parsed) return Error{parsed.error().code, "model: " + parsed.error().message};
        req["model"] = std::move(*parsed);
      } else {
        req["model"] = v;
      }
    } else if (k == "context" || k == "batch" || k == "kv" || k == "tp" || k == "weights") {
      req[k] = v;
    } else {
      return invalidArgument("model: unknown key '" + std::string(k) + "'");
    }
  }
  if (!req.contains("model")) return invalidArgument("model: 'config' is required");
  if (!req.contains("tp")) req["tp"] = std::max<int64_t>(gpus, 1);
  auto pr = planner::planRequestFromJson(req);
  if (!pr) return Error{pr.error().code, "model: " + pr.error().message};
  auto plan = planner::computePlan(*pr);
  if (!plan) return Error{plan.error().code, "model: " + plan.error().message};
  return bj::object{{"model", plan->model_name},
                    {"architecture", plan->architecture},
                    {"context", plan->context},
                    {"batch", plan->batch},
                    {"tp", plan->tp},
                    {"kv_format", plan->kv_format},
                    {"weights_format", plan->weights_format},
                    {"per_gpu_bytes", plan->total_bytes},
                    {"weights_bytes", plan->weights_bytes},
                    {"kv_bytes", plan->kv_bytes},
                    {"state_bytes", plan->state_bytes}};
}

}  // namespace

Result<http::Reply> Api::submitJob(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  auto job = proto::parseJobRequest(*body);
  if (!job) return job.error();
  if (job->model) {
    auto predicted = predictJob(*job->model, job->gpus);
    if (!predicted) return predicted.error();
    job->predicted = std::move(*predicted);
  }
  // Placement and dispatch: no lock of the API is held while the host is called.
  auto placed = fleet_.scheduler->submit(*job, who->actor);
  if (!placed) return placed.error();
  bj::array gpu_arr;
  for (const auto& g : placed->gpus) gpu_arr.emplace_back(g);
  return http::created(bj::object{{"id", placed->id.str()},
                                  {"host", placed->host.id.str()},
                                  {"host_name", placed->host.name},
                                  {"gpus", std::move(gpu_arr)},
                                  {"state", "dispatched"}});
}

Result<http::Reply> Api::jobs(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"host"}); !s) return s.error();
  auto want = queryId(req, "host");
  if (!want) return want.error();
  auto rows = ledger_.withReader([&](ledger::ReadView& view) { return view.listJobs(*want); });
  auto hosts = ledger_.withReader([](ledger::ReadView& view) { return view.listHosts(); });
  if (!rows) return rows.error();
  std::map<std::string, std::string> states;
  if (hosts)
    for (const auto& h : *hosts) states[h.id] = proto::toString(h.state);
  bj::array arr;
  for (const auto& j : *rows) arr.push_back(jobJson(j, states[j.host_id]));
  return http::ok(bj::object{{"jobs", std::move(arr)}});
}

Result<http::Reply> Api::job(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {}); !s) return s.error();
  auto jid = proto::JobId::parse(id);
  if (!jid) return jid.error();
  auto jh = fleet_.scheduler->jobAndHost(*jid);
  if (!jh) return jh.error();
  std::string host_state;
  if (jh->second) {
    auto h = ledger_.withReader(
        [&](ledger::ReadView& view) { return view.findHost(jh->second->id.str()); });
    if (h && *h) host_state = proto::toString((**h).state);
  }
  bj::object o = jobJson(jh->first, host_state);
  // Evidence of what the job's GPUs did: its job.usage events, oldest first (hourly while it
  // ran, then the final one), each with the event seq it is read from.
  auto usage = ledger::readAll(ledger_, {0, 1000, "job/" + jh->first.id, proto::event::kJobUsage});
  if (!usage) return usage.error();
  bj::array u;
  for (const auto& e : *usage) {
    auto d = json::parseObject(e.data);
    if (!d) continue;
    (*d)["seq"] = e.seq;
    u.push_back(std::move(*d));
  }
  o["usage"] = std::move(u);
  return http::ok(o);
}

Result<http::Reply> Api::jobLogs(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  // Only typed, validated values reach the request to the host.
  if (auto s = onlyParams(req, {"tail", "follow"}); !s) return s.error();
  auto jid = proto::JobId::parse(id);
  if (!jid) return jid.error();
  auto tail = http::queryInt(req, "tail", 0, 100'000);
  if (!tail) return tail.error();
  auto follow_q = queryBool(req, "follow");
  if (!follow_q) return follow_q.error();
  const bool follow = follow_q->value_or(false);
  auto jh = fleet_.scheduler->jobAndHost(*jid);
  if (!jh) return jh.error();
  if (!jh->second) return notFound("job \"" + id + "\" has no host");
  const dispatch::HostTarget host = *jh->second;
  dispatch::Driver* driver = fleet_.scheduler->driverFor(host.kind);
  if (driver == nullptr)
    return Error{Code::kFailedPrecondition,
                 "no driver for " + std::string(proto::toString(host.kind)) + " hosts"};
  const dispatch::LogRequest lr{tail->value_or(100), follow};
  if (!follow) {
    auto r = driver->logs(host, *jid, lr, {}, {});
    if (!r) return r.error();
    http::Response out;
    out.status = r->status;
    out.content_type = r->status < 300 ? "text/plain; charset=utf-8" : "application/json";
    out.body = std::move(r->body);
    return http::raw(std::move(out));
  }
  // Streamed through from the host as it arrives.
  http::Response out;
  out.content_type = "text/plain; charset=utf-8";
  auto slot = streams_.acquire(who->actor, who->role == ledger::Role::kAdmin);
  if (!slot) return slot.error();
  out.stream = [driver, host, job = *jid, lr, slot = *slot](http::StreamWriter& w) {
    (void)driver->logs(
        host, job, lr, [&w](std::string_view chunk) { return w.write(chunk); },
        [&w] { return w.stopping(); });
  };
  return http::raw(std::move(out));
}

Result<http::Reply> Api::cancelJob(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {}); !s) return s.error();
  auto jid = proto::JobId::parse(id);
  if (!jid) return jid.error();
  auto r = fleet_.scheduler->cancel(*jid, who->actor);
  if (!r) return r.error();
  if (r->ended)
    return http::ok(bj::object{
        {"id", id}, {"host", r->host.id.str()}, {"state", "cancelled"}, {"reason", r->reason}});
  // The cancelled state arrives through the host's own reports.
  return http::accepted(
      bj::object{{"id", id}, {"host", r->host.id.str()}, {"state", "cancelling"}});
}

}  // namespace hwl::api
