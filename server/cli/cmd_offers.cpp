// `hwledger offers` (the rental offers of every configured provider, cheapest first) and
// `hwledger rent` (the cheapest offer a model fits, planned here with the same placement code the
// server uses, saying why each cheaper offer does not do; then launched unless --dry-run).
#include <boost/json.hpp>
#include <cctype>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "client.hpp"
#include "commands.hpp"
#include "hwl/files.hpp"
#include "hwl/planner/formats.hpp"
#include "hwl/planner/placement.hpp"
#include "hwl/planner/plan_command.hpp"
#include "output.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct OffersOptions {
  std::string gpu;
  double min_gpu_memory = -1;  // GiB
  double max_price = -1;
  std::string provider;
};

struct RentOptions {
  planner::PlanCliOptions plan;
  uint64_t context = 0;
  bool tp_given = false;
  double max_price = -1;
  std::string provider;
  std::string name;
  std::string ssh_key_file;
  bool spot = false;
  bool dry_run = false;
};

std::string money(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", v);
  return buf;
}

double number(const bj::object& o, const char* k) {
  const auto* v = o.if_contains(k);
  if (v == nullptr || !v->is_number()) return -1;
  boost::system::error_code ec;
  return v->to_number<double>(ec);
}

// A query value with everything but RFC 3986's unreserved characters percent-encoded.
std::string percentEncode(const std::string& v) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string offersTarget(const std::string& gpu, double mem, double price,
                         const std::string& provider) {
  std::string t = "/v1/offers";
  char sep = '?';
  auto add = [&](const std::string& k, const std::string& v) {
    t += sep + k + "=" + v;
    sep = '&';
  };
  if (!gpu.empty()) add("gpu", percentEncode(gpu));
  if (mem >= 0) add("min_gpu_memory", std::to_string(mem));
  if (price >= 0) add("max_price", std::to_string(price));
  if (!provider.empty()) add("provider", provider);
  return t;
}

void printErrors(const bj::value& v, std::ostream& err) {
  if (const auto* e = v.as_object().if_contains("errors"); e != nullptr && e->is_object())
    for (const auto& [k, m] : e->as_object())
      err << "hwledger: " << std::string(k) << ": " << str(m) << "\n";
}

int offers(const OffersOptions& o, const Context& ctx) {
  Api api(ctx.conn);
  auto answer = api.call("GET", offersTarget(o.gpu, o.min_gpu_memory, o.max_price, o.provider));
  return show(ctx, answer, [&](const bj::value& v) {
    Table t({"ID", "GPU", "COUNT", "MEM/GPU", "$/H", "SPOT $/H", "REGION", "RELIABILITY"});
    for (const auto& e : v.as_object().at("offers").as_array()) {
      const auto& x = e.as_object();
      double spot = number(x, "spot_price_hour_usd");
      double rel = number(x, "reliability");
      char relbuf[16];
      std::snprintf(relbuf, sizeof relbuf, "%.3f", rel);
      t.add({str(x.at("id")), str(x.at("gpu_model")), numStr(x, "gpu_count", "%.0f"),
             planner::formatBytes(static_cast<uint64_t>(number(x, "gpu_memory_bytes"))),
             money(number(x, "price_hour_usd")), spot >= 0 ? money(spot) : "-", str(x.at("region")),
             rel >= 0 ? relbuf : "-"});
    }
    t.print(ctx.out);
    printErrors(v, ctx.err);
    return 0;
  });
}

