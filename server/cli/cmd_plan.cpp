// `hwledger plan` and `hwledger placements`: how much GPU memory a model needs, offline against a
// size or against an enrolled host's free memory, and where on the fleet it fits now.
#include <optional>
#include <string>
#include <vector>

#include "client.hpp"
#include "commands.hpp"
#include "hwl/planner/formats.hpp"
#include "hwl/planner/gpus.hpp"
#include "hwl/planner/placement.hpp"
#include "hwl/planner/plan_command.hpp"
#include "hwl/planner/plan_json.hpp"
#include "output.hpp"
#include "parse.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

// PlanCliOptions's `context` comes from `context` and its `json` from the global output format,
// both set when the command runs.
struct PlanOptions {
  planner::PlanCliOptions plan;
  uint64_t context = 0;
  std::string host;
  bool tp_given = false;  // --tp typed: place at exactly that degree
};

struct PlacementsOptions {
  planner::PlanCliOptions plan;
  uint64_t context = 0;
  bool tp_given = false;
};

// Per-GPU memory of every host that is not revoked, from GET /v1/hosts: free = total minus used
// by the latest sample (the total before any sample).
std::vector<planner::HostCapacity> capacities(const bj::array& hosts) {
  std::vector<planner::HostCapacity> out;
  for (const auto& h : hosts) {
    const auto& o = h.as_object();
    if (str(o.at("state")) == "revoked") continue;
    planner::HostCapacity c{str(o.at("id")), str(o.at("name")), {}};
    if (auto it = o.find("gpus"); it != o.end() && it->value().is_array())
      for (const auto& gv : it->value().as_array()) {
        const auto& go = gv.as_object();
        auto total = go.find("memory_total_bytes");
        if (total == go.end() || !total->value().is_number()) continue;
        boost::system::error_code ec;
        const auto t = total->value().to_number<uint64_t>(ec);
        if (ec) continue;
        uint64_t used = 0;
        if (auto sm = go.find("sample"); sm != go.end() && sm->value().is_object())
          if (auto u = sm->value().as_object().find("memory_used_bytes");
              u != sm->value().as_object().end() && u->value().is_number())
            used = u->value().to_number<uint64_t>(ec);
        c.gpus.push_back({t, ec || used > t ? 0 : t - used});
      }
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<planner::HostCapacity>> fleetCapacities(Api& api) {
  auto hosts = allHosts(api);
  if (!hosts) return hosts.error();
  return capacities(*hosts);
}

// A bad flag or model file is a usage error, named after the command like runPlanCommand does.
std::optional<planner::PlanRequest> planRequest(const planner::PlanCliOptions& po,
                                                const char* command, std::ostream& err) {
  auto req = planner::planRequestFromCli(po);
  if (!req) {
    err << "hwledger " << command << ": " << req.error().message << "\n";
    return std::nullopt;
  }
  return std::move(*req);
}

bj::object placementJson(const planner::Placement& p) {
  bj::object o{{"host", p.host_id},
               {"name", p.host_name},
               {"fits", p.fits},
               {"gpus_needed", p.gpus_needed},
               {"per_gpu_bytes", p.per_gpu_bytes},
               {"headroom_bytes", p.headroom_bytes}};
  if (!p.reason.empty()) o["reason"] = p.reason;
  return o;
}

std::string placementLine(const planner::Placement& p) {
  if (p.fits)
    return "host " + p.host_name + ": fits on " + std::to_string(p.gpus_needed) + " GPU(s), " +
           planner::formatBytes(p.per_gpu_bytes) + " each, " +
           planner::formatBytes(static_cast<uint64_t>(p.headroom_bytes)) + " to spare";
  return "host " + p.host_name + ": does NOT fit: " + p.reason;
}

// The same placement as POST /v1/placements and `hwledger placements`, on this host only; the
// plan is then computed for the GPUs and memory that placement found.
int planOnHost(const planner::PlanCliOptions& po, const PlanOptions& o, const Context& ctx) {
  auto req = planRequest(po, "plan", ctx.err);
  if (!req) return 2;
  Api api(ctx.conn);
  auto hosts = allHosts(api);
  if (!hosts) return fail(ctx.err, hosts.error());
  std::vector<planner::HostCapacity> cap;
  for (auto& c : capacities(*hosts))
    if (c.id == o.host || c.name == o.host) cap.push_back(std::move(c));
  // Without --gpu, the throughput bounds are those of the GPU model the host reports.
  if (!req->gpu && !cap.empty()) {
    for (const auto& h : *hosts) {
      const auto& ho = h.as_object();
      if (str(ho.at("id")) != cap.front().id) continue;
      if (auto g = ho.find("gpus"); g != ho.end() && g->value().is_array())
        for (const auto& gv : g->value().as_array())
          if (auto n = gv.as_object().find("name");
              n != gv.as_object().end() && n->value().is_string() && !req->gpu)
            req->gpu = planner::gpuPeak(n->value().as_string());
    }
    // The host's free memory, not the model's datasheet memory, decides the fit.
    if (req->gpu) req->gpu->memory_bytes = 0;
  }
  if (cap.empty() || cap.front().gpus.empty())
    return fail(ctx.err, notFound("no GPUs known for host \"" + o.host + "\""));
  auto placed = planner::placeOn(*req, cap, o.tp_given);
  if (!placed) return fail(ctx.err, placed.error());
  const auto& p = placed->front();
  req->tp = p.gpus_needed > 0 ? p.gpus_needed : req->tp;
  if (p.fits) req->gpu_mem_bytes = p.per_gpu_bytes + static_cast<uint64_t>(p.headroom_bytes);
  auto computed = planner::computePlan(*req);
  if (!computed) return fail(ctx.err, computed.error());
  if (ctx.json) {
    auto j = planner::planToJson(*computed);
    j["placement"] = placementJson(p);
    printJson(ctx.out, j);
  } else {
    ctx.out << planner::planToTable(*computed) << "\n" << placementLine(p) << "\n";
  }
  return p.fits ? 0 : 1;
}

int plan(const PlanOptions& o, const Context& ctx) {
  // Stricter than the planner's own size parsing: a bare number is refused.
  if (!o.plan.gpu_mem.empty()) {
    auto m = parseSize(o.plan.gpu_mem);
    if (!m) return usageError(ctx.err, m.error());
  }
  planner::PlanCliOptions po = o.plan;
  po.context = o.context;
  po.json = ctx.json;
  if (!o.host.empty()) return planOnHost(po, o, ctx);
  return planner::runPlanCommand(po, ctx.out, ctx.err);
}

int placements(const PlacementsOptions& o, const Context& ctx) {
  planner::PlanCliOptions po = o.plan;
  po.context = o.context;
  auto req = planRequest(po, "placements", ctx.err);
  if (!req) return 2;
  Api api(ctx.conn);
  auto fleet = fleetCapacities(api);
  if (!fleet) return fail(ctx.err, fleet.error());
  auto placed = planner::placeOn(*req, *fleet, o.tp_given);
  if (!placed) return fail(ctx.err, placed.error());
  if (ctx.json) {
    bj::array arr;
    for (const auto& p : *placed) arr.push_back(placementJson(p));
    printJson(ctx.out, bj::object{{"placements", std::move(arr)}});
    return 0;
  }
  Table t({"HOST", "FITS", "GPUS", "PER GPU", "HEADROOM", "WHY NOT"});
  for (const auto& p : *placed)
    t.add({p.host_name, p.fits ? "yes" : "no", std::to_string(p.gpus_needed),
           planner::formatBytes(p.per_gpu_bytes),
           p.fits ? planner::formatBytes(static_cast<uint64_t>(p.headroom_bytes)) : "-",
           p.reason.empty() ? "-" : p.reason});
  t.print(ctx.out);
  return 0;
}

}  // namespace

void registerPlan(CLI::App& app, Commands& commands) {
  auto* plan_cmd =
      app.add_subcommand("plan", "how much GPU memory a model needs, and whether it fits");
  // Offline unless a host is named: then its GPUs come from the server.
  auto& o = commands.add(plan_cmd, plan, [](const PlanOptions& p) { return p.host.empty(); });
  plan_cmd
      ->add_option("model", o.plan.model,
                   "config.json, GGUF, safetensors file or index, or a directory holding them")
      ->required();
  addCount(plan_cmd, "--context", o.context, "tokens per sequence", kMaxContextTokens)->required();
  addCount(plan_cmd, "--batch", o.plan.batch, "concurrent sequences", kMaxBatch);
  plan_cmd->add_option("--weights", o.plan.weights,
                       "weight format: native|bf16|fp16|fp8|int8|int4|q4_k_m|...");
  plan_cmd->add_option("--kv", o.plan.kv, "KV cache format: auto|bf16|fp16|fp8|int8|q8_0|q4_0");
  plan_cmd->add_option("--state-dtype", o.plan.state_dtype,
                       "recurrent state dtype: auto|fp32|bf16");
  auto* tp = addCount(plan_cmd, "--tp", o.plan.tp, "tensor parallel degree", kMaxTp);
  auto* gpu_mem = plan_cmd->add_option("--gpu-mem", o.plan.gpu_mem, "memory per GPU, e.g. 80GiB");
  plan_cmd
      ->add_option("--host", o.host,
                   "fit against this enrolled host: its GPUs' free memory by the latest sample")
      ->excludes(gpu_mem);
  plan_cmd->add_option("--activation", o.plan.activation,
                       "override the activation/workspace estimate");
  plan_cmd->add_option("--overhead", o.plan.overhead, "override the runtime overhead");
  plan_cmd->add_flag("--per-layer", o.plan.per_layer, "show every layer");
  plan_cmd->add_option("--gpu", o.plan.gpu,
                       "GPU model (H100 SXM, A100 80GB, L40S, MI300X ...): throughput upper "
                       "bounds, and its memory when --gpu-mem is not given");
  plan_cmd->callback([&o, tp] { o.tp_given = tp->count() > 0; });

  auto* places = app.add_subcommand("placements", "where a model fits on the enrolled hosts now");
  auto& p = commands.add(places, placements);
  places
      ->add_option("model", p.plan.model,
                   "config.json, GGUF, safetensors file or index, or a directory")
      ->required();
  addCount(places, "--context", p.context, "tokens per sequence", kMaxContextTokens)->required();
  addCount(places, "--batch", p.plan.batch, "concurrent sequences", kMaxBatch);
  places->add_option("--weights", p.plan.weights, "weight format: native|bf16|fp8|int4|q4_k_m|...");
  places->add_option("--kv", p.plan.kv, "KV cache format: auto|bf16|fp8|q8_0|...");
  auto* place_tp =
      addCount(places, "--tp", p.plan.tp,
               "only this tensor parallel degree (default: the fewest GPUs of 1, 2, 4, 8)", kMaxTp);
  places->callback([&p, place_tp] { p.tp_given = place_tp->count() > 0; });
}

}  // namespace hwl::cli
