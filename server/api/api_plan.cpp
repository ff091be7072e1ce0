// Plans (the VRAM a model needs) and placements (which hosts, and which of their GPUs, can run
// it now).
#include <algorithm>
#include <boost/json.hpp>
#include <boost/json/parse.hpp>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "api.hpp"
#include "collect/collector.hpp"
#include "hwl/files.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/placement.hpp"
#include "hwl/planner/plan_json.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ledger/rows.hpp"
#include "params.hpp"
#include "rentals/offer_catalog.hpp"

namespace hwl::api {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr uintmax_t kMaxModelConfigBytes = 1 << 20;

// A name GET /v1/models may list: a plain file name ending in .json, no path, no dot first.
bool validModelName(std::string_view n) {
  if (n.size() < 6 || n.size() > 128 || n.substr(n.size() - 5) != ".json") return false;
  if (!std::isalnum(static_cast<unsigned char>(n.front()))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// The model configs in `dir`: regular files (a symlink is not followed) with a valid name and at
// most 1 MiB, by name.
std::map<std::string, fs::directory_entry> modelFiles(const fs::path& dir) {
  std::map<std::string, fs::directory_entry> out;
  std::error_code ec;
  if (dir.empty()) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    std::error_code fe;
    if (!validModelName(name) || !e.is_regular_file(fe) || e.is_symlink(fe)) continue;
    if (e.file_size(fe) > kMaxModelConfigBytes || fe) continue;
    out.emplace(name, e);
  }
  return out;
}

}  // namespace

Result<http::Reply> Api::models(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {}); !s) return s.error();
  bj::array list;
  for (const auto& [name, e] : modelFiles(settings_.model_dir)) {
    std::error_code ec;
    list.push_back(bj::object{{"name", name}, {"bytes", static_cast<int64_t>(e.file_size(ec))}});
  }
  return http::ok(bj::object{{"models", std::move(list)}});
}

// The name is looked up among the directory's entries, never joined onto a path: a name that is
// not listed there (a path, "..", a symlink, a file too large) is not found.
Status Api::resolveModelName(bj::value& body) const {
  if (!body.is_object()) return {};
  auto& o = body.as_object();
  const bj::value* n = o.if_contains("model_name");
  if (n == nullptr) return {};
  if (o.contains("model")) return invalidArgument("give \"model\" or \"model_name\", not both");
  if (!n->is_string() || !validModelName(n->as_string()))
    return invalidArgument("model_name must be the name of a .json file GET /v1/models lists");
  const auto files = modelFiles(settings_.model_dir);
  const auto it = files.find(std::string(n->as_string()));
  if (it == files.end())
    return notFound("no model config \"" + std::string(n->as_string()) + "\" on this server");
  auto text = files::readFile(it->second.path(), kMaxModelConfigBytes);
  if (!text) return text.error();
  auto cfg = json::parseObject(*text);
  if (!cfg) return invalidArgument(it->first + ": " + cfg.error().message);
  o.erase("model_name");
  o["model"] = std::move(*cfg);
  return {};
}

Result<http::Reply> Api::plan(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  auto body = json::parse(req.body);
  if (!body) return body.error();
  if (auto s = resolveModelName(*body); !s) return s.error();
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
  // Rental offers beside the hosts: these are not planner inputs.
  std::optional<double> max_price;
  std::string provider;
  int64_t limit = 20;
  auto offerParam = [&](const std::string& k, const bj::value& v) -> Status {
    if (k == "max_price") {
      double d = v.is_double()  ? v.as_double()
                 : v.is_int64() ? static_cast<double>(v.as_int64())
                                : -1;
      if (!(d >= 0 && d <= 1e6))
        return invalidArgument("max_price must be a number from 0 to 1000000");
      max_price = d;
    } else if (k == "provider") {
      if (!v.is_string() || !rentals::knownProvider(v.as_string()))
        return invalidArgument("provider must be vast, runpod or lambda");
      provider = std::string(v.as_string());
    } else {
      if (!v.is_int64() || v.as_int64() < 1 || v.as_int64() > 500)
        return invalidArgument("offers_limit must be an integer from 1 to 500");
      limit = v.as_int64();
    }
    return {};
  };
  if (req.method == "POST") {
    body = json::parse(req.body);
    if (body && body->is_object()) {
      for (const char* k : {"max_price", "provider", "offers_limit"}) {
        if (const auto* v = body->as_object().if_contains(k)) {
          if (auto st = offerParam(k, *v); !st) return st.error();
          body->as_object().erase(k);
        }
      }
    }
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
      } else if (k == "max_price") {
        char* end = nullptr;
        double d = std::strtod(v.c_str(), &end);
        if (v.empty() || end != v.c_str() + v.size())
          return invalidArgument("max_price must be a number");
        if (auto st = offerParam(k, bj::value(d)); !st) return st.error();
      } else if (k == "provider") {
        if (auto st = offerParam(k, bj::value(v)); !st) return st.error();
      } else if (k == "offers_limit") {
        auto n = http::queryInt(req, k, 1, 500);
        if (!n) return n.error();
        limit = n->value_or(20);
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
  if (auto s = resolveModelName(*body); !s) return s.error();
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
  bj::object out{{"placements", std::move(arr)}};
  // Rental offers, ranked by the same per-GPU needs and then by price.
  bj::array fitting, rejected;
  bj::object offer_errors;
  if (fleet_.offers != nullptr) {
    auto needs = planner::placementNeeds(*pr, fixed_tp);
    if (!needs) return needs.error();
    auto snap = fleet_.offers->get({}, provider);
    std::vector<planner::OfferCapacity> caps2;
    caps2.reserve(snap.offers.size());
    std::map<std::string, const rentals::Offer*> by_id;
    for (const auto& o : snap.offers) {
      caps2.push_back({o.id, static_cast<uint32_t>(o.gpu_count),
                       static_cast<uint64_t>(std::max<int64_t>(o.gpu_memory_bytes, 0)),
                       o.price_hour_usd, o.reliability.value_or(0)});
      by_id[o.id] = &o;
    }
    auto ranked_offers = planner::rankOffers(*needs, caps2, max_price);
    double cheapest_fit = -1;
    for (const auto& f : ranked_offers) {
      if (f.fits && cheapest_fit < 0) cheapest_fit = f.price_hour_usd;
    }
    for (const auto& f : ranked_offers) {
      bj::object o = rentals::toJson(*by_id[f.id]);
      o["tp"] = f.tp;
      o["per_gpu_bytes"] = f.per_gpu_bytes;
      o["headroom_bytes"] = f.headroom_bytes;
      if (f.fits) {
        if (static_cast<int64_t>(fitting.size()) < limit) fitting.push_back(std::move(o));
      } else if ((cheapest_fit < 0 || f.price_hour_usd <= cheapest_fit) &&
                 static_cast<int64_t>(rejected.size()) < limit) {
        // Why each offer cheaper than the best fit does not do.
        o["reason"] = f.reason;
        rejected.push_back(std::move(o));
      }
    }
    for (const auto& [k, v] : snap.errors) offer_errors[k] = v;
  }
  out["offers"] = std::move(fitting);
  out["offers_rejected"] = std::move(rejected);
  out["offer_errors"] = std::move(offer_errors);
  return http::ok(std::move(out));
}

}  // namespace hwl::api
