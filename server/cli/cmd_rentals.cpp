// `hwledger rentals [show ID | terminate ID]` and `hwledger costs`: cloud rentals with their
// state, price and accrued cost, and the ledger's cost rows grouped by provider, rental, host or
// job.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "client.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "parse.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct RentalIdOptions {
  std::string id;
};

struct CostsOptions {
  std::string group_by = "provider";
  std::string from;
  std::string to;
};

// A rental id as the server makes them; checked before it goes into a URL path.
bool rentalIdOk(const std::string& id) {
  return !id.empty() && id.size() <= 160 &&
         (id.starts_with("rental-") || id.starts_with("orphan-")) &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

std::string usd(const bj::object& o, const char* key) {
  auto s = numStr(o, key, "%.4f");
  return s == "-" ? s : "$" + s;
}

std::string address(const bj::value& v) {
  if (!v.is_object()) return "-";
  const auto& a = v.as_object();
  return str(a.at("user")) + "@" + str(a.at("host")) + ":" + numStr(a, "port", "%.0f");
}

int rentalsList(const NoOptions&, const Context& ctx) {
  Api api(ctx.conn);
  return show(ctx, api.call("GET", "/v1/rentals"), [&](const bj::value& v) {
    Table t({"ID", "PROVIDER", "INSTANCE", "STATE", "GPUS", "$/H", "PRICE SOURCE", "COST",
             "ADDRESS", "HOST", "MESSAGE"});
    for (const auto& e : v.as_object().at("rentals").as_array()) {
      const auto& o = e.as_object();
      std::string gpus = numStr(o, "gpu_count", "%.0f");
      if (const auto* offer = o.if_contains("offer"); offer != nullptr && offer->is_object()) {
        if (const auto* m = offer->as_object().if_contains("gpu_model"); m != nullptr)
          gpus += " x " + str(*m);
      }
      t.add({str(o.at("id")), str(o.at("provider")), str(o.at("instance_id")), str(o.at("state")),
             gpus, usd(o, "price_hour_usd"), str(o.at("price_source")), usd(o, "cost_to_now_usd"),
             address(o.at("address")), str(o.at("host_id")), str(o.at("message"))});
    }
    t.print(ctx.out);
    return 0;
  });
}

int rentalsShow(const RentalIdOptions& o, const Context& ctx) {
  if (!rentalIdOk(o.id)) return usageError(ctx.err, invalidArgument("not a rental id: " + o.id));
  Api api(ctx.conn);
  return show(ctx, api.call("GET", "/v1/rentals/" + o.id), [&](const bj::value& v) {
    const auto& r = v.as_object();
    for (const char* k :
         {"id", "provider", "instance_id", "label", "state", "price_source", "host_id", "message"})
      ctx.out << k << ": " << str(r.at(k)) << "\n";
    ctx.out << "price_hour_usd: " << usd(r, "price_hour_usd") << "\n";
    ctx.out << "accrued_usd: " << usd(r, "accrued_usd") << "\n";
    ctx.out << "cost_to_now_usd: " << usd(r, "cost_to_now_usd") << "\n";
    ctx.out << "address: " << address(r.at("address")) << "\n";
    return 0;
  });
}

int rentalsTerminate(const RentalIdOptions& o, const Context& ctx) {
  if (!rentalIdOk(o.id)) return usageError(ctx.err, invalidArgument("not a rental id: " + o.id));
  Api api(ctx.conn);
  return show(ctx, api.call("DELETE", "/v1/rentals/" + o.id), [&](const bj::value& v) {
    ctx.out << "terminating " << o.id << " (" << str(v.as_object().at("state"))
            << "): recorded terminated once the provider confirms\n";
    return 0;
  });
}

int costs(const CostsOptions& o, const Context& ctx) {
  auto window =
      windowQuery(o.group_by, o.from, o.to, static_cast<int64_t>(std::time(nullptr)) * 1000);
  if (!window) return usageError(ctx.err, window.error());
  Api api(ctx.conn);
  const std::string target = "/v1/costs" + *window;
  return show(ctx, api.call("GET", target), [&](const bj::value& v) {
    std::string head = o.group_by;
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    Table t({head, "COST", "EVENTS"});
    for (const auto& e : v.as_object().at("groups").as_array()) {
      const auto& g = e.as_object();
      t.add({str(g.at(o.group_by)), usd(g, "amount_usd"),
             std::to_string(g.at("event_seqs").as_array().size())});
    }
    t.print(ctx.out);
    if (v.as_object().contains("total_usd"))
      ctx.out << "total: " << usd(v.as_object(), "total_usd") << "\n";
    return 0;
  });
}

}  // namespace

void registerRentals(CLI::App& app, Commands& commands) {
  auto* rentals = app.add_subcommand("rentals", "cloud rentals: state, price, accrued cost");
  commands.add(rentals, rentalsList);
  auto* show_cmd = rentals->add_subcommand("show", "one rental");
  auto& s = commands.add(show_cmd, rentalsShow);
  show_cmd->add_option("id", s.id, "rental id")->required();
  auto* term = rentals->add_subcommand("terminate", "terminate a rental (the provider confirms)");
  auto& t = commands.add(term, rentalsTerminate);
  term->add_option("id", t.id, "rental id")->required();

  auto* costs_cmd = app.add_subcommand("costs", "costs of rentals in the ledger");
  auto& c = commands.add(costs_cmd, costs);
  costs_cmd->add_option("--group-by", c.group_by, "provider|rental|host|job")
      ->check(CLI::IsMember({"provider", "rental", "host", "job"}));
  costs_cmd->add_option("--from", c.from, "start: 2026-12-02, 2026-12-02T10:00:00Z or -24h");
  costs_cmd->add_option("--to", c.to, "end, same forms (default: now)");
}

}  // namespace hwl::cli
