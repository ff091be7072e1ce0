// Tokens: API tokens (created with a one-time secret, listed, revoked) and the listing and
// revocation of enrollment tokens.
#include <boost/json.hpp>
#include <boost/json/parse.hpp>

#include "api.hpp"
#include "hwl/crypto.hpp"
#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"
#include "ledger/rows.hpp"
#include "params.hpp"

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
                         {ledger::NewEvent{"", proto::event::kTokenCreated, std::move(data)}});
  if (!r) return r.error();
  t.seq = r->seqs.front();
  return t;
}

Result<http::Reply> Api::createToken(http::Request& req) {
  auto who = auth_.authorize(req, ledger::Role::kAdmin);
  if (!who) return who.error();
  auto body = json::parseObject(req.body);
  if (!body) return body.error();
  if (auto s = json::checkKeys(*body, {"role", "ttl_s", "note"}); !s) return s.error();
  auto role_s = json::requiredString(*body, "role");
  if (!role_s) return role_s.error();
  auto role = ledger::parseRole(*role_s);
  if (!role) return invalidArgument("field \"role\" must be one of viewer, operator, admin");
  auto ttl = json::optionalInt(*body, "ttl_s");
  if (!ttl) return ttl.error();
  if (*ttl && (**ttl < 1 || **ttl > kMaxTtlS))
    return invalidArgument("field \"ttl_s\" must be between 1 and " + std::to_string(kMaxTtlS));
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
    if ((*row)->revoked_ms) return conflict("token \"" + id + "\" is already revoked");
    if ((*row)->used_ms) return conflict("enrollment token \"" + id + "\" was already used");
  } else {
    auto row = ledger_.withReader([&](ledger::ReadView& view) { return view.findToken(id); });
    if (!row) return row.error();
    if (!row->has_value()) return notFound("no token \"" + id + "\"");
    if ((*row)->revoked_ms) return conflict("token \"" + id + "\" is already revoked");
  }
  auto r =
      ledger_.append("token/" + id, *version, who->actor,
                     {ledger::NewEvent{"", proto::event::kTokenRevoked, bj::object{{"id", id}}}});
  if (!r) {
    if (r.error().code == Code::kConflict)
      return conflict("token \"" + id + "\" was revoked or used while this request revoked it");
    return r.error();
  }
  if (is_enroll) {
    auto after =
        ledger_.withReader([&](ledger::ReadView& view) { return view.findEnrollToken(id); });
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

}  // namespace hwl::api
