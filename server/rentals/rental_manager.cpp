#include "rentals/rental_manager.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "hwl/crypto.hpp"
#include "hwl/files.hpp"
#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"
#include "rentals/provider_http.hpp"
#include "rentals/ssh_keygen.hpp"

namespace hwl::rentals {

namespace bj = boost::json;
namespace ev = proto::event;

namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr const char* kSystem = "system";

double roundUsd(double v) { return std::round(v * 1e6) / 1e6; }

bool nameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

ledger::NewEvent event(std::string type, bj::object data, std::string id = {}) {
  return ledger::NewEvent{std::move(id), std::move(type), bj::value(std::move(data))};
}

std::string orphanId(const std::string& provider, const std::string& instance_id) {
  std::string id = "orphan-" + provider + "-";
  for (char c : instance_id) id.push_back(nameChar(c) ? c : '_');
  return id.substr(0, 150);
}

Error budgetError(const std::string& cap, double limit, double value, double price) {
  Error e = conflict("the launch would exceed " + cap + ": " + std::to_string(value) +
                     " USD > limit " + std::to_string(limit) + " USD");
  e.reason = "budget_exceeded";
  bj::object d{{"cap", cap},
               {"limit_usd", limit},
               {"value_usd", roundUsd(value)},
               {"offer_price_hour_usd", price}};
  e.details = json::canonical(bj::value(std::move(d)));
  return e;
}

}  // namespace

Status checkPublicKey(std::string_view line) {
  if (line.size() > 8192) return invalidArgument("ssh_key is longer than 8192 bytes");
  auto sp = line.find(' ');
  if (sp == std::string_view::npos)
    return invalidArgument("ssh_key is not \"TYPE BASE64 [COMMENT]\"");
  std::string_view type = line.substr(0, sp);
  static const std::set<std::string_view> kTypes = {"ssh-ed25519",
                                                    "ssh-rsa",
                                                    "ecdsa-sha2-nistp256",
                                                    "ecdsa-sha2-nistp384",
                                                    "ecdsa-sha2-nistp521",
                                                    "sk-ssh-ed25519@openssh.com",
                                                    "sk-ecdsa-sha2-nistp256@openssh.com"};
  if (!kTypes.contains(type)) return invalidArgument("ssh_key has an unknown key type");
  std::string_view rest = line.substr(sp + 1);
  auto sp2 = rest.find(' ');
  std::string_view blob = rest.substr(0, sp2);
  std::string_view comment =
      sp2 == std::string_view::npos ? std::string_view{} : rest.substr(sp2 + 1);
  if (blob.empty() || blob.size() % 4 != 0 || !std::all_of(blob.begin(), blob.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=';
      }))
    return invalidArgument("ssh_key's key is not base64");
  std::string decoded(blob.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                          reinterpret_cast<const unsigned char*>(blob.data()),
                          static_cast<int>(blob.size()));
  if (n < 4) return invalidArgument("ssh_key's key is not base64");
  uint32_t len = (static_cast<uint8_t>(decoded[0]) << 24) |
                 (static_cast<uint8_t>(decoded[1]) << 16) |
                 (static_cast<uint8_t>(decoded[2]) << 8) | static_cast<uint8_t>(decoded[3]);
  if (len != type.size() || decoded.compare(4, len, type) != 0)
    return invalidArgument("ssh_key's key blob is not of the type it names");
  for (char c : comment) {
    if (c < 0x20 || c == 0x7f)
      return invalidArgument("ssh_key's comment holds a control character");
  }
  return {};
}

