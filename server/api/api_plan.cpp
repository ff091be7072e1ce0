// Plans (the VRAM a model needs) and placements (which hosts, and which of their GPUs, can run
// it now).
#include <boost/json.hpp>
#include <boost/json/parse.hpp>

#include "api.hpp"
#include "collect/collector.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/placement.hpp"
#include "hwl/planner/plan_json.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ledger/rows.hpp"
#include "params.hpp"

namespace hwl::api {

namespace bj = boost::json;

Result<http::Reply> Api::plan(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  auto body = json::parse(req.body);
  if (!body) return body.error();
  auto pr = planner::planRequestFromJson(*body);
  if (!pr) return pr.error();
  auto p = planner::computePlan(*pr);
  if (!p) return p.error();
  return http::ok(planner::planToJson(*p));
}

Result<http::Reply> Api::placements(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  Result<bj::value> body = internal("");
  if (req.method == "POST") {
    body = json::parse(req.body);
  } else {
    // The same inputs as POST /v1/plan, as query parameters; the config is JSON text.
    bj::object o;
    for (const auto& [k, v] : req.query) {
      if (k == "config" || k == "model") {
        auto cfg = json::parse(v);
        if (!cfg) return invalidArgument("query parameter \"config\": " + cfg.error().message);
        o["model"] = std::move(*cfg);
      } else if (k == "context" || k == "batch" || k == "tp" || k == "gpu_mem_bytes" ||
                 k == "prefill_chunk_tokens") {
        auto n = http::queryInt(req, k, 0, INT64_MAX);
        if (!n) return n.error();
        if (*n) o[k] = **n;
      } else if (k == "per_layer") {
        auto b = queryBool(req, k);
        if (!b) return b.error();
        o[k] = b->value_or(false);
      } else if (k == "weights" || k == "kv" || k == "state_dtype" || k == "gpu_mem" ||
                 k == "activation_bytes" || k == "overhead_bytes") {
        if (v.size() > 64 || hasControl(v))
          return invalidArgument("query parameter \"" + k + "\" is not a valid value");
        o[k] = v;
      } else {
        return invalidArgument("unknown query parameter \"" + k.substr(0, 64) + "\"");
      }
    }
    body = bj::value(std::move(o));
  }
  if (!body) return body.error();
  auto pr = planner::planRequestFromJson(*body);
  if (!pr) return pr.error();
  // A TP degree the caller names is the one placed; otherwise the fewest GPUs that hold it.
  const bool fixed_tp = body->is_object() && body->as_object().contains("tp");
  auto hosts = ledger_.withReader([](ledger::ReadView& view) { return view.listHosts(); });
  if (!hosts) return hosts.error();
  std::vector<planner::HostCapacity> caps;
  bj::object basis;
  for (const auto& h : *hosts) {
    if (h.state == proto::HostState::kRevoked) continue;
    planner::HostCapacity c{h.id, h.name, {}};
    auto live = fleet_.collector ? fleet_.collector->live(h.id) : std::nullopt;
    if (live && live->telemetry) {
      // Free memory by the latest sample.
      for (const auto& g : live->telemetry->at("gpus").as_array()) {
        if (!g.is_object()) continue;
        auto t = num(g.get_object(), "memory_total_bytes");
        auto u = num(g.get_object(), "memory_used_bytes");
        if (!t) continue;
        c.gpus.push_back({static_cast<uint64_t>(*t), static_cast<uint64_t>(*t - u.value_or(0))});
      }
      basis[h.id] = "free memory at " + std::to_string(live->telemetry_ms);
    } else {
      // No telemetry yet: against the total memory of the inventory.
      auto gpus = ledger_.withReader([&](ledger::ReadView& view) { return view.listGpus(h.id); });
      if (gpus)
        for (const auto& g : *gpus)
          if (g.memory_total_bytes)
            c.gpus.push_back({static_cast<uint64_t>(*g.memory_total_bytes),
                              static_cast<uint64_t>(*g.memory_total_bytes)});
      basis[h.id] = "total memory (no telemetry yet)";
    }
    caps.push_back(std::move(c));
  }
  auto ranked = planner::placeOn(*pr, caps, fixed_tp);
  if (!ranked) return ranked.error();
  bj::array arr;
  for (const auto& p : *ranked) {
    bj::object o{{"host", p.host_id},
                 {"name", p.host_name},
                 {"fits", p.fits},
                 {"gpus_needed", p.gpus_needed},
                 {"per_gpu_bytes", p.per_gpu_bytes},
                 {"headroom_bytes", p.headroom_bytes},
                 {"basis", basis[p.host_id]}};
    if (!p.reason.empty()) o["reason"] = p.reason;
    arr.push_back(std::move(o));
  }
  return http::ok(bj::object{{"placements", std::move(arr)}});
}

}  // namespace hwl::api
