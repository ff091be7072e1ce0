// Operator REST routes over the ledger.
#include "api.hpp"

#include <boost/json/serialize.hpp>
#include <charconv>

#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/plan_json.hpp"
#include "ledger/rows.hpp"

namespace hwl::api {

namespace bj = boost::json;

namespace {

constexpr int64_t kMaxTtlS = 10LL * 365 * 24 * 3600;

bj::object tokenJson(const ledger::TokenRow& t) {
  bj::object o{{"id", t.id},
               {"role", ledger::roleName(t.role)},
               {"note", t.note},
               {"created_ms", t.created_ms},
               {"created_by", t.created_by}};
  o["expires_ms"] = t.expires_ms ? bj::value(*t.expires_ms) : bj::value(nullptr);
  o["revoked_ms"] = t.revoked_ms ? bj::value(*t.revoked_ms) : bj::value(nullptr);
  return o;
}

bj::object enrollTokenJson(const ledger::EnrollTokenRow& t) {
  bj::object o{{"id", t.id},
               {"kind", "enroll"},
               {"host_hint", t.host_hint},
               {"created_ms", t.created_ms},
               {"expires_ms", t.expires_ms}};
  o["used_ms"] = t.used_ms ? bj::value(*t.used_ms) : bj::value(nullptr);
  o["revoked_ms"] = t.revoked_ms ? bj::value(*t.revoked_ms) : bj::value(nullptr);
  return o;
}

constexpr size_t kMaxTokenIdBytes = 64;

}  // namespace

Result<CreatedToken> createToken(ledger::Ledger& ledger, const Clock& clock, ledger::Role role,
                                 std::optional<int64_t> ttl_s, std::string note,
                                 std::string actor) {
  CreatedToken t;
  t.id = crypto::newId("tok_", 8);
  std::string secret = crypto::base64url(crypto::randomBytes(32));
  t.token = t.id + "." + secret;
  t.role = role;
  if (ttl_s) t.expires_ms = clock.nowMs() + *ttl_s * 1000;
  bj::object data{{"id", t.id},
                  {"role", ledger::roleName(role)},
                  {"note", note},
                  {"secret_sha256", Authenticator::secretHash(secret)}};
  data["expires_ms"] = t.expires_ms ? bj::value(*t.expires_ms) : bj::value(nullptr);
  auto r = ledger.append("token/" + t.id, ledger::kNoStream, std::move(actor),
                         {ledger::NewEvent{"", "token.created", std::move(data)}});
  if (!r) return r.error();
  t.seq = r->seqs.front();
  return t;
}

Api::Api(ledger::Ledger& ledger, const Clock& clock, ApiSettings settings,
         const server::FleetCa* ca)
    : ledger_(ledger),
      clock_(clock),
      settings_(std::move(settings)),
      start_ms_(clock.nowMs()),
      auth_(ledger, clock, settings_.auth, ca),
      ca_(ca) {
  addCoreRoutes(routes_, this);
  if (ca_ != nullptr) addPkiRoutes(routes_, this);
  loadDenylist();
}

void Api::addCoreRoutes(http::RouteTable& t, Api* self) {
  t.add({"GET", "/v1/health", "public", 0,
               [self](auto&, auto&) { return self->health(); }});
  t.add({"POST", "/v1/tokens", "admin", 16 * 1024,
               [self](auto& r, auto&) { return self->createToken(r); }});
  t.add({"GET", "/v1/tokens", "admin", 0,
               [self](auto& r, auto&) { return self->listTokens(r); }});
  t.add({"DELETE", "/v1/tokens/{id}", "admin", 0,
               [self](auto& r, auto& p) { return self->revokeToken(r, p.at("id")); }});
  t.add({"GET", "/v1/events", "viewer", 0,
               [self](auto& r, auto&) { return self->events(r); }});
  t.add({"GET", "/v1/events/stream", "viewer", 0,
               [self](auto& r, auto&) { return self->eventStream(r); }});
  t.add({"GET", "/v1/ledger/verify", "viewer", 0,
               [self](auto& r, auto&) { return self->verify(r); }});
  t.add({"GET", "/v1/ledger/checkpoints", "viewer", 0,
               [self](auto& r, auto&) { return self->checkpoints(r); }});
  t.add({"POST", "/v1/plan", "viewer", 256 * 1024,
               [self](auto& r, auto&) { return self->plan(r); }});
  t.add({"GET", "/v1/hosts", "viewer", 0,
               [self](auto& r, auto&) { return self->hosts(r); }});
  t.add({"GET", "/v1/hosts/{id}", "viewer", 0,
               [self](auto& r, auto& p) { return self->host(r, p.at("id")); }});
}

http::RouteTable Api::allRoutes(size_t default_body_limit) {
  http::RouteTable t(default_body_limit);
  addCoreRoutes(t, nullptr);
  addPkiRoutes(t, nullptr);
  addFleetRoutes(t, nullptr);
  return t;
}

http::Response Api::handle(http::Request& req) {
  auto r = routes_.dispatch(req);
  if (r.status == 429)
    r.headers.emplace_back("Retry-After", std::to_string(auth_.retryAfterS(req.remote_addr)));
  return r;
}

size_t Api::bodyLimit(std::string_view method, std::string_view path) const {
  return routes_.bodyLimit(method, path);
}

Result<http::Reply> Api::health() {
  return http::ok(bj::object{{"status", "ok"},
                                      {"version", settings_.version},
                                      {"uptime_s", (clock_.nowMs() - start_ms_) / 1000},
                                      {"events", ledger_.headSeq()}});
}

Result<http::Reply> Api::createToken(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kAdmin);
  if (!who) return who.error();
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  if (auto s = json::checkKeys(*body, {"role", "ttl_s", "note"}); !s)
    return s.error();
  auto role_s = json::requiredString(*body, "role");
  if (!role_s) return role_s.error();
  auto role = ledger::parseRole(*role_s);
  if (!role)
    return 
        invalidArgument("field \"role\" must be one of viewer, operator, admin");
  auto ttl = json::optionalInt(*body, "ttl_s");
  if (!ttl) return ttl.error();
  if (*ttl && (**ttl < 1 || **ttl > kMaxTtlS))
    return invalidArgument("field \"ttl_s\" must be between 1 and " +
                                               std::to_string(kMaxTtlS));
  auto note = json::optionalString(*body, "note");
  if (!note) return note.error();
  if (*note && (*note)->size() > 256)
    return invalidArgument("field \"note\" is longer than 256 bytes");
  auto t = api::createToken(ledger_, clock_, *role, *ttl, note->value_or(""), who->actor);
  if (!t) return t.error();
  bj::object out{{"id", t->id}, {"token", t->token}, {"role", ledger::roleName(t->role)}};
  out["expires_ms"] = t->expires_ms ? bj::value(*t->expires_ms) : bj::value(nullptr);
  out["note"] = note->value_or("");
  out["seq"] = t->seq;
  return http::created(out);
}

