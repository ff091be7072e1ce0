// `hwledger jobs`: submitting a job for the server to place on the fleet, listing jobs, reading
// or following a job's output, and cancelling one.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "client.hpp"
#include "commands.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/formats.hpp"
#include "hwl/proto/types.hpp"
#include "output.hpp"
#include "parse.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct JobSubmitOptions {
  std::string name;
  int64_t gpus = -1;
  std::string gpu_memory;  // a size with its unit, parsed once the command runs
  std::string host;
  int64_t port = 0;
  std::string ready_path;
  int64_t max_runtime = 0;
  std::vector<std::string> env;
  std::vector<std::string> command;
};

struct JobLogsOptions {
  std::string id;
  int64_t tail = 100;
  bool follow = false;
};

struct JobCancelOptions {
  std::string id;
};

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A 409 names each host by id with the reason it cannot take the job; people know hosts by name.
int failNoPlacement(Api& api, const bj::value& answer, std::ostream& err) {
  err << "error: no host can take this job:\n";
  const auto& e = answer.as_object().at("error").as_object();
  auto names = fleetNames(api);
  if (e.contains("hosts"))
    for (const auto& kv : e.at("hosts").as_object()) {
      const std::string id(kv.key());
      const std::string name = names ? names->hostName(id) : id;
      err << "  " << name << (name == id ? "" : " (" + id + ")") << ": " << str(kv.value()) << "\n";
    }
  return 1;
}

int jobsSubmit(const JobSubmitOptions& o, const Context& ctx) {
  uint64_t gpu_memory = 0;
  if (!o.gpu_memory.empty()) {
    auto m = parseSize(o.gpu_memory);
    if (!m) return usageError(ctx.err, m.error());
    gpu_memory = *m;
  }
  Api api(ctx.conn);
  bj::array cmd;
  for (const auto& c : o.command) cmd.push_back(bj::string(c));
  bj::object env;
  for (const auto& e : o.env) {
    auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail(ctx.err, invalidArgument("--env takes NAME=VALUE, not " + e));
    env[e.substr(0, eq)] = e.substr(eq + 1);
  }
  bj::object body{{"command", cmd}, {"env", env}};
  if (!o.name.empty()) body["name"] = o.name;
  if (o.gpus >= 0) body["gpus"] = o.gpus;
  if (gpu_memory > 0) body["gpu_memory_bytes"] = gpu_memory;
  if (!o.host.empty()) body["host"] = o.host;
  if (o.port > 0) body["port"] = o.port;
  if (!o.ready_path.empty()) body["ready_path"] = o.ready_path;
  if (o.max_runtime > 0) body["max_runtime_s"] = o.max_runtime;
  auto r = api.client().request("POST", "/v1/jobs", bj::serialize(body), api.headers());
  if (!r) return fail(ctx.err, r.error());
  auto v = json::parse(r->body);
  if (r->status == 409 && v && v->is_object()) return failNoPlacement(api, *v, ctx.err);
  if (r->status >= 300 || !v) return failHttp(ctx.err, *r);
  return show(ctx, *v, [&](const bj::value& job) {
    const auto& j = job.as_object();
    ctx.out << "job " << str(j.at("id")) << " placed on " << str(j.at("host_name")) << " ("
            << str(j.at("host")) << ")\n";
    return 0;
  });
}

int jobsList(const NoOptions&, const Context& ctx) {
  Api api(ctx.conn);
  return show(ctx, api.call("GET", "/v1/jobs"), [&](const bj::value& v) {
    auto names = fleetNames(api);
    if (!names) return fail(ctx.err, names.error());
    Table t({"ID", "NAME", "HOST", "STATE", "GPUS", "STARTED", "DURATION", "EXIT", "REASON"});
    const int64_t now = nowMs();
    for (const auto& e : v.as_object().at("jobs").as_array()) {
      const auto& o = e.as_object();
      std::string exit = o.at("exit_code").is_int64() ? std::to_string(o.at("exit_code").as_int64())
                         : o.at("signal").is_int64()
                             ? "signal " + std::to_string(o.at("signal").as_int64())
                             : "-";
      auto ms = [&](const char* k) {
        auto it = o.find(k);
        return it != o.end() && it->value().is_int64() ? it->value().as_int64() : int64_t{0};
      };
      const int64_t started = ms("started_ms"), ended = ms("ended_ms");
      t.add({str(o.at("id")), str(o.at("name")), names->hostName(str(o.at("host"))),
             str(o.at("state")), names->gpuIndices(o.at("gpus").as_array()),
             started > 0 ? fmtTime(started) : "-",
             started > 0 ? fmtDuration((ended > 0 ? ended : now) - started) : "-", exit,
             str(o.at("reason"))});
    }
    t.print(ctx.out);
    return 0;
  });
}

struct JobShowOptions {
  std::string id;
};

