// Rentals and costs: launching an offer, listing and terminating rentals, and the cost rows the
// rental manager accrued, each answered from the manager's fold of the rental events.
#include <boost/json.hpp>
#include <cmath>
#include <string>

#include "api.hpp"
#include "hwl/json.hpp"
#include "params.hpp"
#include "rentals/rental_book.hpp"
#include "rentals/rental_manager.hpp"

namespace hwl::api {

namespace bj = boost::json;

namespace {

Error noRentals() {
  return Error{Code::kFailedPrecondition,
               "no cloud provider is configured on this server (the \"providers\" section of its "
               "config)",
               "rentals_not_configured",
               {}};
}

Result<double> queryNumber(const http::Request& req, const std::string& name, double max) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return -1.0;
  const std::string& v = it->second;
  size_t used = 0;
  double d = 0;
  try {
    d = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size() || !std::isfinite(d) || d < 0 || d > max)
    return invalidArgument(name + " must be a number from 0 to " +
                           std::to_string(static_cast<int64_t>(max)));
  return d;
}

}  // namespace

Result<http::Reply> Api::offers(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"gpu", "min_gpu_memory", "max_price", "provider", "min_gpus"}); !s)
    return s.error();
  rentals::OfferFilter f;
  if (auto g = req.query.find("gpu"); g != req.query.end()) {
    if (g->second.size() > 64 || hasControl(g->second))
      return invalidArgument("gpu must be at most 64 printable characters");
    f.gpu = g->second;
  }
  auto mem = queryNumber(req, "min_gpu_memory", 1e6);  // GiB
  if (!mem) return mem.error();
  if (*mem >= 0) f.min_gpu_memory_bytes = static_cast<int64_t>(*mem * 1073741824.0);
  auto price = queryNumber(req, "max_price", 1e6);
  if (!price) return price.error();
  if (*price >= 0) f.max_price_hour_usd = *price;
  auto gpus = http::queryInt(req, "min_gpus", 0, 1024);
  if (!gpus) return gpus.error();
  f.min_gpu_count = static_cast<int>(gpus->value_or(0));
  std::string provider;
  if (auto p = req.query.find("provider"); p != req.query.end()) {
    if (!rentals::knownProvider(p->second))
      return invalidArgument("provider must be vast, runpod or lambda");
    provider = p->second;
  }
  if (fleet_.offers == nullptr)
    return http::ok(bj::object{
        {"offers", bj::array{}},
        {"errors", bj::object{{"providers", "no cloud provider is configured on this server"}}}});
  auto snap = fleet_.offers->get(f, provider);
  bj::array arr;
  arr.reserve(snap.offers.size());
  for (const auto& o : snap.offers) arr.push_back(rentals::toJson(o));
  bj::object errors;
  for (const auto& [k, v] : snap.errors) errors[k] = v;
  return http::ok(bj::object{{"offers", std::move(arr)}, {"errors", std::move(errors)}});
}

Result<http::Reply> Api::rentals(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"state", "provider"}); !s) return s.error();
  if (fleet_.rentals == nullptr) return http::ok(bj::object{{"rentals", bj::array{}}});
  auto state = req.query.find("state");
  auto provider = req.query.find("provider");
  bj::array out;
  for (auto& v : fleet_.rentals->list()) {
    const auto& o = v.as_object();
    if (state != req.query.end() && o.at("state").as_string() != state->second) continue;
    if (provider != req.query.end() && o.at("provider").as_string() != provider->second) continue;
    out.push_back(std::move(v));
  }
  return http::ok(bj::object{{"rentals", std::move(out)}, {"budget", fleet_.rentals->budget()}});
}

Result<http::Reply> Api::rental(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (!rentals::validRentalId(id)) return invalidArgument("not a rental id");
  if (fleet_.rentals == nullptr) return notFound("no rental " + id);
  auto r = fleet_.rentals->get(id);
  if (!r) return r.error();
  return http::ok(std::move(*r));
}

Result<http::Reply> Api::launchRental(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  if (fleet_.rentals == nullptr) return noRentals();
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  auto order = rentals::parseLaunchOrder(*body);
  if (!order) return order.error();
  auto r = fleet_.rentals->launch(*order, who->actor);
  if (!r) return r.error();
  return http::created(std::move(*r));
}

Result<http::Reply> Api::terminateRental(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kOperator);
  if (!who) return who.error();
  if (!rentals::validRentalId(id)) return invalidArgument("not a rental id");
  if (fleet_.rentals == nullptr) return notFound("no rental " + id);
  auto r = fleet_.rentals->terminate(id, who->actor);
  if (!r) return r.error();
  return http::accepted(std::move(*r));
}

Result<http::Reply> Api::costs(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  if (auto s = onlyParams(req, {"from", "to", "group_by"}); !s) return s.error();
  auto w = queryWindow(req);
  if (!w) return w.error();
  std::string group_by = "provider";
  if (auto g = req.query.find("group_by"); g != req.query.end()) group_by = g->second;
  int64_t now = clock_.nowMs();
  int64_t t1 = w->to.value_or(now + 1);
  int64_t t0 = w->from.value_or(0);
  if (fleet_.rentals == nullptr) {
    if (group_by != "provider" && group_by != "rental" && group_by != "host" && group_by != "job")
      return invalidArgument("group_by must be provider, rental, host or job");
    return http::ok(bj::object{{"from_ms", t0},
                               {"to_ms", t1},
                               {"group_by", group_by},
                               {"groups", bj::array{}},
                               {"total_usd", 0.0}});
  }
  auto c = fleet_.rentals->costs(t0, t1, group_by);
  if (!c) return c.error();
  return http::ok(std::move(*c));
}

}  // namespace hwl::api