Result<http::Reply> Api::listTokens(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kAdmin);
  if (!who) return who.error();
  auto rows = ledger_.withReader([](ledger::ReadView& view) { return view.listTokens(); });
  if (!rows) return rows.error();
  auto enroll = ledger_.withReader([](ledger::ReadView& view) { return view.listEnrollTokens(); });
  if (!enroll) return enroll.error();
  bj::array arr;
  for (const auto& t : *rows) arr.push_back(tokenJson(t));
  bj::array earr;
  for (const auto& t : *enroll) earr.push_back(enrollTokenJson(t));
  return http::ok(bj::object{{"tokens", std::move(arr)}, {"enroll_tokens", std::move(earr)}});
}

Result<http::Reply> Api::revokeToken(http::Request& req, const std::string& id) {
  auto who = auth_.authorize(req, ledger::Role::kAdmin);
  if (!who) return who.error();
  if (id.empty() || id.size() > kMaxTokenIdBytes)
    return notFound("no token \"" + id.substr(0, kMaxTokenIdBytes) + "\"");
  // The stream version is read before the token's state: a revocation (or, for an enrollment
  // token, an enrollment) that commits after this read makes the append below fail, and one that
  // committed before it is seen by the checks. Reading it after the checks would let a second
  // revocation that lost the race append at the first one's version.
  auto version = ledger_.streamVersion("token/" + id);
  if (!version) return version.error();
  // Enrollment tokens ("enr_...") live in their own projection; both are revoked the same way.
  bool is_enroll = id.rfind("enr_", 0) == 0;
  if (is_enroll) {
    auto row = ledger_.withReader([&](ledger::ReadView& view) { return view.findEnrollToken(id); });
    if (!row) return row.error();
    if (!row->has_value()) return notFound("no token \"" + id + "\"");
    if ((*row)->revoked_ms)
      return conflict("token \"" + id + "\" is already revoked");
    if ((*row)->used_ms)
      return conflict("enrollment token \"" + id + "\" was already used");
  } else {
    auto row = ledger_.withReader([&](ledger::ReadView& view) { return view.findToken(id); });
    if (!row) return row.error();
    if (!row->has_value()) return notFound("no token \"" + id + "\"");
    if ((*row)->revoked_ms)
      return conflict("token \"" + id + "\" is already revoked");
  }
  auto r = ledger_.append("token/" + id, *version, who->actor,
                          {ledger::NewEvent{"", "token.revoked", bj::object{{"id", id}}}});
  if (!r) {
    if (r.error().code == Code::kConflict)
      return conflict("token \"" + id +
                                          "\" was revoked or used while this request revoked it");
    return r.error();
  }
  if (is_enroll) {
    auto after = ledger_.withReader([&](ledger::ReadView& view) { return view.findEnrollToken(id); });
    if (!after || !after->has_value()) return internal("token vanished");
    auto out = enrollTokenJson(**after);
    out["seq"] = r->seqs.front();
    return http::ok(out);
  }
  auto after = ledger_.withReader([&](ledger::ReadView& view) { return view.findToken(id); });
  if (!after || !after->has_value()) return internal("token vanished");
  auto out = tokenJson(**after);
  out["seq"] = r->seqs.front();
  return http::ok(out);
}