int rent(const RentOptions& o, const Context& ctx) {
  planner::PlanCliOptions po = o.plan;
  po.context = o.context;
  auto req = planner::planRequestFromCli(po);
  if (!req) {
    ctx.err << "hwledger rent: " << req.error().message << "\n";
    return 2;
  }
  std::string ssh_key;
  if (!o.ssh_key_file.empty()) {
    auto k = files::readFile(o.ssh_key_file, 16 * 1024);
    if (!k) return usageError(ctx.err, k.error());
    ssh_key = *k;
    while (!ssh_key.empty() && (ssh_key.back() == '\n' || ssh_key.back() == '\r'))
      ssh_key.pop_back();
  }
  auto needs = planner::placementNeeds(*req, o.tp_given);
  if (!needs) return fail(ctx.err, needs.error());
  Api api(ctx.conn);
  auto answer = api.call("GET", offersTarget("", -1, -1, o.provider));
  if (!answer) return fail(ctx.err, answer.error());
  printErrors(*answer, ctx.err);
  std::vector<planner::OfferCapacity> caps;
  std::map<std::string, bj::object> by_id;
  for (const auto& e : answer->as_object().at("offers").as_array()) {
    const auto& x = e.as_object();
    double rel = number(x, "reliability");
    // A spot rental is ranked by the offer's spot price (offers without one are left out).
    double price = o.spot ? number(x, "spot_price_hour_usd") : number(x, "price_hour_usd");
    if (price < 0) continue;
    caps.push_back({str(x.at("id")), static_cast<uint32_t>(number(x, "gpu_count")),
                    static_cast<uint64_t>(number(x, "gpu_memory_bytes")), price,
                    rel >= 0 ? rel : 0});
    by_id[str(x.at("id"))] = x;
  }
  std::optional<double> max_price;
  if (o.max_price >= 0) max_price = o.max_price;
  auto ranked = planner::rankOffers(*needs, caps, max_price);
  const planner::OfferFit* chosen = nullptr;
  for (const auto& f : ranked)
    if (f.fits) {
      chosen = &f;
      break;
    }
  // Why each cheaper offer does not do.
  bj::array cheaper;
  for (const auto& f : ranked) {
    if (f.fits || (chosen != nullptr && f.price_hour_usd > chosen->price_hour_usd)) continue;
    if (!ctx.json)
      ctx.out << "  " << f.id << " (" << money(f.price_hour_usd) << "/h): " << f.reason << "\n";
    cheaper.push_back(
        bj::object{{"offer", f.id}, {"price_hour_usd", f.price_hour_usd}, {"reason", f.reason}});
  }
  if (chosen == nullptr) {
    ctx.err << "hwledger rent: no offer fits" << (max_price ? " within the price" : "") << "\n";
    return 1;
  }
  if (!ctx.json)
    ctx.out << "cheapest fit: " << chosen->id << " at " << money(chosen->price_hour_usd)
            << "/h, tp=" << chosen->tp << ", " << planner::formatBytes(chosen->per_gpu_bytes)
            << " per GPU, " << planner::formatBytes(static_cast<uint64_t>(chosen->headroom_bytes))
            << " to spare\n";
  bj::object choice{{"offer", chosen->id},
                    {"price_hour_usd", chosen->price_hour_usd},
                    {"tp", chosen->tp},
                    {"per_gpu_bytes", chosen->per_gpu_bytes},
                    {"headroom_bytes", chosen->headroom_bytes},
                    {"cheaper_offers_rejected", std::move(cheaper)}};
  if (o.dry_run) {
    if (ctx.json) printJson(ctx.out, choice);
    return 0;
  }
  bj::object body{{"offer", chosen->id}, {"spot", o.spot}};
  if (!o.name.empty()) body["name"] = o.name;
  if (!ssh_key.empty()) body["ssh_key"] = ssh_key;
  auto launched = api.call("POST", "/v1/rentals", bj::serialize(body));
  if (!launched) return fail(ctx.err, launched.error());
  if (ctx.json) {
    choice["rental"] = *launched;
    printJson(ctx.out, choice);
  } else {
    ctx.out << "rented " << str(launched->as_object().at("id")) << " ("
            << str(launched->as_object().at("state")) << "); follow it with: hwledger rentals\n";
  }
  return 0;
}

}  // namespace

void registerOffers(CLI::App& app, Commands& commands) {
  auto* offers_cmd = app.add_subcommand("offers", "rental offers of the configured providers");
  auto& o = commands.add(offers_cmd, offers);
  offers_cmd->add_option("--gpu", o.gpu, "part of the GPU model, e.g. H100");
  offers_cmd->add_option("--min-gpu-memory", o.min_gpu_memory, "GiB per GPU")
      ->check(CLI::Range(0.0, 1e6));
  offers_cmd->add_option("--max-price", o.max_price, "USD per hour")->check(CLI::Range(0.0, 1e6));
  offers_cmd->add_option("--provider", o.provider, "vast|runpod|lambda")
      ->check(CLI::IsMember({"vast", "runpod", "lambda"}));

  auto* rent_cmd = app.add_subcommand(
      "rent", "rent the cheapest offer a model fits, and say why cheaper ones do not");
  auto& r = commands.add(rent_cmd, rent);
  rent_cmd->add_option("--model", r.plan.model, "config.json, GGUF or safetensors of the model")
      ->required();
  addCount(rent_cmd, "--context", r.context, "tokens per sequence", kMaxContextTokens)->required();
  addCount(rent_cmd, "--batch", r.plan.batch, "concurrent sequences", kMaxBatch);
  rent_cmd->add_option("--weights", r.plan.weights, "weight format: native|bf16|fp8|int4|...");
  rent_cmd->add_option("--kv", r.plan.kv, "KV cache format: auto|bf16|fp8|q8_0|...");
  auto* tp = addCount(rent_cmd, "--tp", r.plan.tp, "only this tensor parallel degree", kMaxTp);
  rent_cmd->add_option("--max-price", r.max_price, "USD per hour at most")
      ->check(CLI::Range(0.0, 1e6));
  rent_cmd->add_option("--provider", r.provider, "vast|runpod|lambda")
      ->check(CLI::IsMember({"vast", "runpod", "lambda"}));
  rent_cmd->add_option("--name", r.name, "a name for the rental (and its host)");
  rent_cmd->add_option("--ssh-key", r.ssh_key_file, "an OpenSSH public key file to authorise");
  rent_cmd->add_flag("--spot", r.spot, "an interruptible (spot) instance");
  rent_cmd->add_flag("--dry-run", r.dry_run, "choose and explain, launch nothing");
  rent_cmd->callback([&r, tp] { r.tp_given = tp->count() > 0; });
}

}  // namespace hwl::cli