Result<LaunchOrder> parseLaunchOrder(const bj::object& body) {
  if (auto s = json::checkKeys(body, {"offer", "name", "ssh_key", "spot", "bid_hour_usd"}); !s)
    return s.error();
  LaunchOrder o;
  auto offer = json::requiredString(body, "offer");
  if (!offer) return offer.error();
  auto colon = offer->find(':');
  if (colon == std::string::npos || !knownProvider(offer->substr(0, colon)) ||
      !validOfferId(offer->substr(colon + 1)))
    return invalidArgument("offer must be an offer id as GET /v1/offers lists it (\"provider:…\")");
  o.offer = *offer;
  auto name = json::optionalString(body, "name");
  if (!name) return name.error();
  o.name = name->value_or("");
  if (o.name.size() > 64 || !std::all_of(o.name.begin(), o.name.end(), nameChar))
    return invalidArgument("name may hold at most 64 letters, digits, '-', '_' and '.'");
  auto key = json::optionalString(body, "ssh_key");
  if (!key) return key.error();
  if (*key && !(*key)->empty()) {
    std::string k = **key;
    while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
    if (auto s = checkPublicKey(k); !s) return s.error();
    o.ssh_key = k;
  }
  auto spot = json::optionalBool(body, "spot");
  if (!spot) return spot.error();
  o.spot = spot->value_or(false);
  if (const auto* b = body.if_contains("bid_hour_usd")) {
    double v = 0;
    if (b->is_double()) {
      v = b->as_double();
    } else if (b->is_int64()) {
      v = static_cast<double>(b->as_int64());
    } else {
      return invalidArgument("bid_hour_usd must be a number");
    }
    if (!std::isfinite(v) || v <= 0 || v > 10'000)
      return invalidArgument("bid_hour_usd must be above 0 and at most 10000");
    if (!o.spot) return invalidArgument("bid_hour_usd is for spot launches only");
    o.bid_hour_usd = v;
  }
  return o;
}

RentalManager::RentalManager(ManagerDeps deps) : deps_(std::move(deps)) {}

Status RentalManager::replay(ledger::EventQuery q) {
  q.limit = 1000;
  return ledger::forEachEvent(*deps_.ledger, std::move(q),
                              [this](ledger::Event& e) { return book_.apply(e); });
}

Result<std::unique_ptr<RentalManager>> RentalManager::open(ManagerDeps deps) {
  if (deps.ledger == nullptr || deps.clock == nullptr)
    return invalidArgument("rental manager: a ledger and a clock are needed");
  std::unique_ptr<RentalManager> m(new RentalManager(std::move(deps)));
  ledger::EventQuery rentals;
  rentals.stream_prefix = proto::stream::kRentalPrefix;
  ledger::EventQuery budget;
  budget.stream = proto::stream::kBudget;
  for (auto& q : {rentals, budget})
    if (auto s = m->replay(q); !s) return s.error();
  for (const auto& [cap, t] : m->book_.budgetReported()) m->over_cap_[cap] = true;
  return m;
}

RentalManager::~RentalManager() { stop(); }

std::vector<std::string> RentalManager::providers() const {
  std::vector<std::string> out;
  out.reserve(deps_.providers.size());
  for (const auto& p : deps_.providers) out.emplace_back(p->name());
  return out;
}

Provider* RentalManager::providerNamed(const std::string& name) const {
  for (const auto& p : deps_.providers)
    if (p->name() == name) return p.get();
  return nullptr;
}

bool RentalManager::reconciled(const std::string& provider) const {
  std::lock_guard lock(mu_);
  return reconciled_.contains(provider);
}

void RentalManager::start() {
  for (const auto& p : deps_.providers) {
    std::string name(p->name());
    threads_.emplace_back([this, name] {
      auto next_reconcile = std::chrono::steady_clock::now();
      for (;;) {
        {
          std::unique_lock lock(wake_mu_);
          if (stopping_) return;
        }
        auto now = std::chrono::steady_clock::now();
        bool due = now >= next_reconcile || !reconciled(name);
        tick(name, due);
        if (due && reconciled(name))
          next_reconcile = now + std::chrono::seconds(deps_.config.reconcile_interval_s);
        std::unique_lock lock(wake_mu_);
        wake_.wait_for(lock, deps_.poll_interval, [&] { return stopping_; });
        if (stopping_) return;
      }
    });
  }
}

void RentalManager::stop() {
  {
    std::lock_guard lock(wake_mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  // A thread waiting between retries of a provider call returns at once.
  for (const auto& p : deps_.providers) p->cancel();
  wake_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

Status RentalManager::appendTo(const std::string& rental_id, std::vector<ledger::NewEvent> events,
                               const std::string& actor) {
  std::lock_guard lock(mu_);
  const Rental* r = book_.find(rental_id);
  int64_t version = r != nullptr ? r->version : 0;
  std::string stream = std::string(proto::stream::kRentalPrefix) + rental_id;
  auto res = deps_.ledger->append(stream, version, actor, std::move(events));
  if (!res) return res.error();
  return applyCommitted(stream, *res);
}

Status RentalManager::applyCommitted(const std::string& stream, const ledger::AppendResult& res) {
  // A duplicate wrote nothing: the book holds those events already.
  if (res.duplicate || res.seqs.empty()) return {};
  // The book applies the events as committed (their time is the ledger's), so that a replay
  // after a restart folds exactly the same values.
  ledger::EventQuery q;
  q.after = res.seqs.front() - 1;
  q.limit = static_cast<int64_t>(res.seqs.size());
  q.stream = stream;
  auto committed = deps_.ledger->read(q);
  if (!committed) return committed.error();
  for (const auto& e : *committed)
    if (auto s = book_.apply(e); !s) return s;
  return {};
}

Status RentalManager::appendBudget(ledger::NewEvent event) {
  std::lock_guard lock(mu_);
  auto res = deps_.ledger->append(proto::stream::kBudget, book_.budgetVersion(), kSystem,
                                  {std::move(event)});
  if (!res) return res.error();
  return applyCommitted(proto::stream::kBudget, *res);
}

std::optional<Rental> RentalManager::snapshot(const std::string& id) const {
  std::lock_guard lock(mu_);
  const Rental* r = book_.find(id);
  if (r == nullptr) return std::nullopt;
  return *r;
}

std::vector<Rental> RentalManager::rentalsOf(const std::string& provider) const {
  std::lock_guard lock(mu_);
  std::vector<Rental> out;
  for (const auto& [id, r] : book_.rentals())
    if (r.provider == provider) out.push_back(r);
  return out;
}

double RentalManager::hourlyRate() const {
  double rate = 0;
  for (const auto& [id, r] : book_.rentals())
    if (mayBill(r.state) && r.state != RentalState::kRequested) rate += r.price_hour_usd;
  return rate;
}

double RentalManager::totalCost(int64_t now) const {
  double total = 0;
  for (const auto& [id, r] : book_.rentals()) total += r.costTo(now);
  return total;
}

std::string RentalManager::keyFileOf(const std::string& rental_id) const {
  if (deps_.key_dir.empty()) return {};
  return (std::filesystem::path(deps_.key_dir) / (rental_id + ".key")).string();
}

Result<bj::object> RentalManager::launch(const LaunchOrder& order, const std::string& actor) {
  auto colon = order.offer.find(':');
  std::string provider_name = order.offer.substr(0, colon);
  Provider* provider = providerNamed(provider_name);
  if (provider == nullptr)
    return Error{Code::kFailedPrecondition,
                 "provider " + provider_name + " is not configured on this server",
                 "provider_not_configured",
                 {}};
  if (!reconciled(provider_name))
    return Error{Code::kUnavailable,
                 "the rentals of " + provider_name +
                     " are being reconciled with the provider; launches wait until that is done",
                 "reconciling",
                 {}};
  if (!deps_.find_offer) return unavailable("no offer catalogue");
  auto offer = deps_.find_offer(order.offer);
  if (!offer) return offer.error();
  if (order.spot && !offer->spot_price_hour_usd && !order.bid_hour_usd)
    return invalidArgument("offer " + offer->id + " has no spot price: launch it on demand");
  double price = order.spot ? order.bid_hour_usd.value_or(offer->spot_price_hour_usd.value_or(0))
                            : offer->price_hour_usd;
  if (!std::isfinite(price) || price <= 0)
    return Error{Code::kFailedPrecondition,
                 "offer " + offer->id + " has no usable price",
                 "offer_unpriced",
                 {}};

  std::lock_guard launch_lock(launch_mu_);
  int64_t now = deps_.clock->nowMs();
  {
    std::lock_guard lock(mu_);
    const double hourly = hourlyRate() + price;
    if (deps_.config.max_hourly_usd && hourly > *deps_.config.max_hourly_usd)
      return budgetError("max_hourly_usd", *deps_.config.max_hourly_usd, hourly, price);
    if (deps_.config.max_total_usd && totalCost(now) >= *deps_.config.max_total_usd)
      return budgetError("max_total_usd", *deps_.config.max_total_usd, totalCost(now), price);
  }

  std::string id = crypto::newId("rental-", 8);
  std::string label = std::string(kLabelPrefix) + id;
  LaunchRequest req;
  req.label = label;
  req.spot = order.spot;
  req.bid_hour_usd = order.bid_hour_usd;
  if (auto it = deps_.config.providers.find(provider_name); it != deps_.config.providers.end())
    req.image = it->second.image;
  if (!order.ssh_key.empty()) req.ssh_public_keys.push_back(order.ssh_key);
  // The server's own key for this rental: written before anything is recorded, so a rental
  // that reaches running can always be enrolled.
  std::string key_file = keyFileOf(id);
  if (!key_file.empty()) {
    auto pair = makeEd25519KeyPair("hwledger-server@" + id);
    if (!pair) return pair.error();
    std::error_code ec;
    std::filesystem::create_directories(deps_.key_dir, ec);
    ::chmod(deps_.key_dir.c_str(), 0700);
    if (auto s = files::writeFileAtomic(key_file, pair->private_openssh, 0600); !s)
      return s.error();
    req.ssh_public_keys.push_back(pair->public_line);
  }

  bj::object requested{{"rental", id},
                       {"provider", provider_name},
                       {"offer_id", offer->offer_id},
                       {"offer", toJson(*offer)},
                       {"name", order.name},
                       {"label", label},
                       {"spot", order.spot},
                       {"quoted_price_hour_usd", price},
                       {"gpu_count", offer->gpu_count}};
  {
    std::lock_guard lock(mu_);
    launching_.insert(id);
  }
  auto done = [&] {
    std::lock_guard lock(mu_);
    launching_.erase(id);
  };
  if (auto s = appendTo(id, {event(ev::kRentalRequested, requested)}, actor); !s) {
    done();
    return s.error();
  }
  auto launched = provider->launch(*offer, req);
  if (!launched) {
    // Recorded as failed; should the provider have made the instance after all, the reconciler
    // finds its label and terminates it.
    auto s = appendTo(
        id, {event(ev::kRentalFailed, {{"rental", id}, {"message", launched.error().message}})},
        actor);
    done();
    if (!s) spdlog::error("rental {}: could not record its failure: {}", id, s.error().message);
    Error e = launched.error();
    if (e.code != Code::kInvalidArgument && e.code != Code::kUnavailable)
      e.code = Code::kBadGateway;
    e.details = json::canonical(bj::value(bj::object{{"rental", id}}));
    return e;
  }
  // The provider's own figure for the instance when it states one (the launch answer, else the
  // instance's status right after), else the offer's.
  if (!launched->price_hour_usd) {
    if (auto st = provider->status(launched->instance_id);
        st && st->price_hour_usd && *st->price_hour_usd > 0)
      launched->price_hour_usd = st->price_hour_usd;
  }
  double recorded = launched->price_hour_usd.value_or(price);
  std::string source = launched->price_hour_usd ? "provider" : (order.spot ? "bid" : "offer");
  auto s = appendTo(id,
                    {event(ev::kRentalLaunched, {{"rental", id},
                                                 {"instance_id", launched->instance_id},
                                                 {"price_hour_usd", recorded},
                                                 {"price_source", source},
                                                 {"adopted", false}})},
                    actor);
  done();
  if (!s) return s.error();
  wake_.notify_all();
  auto r = snapshot(id);
  return r->toJson(deps_.clock->nowMs());
}

Result<bj::object> RentalManager::terminate(const std::string& id, const std::string& actor) {
  auto r = snapshot(id);
  if (!r) return notFound("no rental " + id);
  if (!mayBill(r->state))
    return Error{Code::kConflict,
                 "rental " + id + " is " + std::string(rentalStateName(r->state)),
                 "rental_ended",
                 {}};
  Provider* p = providerNamed(r->provider);
  if (p == nullptr)
    return Error{Code::kFailedPrecondition,
                 "provider " + r->provider + " is not configured",
                 "provider_not_configured",
                 {}};
  if (r->state == RentalState::kRequested) {
    std::lock_guard lock(mu_);
    if (launching_.contains(id))
      return Error{Code::kConflict,
                   "rental " + id + " is being launched; try again in a moment",
                   "rental_launching",
                   {}};
  }
  requestTerminate(*p, *r, "operator", actor);
  wake_.notify_all();
  auto now = snapshot(id);
  return now->toJson(deps_.clock->nowMs());
}

void RentalManager::requestTerminate(Provider& p, const Rental& r, const std::string& reason,
                                     const std::string& actor) {
  if (r.terminate_requested_ms == 0 || r.state != RentalState::kTerminating) {
    auto s = appendTo(
        r.id, {event(ev::kRentalTerminateRequested, {{"rental", r.id}, {"reason", reason}})},
        actor);
    if (!s)
      spdlog::warn("rental {}: could not record the terminate request: {}", r.id,
                   s.error().message);
  }
  if (r.instance_id.empty()) return;
  auto t = p.terminate(r.instance_id);
  {
    std::lock_guard lock(mu_);
    last_terminate_ms_[r.id] = deps_.clock->nowMs();
  }
  if (!t) spdlog::warn("rental {}: terminate: {}", r.id, t.error().message);
}

void RentalManager::tick(const std::string& provider_name, bool reconcile_now) {
  Provider* p = providerNamed(provider_name);
  if (p == nullptr) return;
  if (reconcile_now) {
    auto s = reconcile(*p);
    if (!s) {
      spdlog::warn("rentals: reconciling {} failed: {}", provider_name, s.error().message);
    } else {
      std::lock_guard lock(mu_);
      reconciled_.insert(provider_name);
    }
  }
  int64_t now = deps_.clock->nowMs();
  for (const auto& r : rentalsOf(provider_name)) {
    {
      std::lock_guard lock(mu_);
      if (launching_.contains(r.id)) continue;
    }
    if (mayBill(r.state) && r.state != RentalState::kRequested) follow(*p, r);
    if (auto cur = snapshot(r.id)) accrue(*cur, now);
  }
  checkBudget(now);
}

void RentalManager::follow(Provider& p, const Rental& r) {
  int64_t now = deps_.clock->nowMs();
  switch (r.state) {
    case RentalState::kProvisioning: {
      auto st = p.status(r.instance_id);
      if (!st) {
        if (st.error().code == Code::kNotFound) {
          (void)appendTo(
              r.id,
              {event(ev::kRentalFailed,
                     {{"rental", r.id},
                      {"message", "the provider no longer knows instance " + r.instance_id}}),
               event(ev::kRentalTerminated, {{"rental", r.id}, {"confirmed_by", "status"}})},
              kSystem);
        }
        return;
      }
      if (st->state == InstanceState::kRunning && !st->ssh_host.empty()) {
        (void)appendTo(r.id,
                       {event(ev::kRentalRunning, {{"rental", r.id},
                                                   {"ssh_host", st->ssh_host},
                                                   {"ssh_port", st->ssh_port},
                                                   {"ssh_user", st->ssh_user}})},
                       kSystem);
        return;
      }
      if (st->state == InstanceState::kStopped || st->state == InstanceState::kFailed ||
          st->state == InstanceState::kTerminated) {
        std::string msg = "instance " + std::string(stateName(st->state)) +
                          (st->message.empty() ? "" : ": " + st->message);
        (void)appendTo(r.id, {event(ev::kRentalFailed, {{"rental", r.id}, {"message", msg}})},
                       kSystem);
        if (st->state == InstanceState::kTerminated) {
          (void)appendTo(
              r.id, {event(ev::kRentalTerminated, {{"rental", r.id}, {"confirmed_by", "status"}})},
              kSystem);
        } else {
          requestTerminate(p, r, "failed", kSystem);
        }
        return;
      }
      if (now - r.launched_ms > deps_.config.provision_timeout_s * 1000) {
        (void)appendTo(
            r.id,
            {event(ev::kRentalFailed,
                   {{"rental", r.id},
                    {"message", "still " + std::string(stateName(st->state)) + " after " +
                                    std::to_string(deps_.config.provision_timeout_s) +
                                    " s: terminated"}})},
            kSystem);
        requestTerminate(p, r, "provisioning_timeout", kSystem);
      }
      return;
    }
    case RentalState::kRunning: {
      if (r.host_id.empty() && deps_.enroll && !deps_.key_dir.empty()) enrollHost(r);
      return;  // its health is checked by the reconciler's list
    }
    case RentalState::kTerminating:
    case RentalState::kOrphan:
      if (r.terminate_requested_ms != 0 || r.state == RentalState::kTerminating)
        confirmTerminated(p, r);
      return;
    default:
      return;
  }
}

void RentalManager::confirmTerminated(Provider& p, const Rental& r) {
  int64_t now = deps_.clock->nowMs();
  if (r.instance_id.empty()) {
    (void)appendTo(
        r.id, {event(ev::kRentalTerminated, {{"rental", r.id}, {"confirmed_by", "no_instance"}})},
        kSystem);
    return;
  }
  auto st = p.status(r.instance_id);
  bool gone = (!st && st.error().code == Code::kNotFound) ||
              (st && st->state == InstanceState::kTerminated);
  if (gone) {
    // Confirmed by status; the provider's list must agree before it is recorded.
    auto all = p.list();
    if (!all) return;
    for (const auto& i : *all) {
      if (i.instance_id == r.instance_id && i.state != InstanceState::kTerminated) return;
    }
    (void)appendTo(
        r.id,
        {event(ev::kRentalTerminated, {{"rental", r.id}, {"confirmed_by", "status_and_list"}})},
        kSystem);
    if (!r.host_id.empty() && deps_.retire_host)
      deps_.retire_host(r.host_id, "rental " + r.id + " terminated");
    return;
  }
  if (!st) return;  // no answer: ask again next time
  int64_t last = 0;
  {
    std::lock_guard lock(mu_);
    last = last_terminate_ms_[r.id];
  }
  if (r.state == RentalState::kTerminating &&
      now - r.terminate_requested_ms > deps_.config.terminate_confirm_timeout_s * 1000) {
    (void)appendTo(
        r.id,
        {event(ev::kRentalOrphanFound,
               {{"rental", r.id},
                {"provider", r.provider},
                {"instance_id", r.instance_id},
                {"label", r.label},
                {"reason", "terminate acknowledged but the provider still lists it " +
                               st->provider_status + " after " +
                               std::to_string(deps_.config.terminate_confirm_timeout_s) + " s"},
                {"terminating", true}})},
        kSystem);
  }
  if (now - last >= deps_.terminate_retry.count()) {
    auto t = p.terminate(r.instance_id);
    std::lock_guard lock(mu_);
    last_terminate_ms_[r.id] = now;
    if (!t) spdlog::warn("rental {}: terminate again: {}", r.id, t.error().message);
  }
}

Status RentalManager::reconcile(Provider& p) {
  auto listed = p.list();
  if (!listed) return listed.error();
  std::string provider(p.name());
  std::map<std::string, const Instance*> by_id;
  for (const auto& i : *listed) by_id[i.instance_id] = &i;
  for (const auto& inst : *listed) {
    if (inst.state == InstanceState::kTerminated) continue;
    auto rid = RentalBook::rentalIdOfLabel(inst.label);
    if (!inst.label.starts_with(kLabelPrefix)) continue;  // not ours: the account's own machines
    std::optional<Rental> r = rid ? snapshot(*rid) : std::nullopt;
    {
      std::lock_guard lock(mu_);
      if (rid && launching_.contains(*rid)) continue;
    }
    if (!r || r->provider != provider) {
      std::string oid = orphanId(provider, inst.instance_id);
      if (auto known = snapshot(oid); known && mayBill(known->state)) continue;  // reported
      bj::object d{{"rental", oid},
                   {"provider", provider},
                   {"instance_id", inst.instance_id},
                   {"label", inst.label},
                   {"reason", "an instance with our label that the ledger never launched"},
                   {"price_hour_usd", inst.price_hour_usd.value_or(0)},
                   {"gpu_count", inst.gpu_count},
                   {"terminating", deps_.config.terminate_orphans}};
      // Reported again only after it was confirmed gone and came back (a new stream version).
      if (auto s = appendTo(oid, {event(ev::kRentalOrphanFound, d)}, kSystem); !s) continue;
      if (deps_.config.terminate_orphans) {
        if (auto cur = snapshot(oid)) requestTerminate(p, *cur, "orphan", kSystem);
      }
      continue;
    }
    switch (r->state) {
      case RentalState::kRequested: {
        // Launched before a crash, never recorded: adopt it (never launch again).
        double price = inst.price_hour_usd.value_or(r->price_hour_usd);
        (void)appendTo(r->id,
                       {event(ev::kRentalLaunched,
                              {{"rental", r->id},
                               {"instance_id", inst.instance_id},
                               {"price_hour_usd", price},
                               {"price_source", inst.price_hour_usd ? "provider" : "offer"},
                               {"adopted", true}})},
                       kSystem);
        break;
      }
      case RentalState::kFailed:
      case RentalState::kTerminated: {
        bool failed = r->state == RentalState::kFailed;
        (void)appendTo(
            r->id,
            {event(ev::kRentalOrphanFound,
                   {{"rental", r->id},
                    {"provider", provider},
                    {"instance_id", inst.instance_id},
                    {"label", inst.label},
                    {"reason", failed ? "the launch was recorded failed but the instance exists"
                                      : "recorded terminated but the provider lists it " +
                                            inst.provider_status},
                    {"price_hour_usd", inst.price_hour_usd.value_or(r->price_hour_usd)},
                    {"gpu_count", inst.gpu_count},
                    {"terminating", true}})},
            kSystem);
        // Ours, and meant to be gone: end it.
        if (auto cur = snapshot(r->id)) requestTerminate(p, *cur, "orphan", kSystem);
        break;
      }
      default:
        break;
    }
  }
  // Rentals the ledger says may bill that the provider no longer lists.
  for (const auto& r : rentalsOf(provider)) {
    {
      std::lock_guard lock(mu_);
      if (launching_.contains(r.id)) continue;
    }
    if (r.state == RentalState::kRequested) {
      // Recorded before a crash, and the provider has no instance with its label.
      (void)appendTo(
          r.id,
          {event(ev::kRentalFailed, {{"rental", r.id},
                                     {"message",
                                      "the launch was interrupted and the provider has no instance "
                                      "labelled " +
                                          r.label}})},
          kSystem);
      continue;
    }
    if (!mayBill(r.state) || r.instance_id.empty()) continue;
    auto it = by_id.find(r.instance_id);
    if (it != by_id.end() && it->second->state != InstanceState::kTerminated) {
      if (r.state == RentalState::kRunning && (it->second->state == InstanceState::kStopped ||
                                               it->second->state == InstanceState::kFailed)) {
        (void)appendTo(
            r.id,
            {event(ev::kRentalFailed,
                   {{"rental", r.id},
                    {"message",
                     "instance " + it->second->provider_status +
                         (it->second->message.empty() ? "" : ": " + it->second->message)}})},
            kSystem);
        requestTerminate(p, r, "failed", kSystem);
      }
      continue;
    }
    auto st = p.status(r.instance_id);
    if (st && st->state != InstanceState::kTerminated) continue;
    if (!st && st.error().code != Code::kNotFound) continue;
    std::vector<ledger::NewEvent> evs;
    if (r.state == RentalState::kProvisioning || r.state == RentalState::kRunning)
      evs.push_back(
          event(ev::kRentalFailed,
                {{"rental", r.id}, {"message", "the provider no longer lists the instance"}}));
    evs.push_back(event(ev::kRentalTerminated, {{"rental", r.id}, {"confirmed_by", "list"}}));
    (void)appendTo(r.id, std::move(evs), kSystem);
    if (!r.host_id.empty() && deps_.retire_host)
      deps_.retire_host(r.host_id, "rental " + r.id + " ended");
  }
  // The provider's billed figures, for the cost comparison.
  for (const auto& inst : *listed) {
    auto rid = RentalBook::rentalIdOfLabel(inst.label);
    if (!rid || !inst.billed_usd) continue;
    auto r = snapshot(*rid);
    if (!r || r->launched_ms == 0) continue;
    double ledger_usd = r->costTo(deps_.clock->nowMs());
    double provider_usd = *inst.billed_usd;
    double base = std::max(ledger_usd, provider_usd);
    if (base <= 0.01) continue;
    double diff = std::fabs(ledger_usd - provider_usd) / base;
    // Once per figure the provider reports, not once per reconcile.
    bool reported =
        r->provider_billed_usd && roundUsd(*r->provider_billed_usd) == roundUsd(provider_usd);
    if (diff > 0.01 && !reported) {
      (void)appendTo(
          r->id,
          {event(ev::kCostDiscrepancy, {{"rental", r->id},
                                        {"ledger_usd", roundUsd(ledger_usd)},
                                        {"provider_usd", roundUsd(provider_usd)},
                                        {"difference_pct", std::round(diff * 10000) / 100}})},
          kSystem);
    }
  }
  return {};
}

void RentalManager::accrue(const Rental& r, int64_t now) {
  if (r.launched_ms == 0) return;
  int64_t from = std::max(r.accrued_to_ms, r.launched_ms);
  int64_t end = r.ended_ms != 0 ? r.ended_ms : now;
  for (;;) {
    int64_t to = 0;
    if (from + kHourMs <= end) {
      to = from + kHourMs;
    } else if (r.ended_ms != 0 && end > from) {
      to = end;  // pro rata at the end
    } else {
      return;
    }
    double amount = roundUsd(r.price_hour_usd * static_cast<double>(to - from) / kHourMs);
    bj::array jobs;
    if (!r.host_id.empty() && deps_.job_gpu_ms && r.gpu_count > 0) {
      double total_gpu_ms = static_cast<double>(to - from) * r.gpu_count;
      for (const auto& [job, gpu_ms] : deps_.job_gpu_ms(r.host_id, from, to)) {
        if (gpu_ms <= 0) continue;
        jobs.push_back(bj::object{
            {"job", job},
            {"gpu_ms", gpu_ms},
            {"amount_usd", roundUsd(amount * static_cast<double>(gpu_ms) / total_gpu_ms)}});
      }
    }
    bj::object d{{"rental", r.id},
                 {"provider", r.provider},
                 {"host_id", r.host_id},
                 {"from_ms", from},
                 {"to_ms", to},
                 {"price_hour_usd", r.price_hour_usd},
                 {"price_source", r.price_source},
                 {"amount_usd", amount},
                 {"jobs", std::move(jobs)}};
    if (auto s = appendTo(r.id,
                          {event(ev::kCostAccrued, d, "cost-" + r.id + "-" + std::to_string(from))},
                          kSystem);
        !s) {
      spdlog::warn("rental {}: cost.accrued: {}", r.id, s.error().message);
      return;
    }
    from = to;
  }
}

void RentalManager::checkBudget(int64_t now) {
  std::vector<std::pair<std::string, std::pair<double, double>>> over;
  {
    std::lock_guard lock(mu_);
    auto check = [&](const std::string& cap, const std::optional<double>& limit, double value) {
      if (!limit) return;
      bool is_over = value >= *limit;
      if (is_over && !over_cap_[cap]) over.push_back({cap, {*limit, value}});
      over_cap_[cap] = is_over;
    };
    check("max_hourly_usd", deps_.config.max_hourly_usd, hourlyRate());
    check("max_total_usd", deps_.config.max_total_usd, totalCost(now));
  }
  for (const auto& [cap, lv] : over) {
    bool terminate = deps_.config.terminate_on_budget;
    (void)appendBudget(event(ev::kBudgetExceeded, {{"cap", cap},
                                                   {"limit_usd", lv.first},
                                                   {"value_usd", roundUsd(lv.second)},
                                                   {"action", terminate ? "terminate" : "none"}}));
    if (!terminate) continue;
    for (const auto& p : deps_.providers) {
      for (const auto& r : rentalsOf(std::string(p->name()))) {
        if (mayBill(r.state) && r.state != RentalState::kTerminating &&
            r.state != RentalState::kRequested)
          requestTerminate(*p, r, "budget", kSystem);
      }
    }
  }
}

void RentalManager::enrollHost(const Rental& r) {
  int64_t now = deps_.clock->nowMs();
  {
    std::lock_guard lock(mu_);
    if (enroll_after_ms_[r.id] > now) return;
    enroll_after_ms_[r.id] = now + 15'000;  // an instance's sshd may take a while to come up
  }
  auto host = deps_.enroll(r, keyFileOf(r.id));
  if (!host) {
    spdlog::warn("rental {}: enrolling its host over SSH: {}", r.id, host.error().message);
    return;
  }
  (void)appendTo(r.id, {event(ev::kRentalHostEnrolled, {{"rental", r.id}, {"host_id", *host}})},
                 kSystem);
}

bj::array RentalManager::list() const {
  std::lock_guard lock(mu_);
  int64_t now = deps_.clock->nowMs();
  bj::array out;
  for (const auto& [id, r] : book_.rentals()) out.push_back(r.toJson(now));
  return out;
}

bj::object RentalManager::budget() const {
  std::lock_guard lock(mu_);
  const int64_t now = deps_.clock->nowMs();
  auto cap = [](const std::optional<double>& v) { return v ? bj::value(*v) : bj::value(nullptr); };
  return bj::object{{"hourly_usd", roundUsd(hourlyRate())},
                    {"max_hourly_usd", cap(deps_.config.max_hourly_usd)},
                    {"total_usd", roundUsd(totalCost(now))},
                    {"max_total_usd", cap(deps_.config.max_total_usd)},
                    {"terminate_on_budget", deps_.config.terminate_on_budget}};
}

Result<bj::object> RentalManager::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  const Rental* r = book_.find(id);
  if (r == nullptr) return notFound("no rental " + id);
  return r->toJson(deps_.clock->nowMs());
}

Result<bj::object> RentalManager::costs(int64_t from_ms, int64_t to_ms,
                                        const std::string& group_by) const {
  if (group_by != "provider" && group_by != "rental" && group_by != "host" && group_by != "job")
    return invalidArgument("group_by must be provider, rental, host or job");
  if (to_ms <= from_ms) return invalidArgument("to must be after from");
  std::lock_guard lock(mu_);
  std::map<std::string, double> sums;
  std::map<std::string, std::set<int64_t>> seqs;
  double total = 0;
  for (const auto& c : book_.costs()) {
    bool job_row = !c.job_id.empty();
    if ((group_by == "job") != job_row) continue;
    int64_t a = std::max(c.from_ms, from_ms);
    int64_t b = std::min(c.to_ms, to_ms);
    if (b <= a || c.to_ms <= c.from_ms) continue;
    double part =
        c.amount_usd * static_cast<double>(b - a) / static_cast<double>(c.to_ms - c.from_ms);
    std::string key = group_by == "provider" ? c.provider
                      : group_by == "rental" ? c.rental_id
                      : group_by == "host"   ? (c.host_id.empty() ? "(none)" : c.host_id)
                                             : c.job_id;
    sums[key] += part;
    seqs[key].insert(c.seq);
    if (!job_row) total += part;
  }
  bj::array groups;
  for (const auto& [k, v] : sums) {
    bj::array s;
    for (auto q : seqs[k]) s.push_back(q);
    groups.push_back(
        bj::object{{group_by, k}, {"amount_usd", roundUsd(v)}, {"event_seqs", std::move(s)}});
  }
  bj::object out{{"from_ms", from_ms},
                 {"to_ms", to_ms},
                 {"group_by", group_by},
                 {"groups", std::move(groups)}};
  if (group_by != "job") out["total_usd"] = roundUsd(total);
  return out;
}

}  // namespace hwl::rentals