Result<http::Reply> Api::events(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  auto after = http::queryInt(req, "after", 0, INT64_MAX);
  if (!after) return after.error();
  auto limit = http::queryInt(req, "limit", 1, INT64_MAX);
  if (!limit) return limit.error();
  ledger::EventQuery q;
  q.after = after->value_or(0);
  q.limit = std::min<int64_t>(limit->value_or(100), 1000);
  if (auto it = req.query.find("stream"); it != req.query.end()) q.stream = it->second;
  if (auto it = req.query.find("type"); it != req.query.end()) q.type = it->second;
  auto evs = ledger_.read(q);
  if (!evs) return evs.error();
  bj::array arr;
  int64_t next = q.after;
  for (const auto& e : *evs) {
    arr.push_back(ledger::eventToJson(e));
    next = e.seq;
  }
  return http::ok(bj::object{{"events", std::move(arr)}, {"next_after", next}});
}

Result<http::Reply> Api::eventStream(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  auto after = http::queryInt(req, "after", 0, INT64_MAX);
  if (!after) return after.error();
  int64_t cursor = after->value_or(0);
  // An EventSource reconnecting sends the last id it saw.
  if (auto last = req.header("last-event-id"); last && !after->has_value()) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(last->data(), last->data() + last->size(), v);
    if (ec == std::errc() && v >= 0) cursor = v;
  }
  std::string stream_filter, type_filter;
  if (auto it = req.query.find("stream"); it != req.query.end()) stream_filter = it->second;
  if (auto it = req.query.find("type"); it != req.query.end()) type_filter = it->second;
  auto slot = streams_.acquire(who->actor, who->role == ledger::Role::kAdmin);
  if (!slot) return slot.error();
  http::Response r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-store");
  auto heartbeat = settings_.stream_heartbeat;
  r.stream = [this, cursor, stream_filter, type_filter, heartbeat,
              slot = *slot](http::StreamWriter& w) mutable {
    if (!w.write(": hwledger events from seq " + std::to_string(cursor + 1) + "\n\n")) return;
    auto last_write = std::chrono::steady_clock::now();
    while (!w.stopping()) {
      // Everything up to `head` is visible to the read below, so an empty answer means nothing
      // up to `head` matched and the cursor may move there.
      int64_t head = ledger_.headSeq();
      ledger::EventQuery q{cursor, 500, stream_filter, type_filter};
      auto evs = ledger_.read(q);
      if (!evs) return;
      if (!evs->empty()) {
        std::string out;
        for (const auto& e : *evs) {
          out += "id: " + std::to_string(e.seq) + "\nevent: " + e.type +
                 "\ndata: " + bj::serialize(ledger::eventToJson(e)) + "\n\n";
          cursor = e.seq;
        }
        if (!w.write(out)) return;
        last_write = std::chrono::steady_clock::now();
        continue;
      }
      cursor = std::max(cursor, head);
      ledger_.waitForHead(cursor, std::chrono::milliseconds(500));
      if (std::chrono::steady_clock::now() - last_write >= heartbeat) {
        if (!w.write(": keep-alive\n\n")) return;
        last_write = std::chrono::steady_clock::now();
      }
    }
  };
  return http::raw(std::move(r));
}

Result<http::Reply> Api::verify(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  return http::ok(ledger_.verify().toJson());
}

Result<http::Reply> Api::checkpoints(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kViewer);
  if (!who) return who.error();
  auto after = http::queryInt(req, "after", 0, INT64_MAX);
  if (!after) return after.error();
  auto limit = http::queryInt(req, "limit", 1, INT64_MAX);
  if (!limit) return limit.error();
  auto cps = ledger_.checkpoints(after->value_or(0), std::min<int64_t>(limit->value_or(100), 1000));
  if (!cps) return cps.error();
  bj::array arr;
  for (const auto& c : *cps) arr.push_back(ledger::checkpointToJson(c));
  return http::ok(bj::object{{"checkpoints", std::move(arr)}});
}

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

}  // namespace hwl::api