std::string num1(const bj::object& o, const char* k, const char* unit) {
  auto it = o.find(k);
  if (it == o.end() || !it->value().is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f%s", it->value().to_number<double>(), unit);
  return buf;
}

// A job and the evidence of what its GPUs did: the latest job.usage (the final one once the
// job has ended), with where each figure comes from.
int jobsShow(const JobShowOptions& o, const Context& ctx) {
  if (auto id = proto::JobId::parse(o.id); !id) return usageError(ctx.err, id.error());
  Api api(ctx.conn);
  return show(ctx, api.call("GET", "/v1/jobs/" + o.id), [&](const bj::value& v) {
    const auto& j = v.as_object();
    auto ms = [&](const char* k) {
      auto it = j.find(k);
      return it != j.end() && it->value().is_int64() ? it->value().as_int64() : int64_t{0};
    };
    ctx.out << "job      " << str(j.at("id")) << " (" << str(j.at("name")) << ")\n"
            << "state    " << str(j.at("state")) << " on " << str(j.at("host")) << "\n";
    if (ms("started_ms") > 0) {
      const int64_t end = ms("ended_ms") > 0 ? ms("ended_ms") : nowMs();
      ctx.out << "started  " << fmtTime(ms("started_ms")) << ", ran "
              << fmtDuration(end - ms("started_ms")) << "\n";
    }
    const auto& usage = j.at("usage").as_array();
    if (usage.empty()) {
      ctx.out << "usage    none recorded yet (job.usage follows the end of the job, and every "
                 "full hour)\n";
      return 0;
    }
    const auto& u = usage.back().as_object();
    const bool final = u.at("final").as_bool();
    ctx.out << "usage    " << (final ? "final" : "so far") << ", event seq "
            << u.at("seq").as_int64() << ", " << fmtTime(u.at("from_ms").as_int64()) << " to "
            << fmtTime(u.at("to_ms").as_int64()) << "\n"
            << "  energy       " << num1(u, "energy_wh", " Wh") << " ("
            << str(u.at("energy_source")) << ")\n"
            << "  GPU-hours    " << num1(u, "gpu_hours", "") << "\n"
            << "  utilisation  mean " << num1(u, "util_mean_pct", "%") << ", max "
            << num1(u, "util_max_pct", "%") << "\n";
    if (auto m = u.find("mem_used_max_bytes"); m != u.end() && m->value().is_int64()) {
      ctx.out << "  memory max   "
              << planner::formatBytes(static_cast<uint64_t>(m->value().as_int64())) << " ("
              << (str(u.at("memory_source")) == "process"
                      ? "the job's processes"
                      : (str(u.at("memory_source")) == "mixed"
                             ? "the job's processes on some GPUs, the whole GPU on others"
                             : "whole GPU"))
              << ")\n";
    }
    return 0;
  });
}

int jobsLogs(const JobLogsOptions& o, const Context& ctx) {
  Api api(ctx.conn);
  const std::string target = "/v1/jobs/" + o.id + "/logs?tail=" + std::to_string(o.tail);
  if (o.follow) {
    auto st =
        api.client().stream("GET", target + "&follow=1", api.headers(), [&](std::string_view c) {
          ctx.out << c;
          ctx.out.flush();
          return true;
        });
    if (!st) return fail(ctx.err, st.error());
    return *st < 300 ? 0 : 1;
  }
  auto r = api.client().request("GET", target, {}, api.headers());
  if (!r) return fail(ctx.err, r.error());
  if (r->status >= 300) return failHttp(ctx.err, *r);
  ctx.out << r->body;
  return 0;
}

int jobsCancel(const JobCancelOptions& o, const Context& ctx) {
  Api api(ctx.conn);
  return show(ctx, api.call("DELETE", "/v1/jobs/" + o.id), [&](const bj::value&) {
    ctx.out << "cancelling " << o.id << "\n";
    return 0;
  });
}

}  // namespace

void registerJobs(CLI::App& app, Commands& commands) {
  auto* jobs = app.add_subcommand("jobs", "jobs placed on the fleet");
  jobs->require_subcommand(1);

  auto* submit = jobs->add_subcommand("submit", "place and start a job: -- COMMAND ARGS...");
  auto& s = commands.add(submit, jobsSubmit);
  submit->add_option("--name", s.name, "a name for the job");
  submit->add_option("--gpus", s.gpus, "whole GPUs needed");
  submit->add_option("--gpu-memory", s.gpu_memory, "free memory needed on each GPU, e.g. 24GiB");
  submit->add_option("--host", s.host, "host id or name to place it on");
  submit->add_option("--port", s.port, "port the job serves on (loopback)");
  submit->add_option("--ready-path", s.ready_path, "path that answers 2xx once ready");
  submit->add_option("--max-runtime", s.max_runtime, "seconds before it is stopped");
  submit->add_option("--env", s.env, "NAME=VALUE (repeatable)");
  submit->add_option("command", s.command, "the command and its arguments")->required();

  commands.add(jobs->add_subcommand("list", "list jobs"), jobsList);

  auto* show_cmd = jobs->add_subcommand("show", "a job and what its GPUs did (job.usage)");
  auto& sh = commands.add(show_cmd, jobsShow);
  show_cmd->add_option("id", sh.id, "job id")->required();

  auto* logs = jobs->add_subcommand("logs", "a job's output");
  auto& l = commands.add(logs, jobsLogs);
  logs->add_option("id", l.id, "job id")->required();
  logs->add_option("--tail", l.tail, "last N lines");
  logs->add_flag("--follow,-f", l.follow, "keep streaming");

  auto* cancel = jobs->add_subcommand("cancel", "stop a job");
  auto& c = commands.add(cancel, jobsCancel);
  cancel->add_option("id", c.id, "job id")->required();
}

}  // namespace hwl::cli
