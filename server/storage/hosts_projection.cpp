// Applies enrollment and host life-cycle events to their tables.
#include "hosts_projection.hpp"

#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::storage {

namespace {

Result<std::string> str(const boost::json::object& o, std::string_view k) {
  return json::requiredString(o, k);
}

int64_t num(const boost::json::object& o, std::string_view k) {
  auto v = json::optionalInt(o, k);
  return v && *v ? **v : 0;
}

}  // namespace

Status EnrollTokensProjection::apply(sqlite::Db& db, const Event& e) {
  if (e.type != proto::event::kTokenCreated && e.type != proto::event::kTokenUsed &&
      e.type != proto::event::kTokenRevoked)
    return {};
  auto d = json::parseObject(e.data);
  if (!d) return d.error();
  auto id = str(*d, "id");
  if (!id) return id.error();
  if (e.type == proto::event::kTokenCreated) {
    auto kind = json::optionalString(*d, "kind");
    if (!kind || !*kind || **kind != "enroll") return {};
    auto hash = str(*d, "secret_sha256");
    if (!hash) return hash.error();
    auto hint = json::optionalString(*d, "host_hint");
    auto st = db.prepare(
        "INSERT INTO enroll_tokens(id, secret_sha256, host_hint, created_ms, created_by, "
        "expires_ms) VALUES(?,?,?,?,?,?)");
    if (!st) return st.error();
    st->bind(1, *id)
        .bind(2, *hash)
        .bind(3, hint && *hint ? **hint : "")
        .bind(4, e.time_ms)
        .bind(5, e.actor)
        .bind(6, num(*d, "expires_ms"));
    return st->run();
  }
  if (e.type == proto::event::kTokenRevoked) {
    // API tokens are revoked with the same event; for them no row matches here.
    auto st =
        db.prepare("UPDATE enroll_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
    if (!st) return st.error();
    st->bind(1, e.time_ms).bind(2, *id);
    return st->run();
  }
  auto host = json::optionalString(*d, "host_id");
  auto st = db.prepare("UPDATE enroll_tokens SET used_ms = ?, used_by_host = ? WHERE id = ?");
  if (!st) return st.error();
  st->bind(1, e.time_ms).bind(2, host && *host ? **host : "").bind(3, *id);
  return st->run();
}

Status HostsProjection::apply(sqlite::Db& db, const Event& e) {
  if (e.type.rfind("host.", 0) != 0) return {};
  auto d = json::parseObject(e.data);
  if (!d) return d.error();
  auto id = str(*d, "host_id");
  if (!id) return id.error();
  auto cert = [&](const std::string& serial, const std::string& spki, int64_t not_after) {
    auto st = db.prepare(
        "INSERT OR REPLACE INTO host_certs(serial, host_id, spki, not_after_ms, issued_ms) "
        "VALUES(?,?,?,?,?)");
    if (!st) return Status(st.error());
    st->bind(1, serial).bind(2, *id).bind(3, spki).bind(4, not_after).bind(5, e.time_ms);
    return st->run();
  };
  auto setState = [&](const char* state) {
    auto st = db.prepare(
        "UPDATE hosts SET state = ?, state_changed_ms = ? WHERE id = ? AND state != 'revoked'");
    if (!st) return Status(st.error());
    st->bind(1, state).bind(2, e.time_ms).bind(3, *id);
    return st->run();
  };
  if (e.type == proto::event::kHostEnrolled || e.type == proto::event::kHostEnrolledSsh) {
    auto name = str(*d, "name");
    if (!name) return name.error();
    auto addr = json::optionalString(*d, "address");
    std::string platform = "{}";
    if (auto it = d->find("platform"); it != d->end()) platform = json::canonical(it->value());
    auto serial = json::optionalString(*d, "cert_serial");
    auto spki = json::optionalString(*d, "cert_spki");
    std::string ssh;
    if (auto it = d->find("ssh"); it != d->end() && it->value().is_object())
      ssh = json::canonical(it->value());
    auto st = db.prepare(
        "INSERT INTO hosts(id, name, kind, address, state, enrolled_ms, state_changed_ms, "
        "cert_serial, cert_spki, cert_not_after_ms, platform, ssh) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st) return st.error();
    st->bind(1, *id)
        .bind(2, *name)
        .bind(3, e.type == proto::event::kHostEnrolled ? "agent" : "ssh")
        .bind(4, addr && *addr ? **addr : "")
        .bind(5, "enrolled")
        .bind(6, e.time_ms)
        .bind(7, e.time_ms)
        .bind(8, serial && *serial ? **serial : "")
        .bind(9, spki && *spki ? **spki : "")
        .bind(10, num(*d, "cert_not_after_ms"))
        .bind(11, platform)
        .bind(12, ssh);
    if (auto s = st->run(); !s) return s;
    if (serial && *serial)
      return cert(**serial, spki && *spki ? **spki : "", num(*d, "cert_not_after_ms"));
    return {};
  }
  if (e.type == proto::event::kHostCertRenewed) {
    auto serial = str(*d, "cert_serial");
    auto spki = str(*d, "cert_spki");
    if (!serial) return serial.error();
    if (!spki) return spki.error();
    auto st = db.prepare(
        "UPDATE hosts SET cert_serial = ?, cert_spki = ?, cert_not_after_ms = ? WHERE id = ?");
    if (!st) return st.error();
    st->bind(1, *serial).bind(2, *spki).bind(3, num(*d, "cert_not_after_ms")).bind(4, *id);
    if (auto s = st->run(); !s) return s;
    return cert(*serial, *spki, num(*d, "cert_not_after_ms"));
  }
  if (e.type == proto::event::kHostRevoked) {
    auto st = db.prepare(
        "UPDATE hosts SET state = 'revoked', state_changed_ms = ?, revoked_ms = ? WHERE id = ?");
    if (!st) return st.error();
    st->bind(1, e.time_ms).bind(2, e.time_ms).bind(3, *id);
    return st->run();
  }
  if (e.type == proto::event::kHostReachable) return setState("reachable");
  if (e.type == proto::event::kHostUnreachable) return setState("unreachable");
  return {};
}

namespace {
constexpr const char* kHostCols =
    "SELECT id, name, kind, address, state, enrolled_ms, state_changed_ms, cert_serial, "
    "cert_spki, cert_not_after_ms, platform, revoked_ms, ssh FROM hosts";

HostRow hostOf(const sqlite::Stmt& st) {
  HostRow h;
  h.id = st.text(0);
  h.name = st.text(1);
  h.kind = proto::parseHostKind(st.text(2)).value_or(proto::HostKind::kUnknown);
  h.address = st.text(3);
  h.state = proto::parseHostState(st.text(4)).value_or(proto::HostState::kUnknown);
  h.enrolled_ms = st.i64(5);
  h.state_changed_ms = st.i64(6);
  h.cert_serial = st.text(7);
  h.cert_spki = st.text(8);
  h.cert_not_after_ms = st.i64(9);
  h.platform = st.text(10);
  h.revoked_ms = st.optI64(11);
  h.ssh = st.text(12);
  return h;
}
}  // namespace

namespace {
constexpr const char* kEnrollCols =
    "SELECT id, secret_sha256, host_hint, created_ms, expires_ms, used_ms, revoked_ms FROM "
    "enroll_tokens";

EnrollTokenRow enrollTokenOf(const sqlite::Stmt& st) {
  return EnrollTokenRow{std::string(st.text(0)),
                        std::string(st.text(1)),
                        std::string(st.text(2)),
                        st.i64(3),
                        st.i64(4),
                        st.optI64(5),
                        st.optI64(6)};
}
}  // namespace

Result<std::optional<EnrollTokenRow>> findEnrollToken(sqlite::Db& db, std::string_view id) {
  auto st = db.prepare(std::string(kEnrollCols) + " WHERE id = ?");
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<EnrollTokenRow>{};
  return std::optional<EnrollTokenRow>(enrollTokenOf(*st));
}

Result<std::vector<EnrollTokenRow>> listEnrollTokens(sqlite::Db& db) {
  auto st = db.prepare(std::string(kEnrollCols) + " ORDER BY created_ms, id");
  if (!st) return st.error();
  std::vector<EnrollTokenRow> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(enrollTokenOf(*st));
  }
  return out;
}

Result<std::optional<HostCertRow>> findHostCert(sqlite::Db& db, std::string_view serial_hex) {
  auto st = db.prepare("SELECT host_id, spki FROM host_certs WHERE serial = ?");
  if (!st) return st.error();
  st->bind(1, serial_hex);
  auto r = st->step();
  if (!r) return r.error();
  if (!*r) return std::optional<HostCertRow>{};
  return std::optional<HostCertRow>(
      HostCertRow{std::string(st->text(0)), std::string(st->text(1))});
}

Result<std::pair<std::set<std::string>, std::set<std::string>>> revokedHosts(sqlite::Db& db) {
  auto st = db.prepare(
      "SELECT h.id, c.serial FROM hosts h LEFT JOIN host_certs c ON c.host_id = h.id "
      "WHERE h.state = 'revoked'");
  if (!st) return st.error();
  std::set<std::string> ids, serials;
  for (;;) {
    auto r = st->step();
    if (!r) return r.error();
    if (!*r) break;
    ids.insert(std::string(st->text(0)));
    if (!st->isNull(1)) serials.insert(std::string(st->text(1)));
  }
  return std::make_pair(std::move(ids), std::move(serials));
}

Result<std::optional<HostRow>> findHost(sqlite::Db& db, std::string_view id) {
  auto st = db.prepare(std::string(kHostCols) + " WHERE id = ?");
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<HostRow>{};
  return std::optional<HostRow>(hostOf(*st));
}

Result<std::vector<HostRow>> listHosts(sqlite::Db& db, std::string_view after, int64_t limit) {
  auto st = limit > 0 ? db.prepare(std::string(kHostCols) + " WHERE id > ? ORDER BY id LIMIT ?")
                      : db.prepare(std::string(kHostCols) + " ORDER BY enrolled_ms, id");
  if (!st) return st.error();
  if (limit > 0) st->bind(1, after).bind(2, limit);
  std::vector<HostRow> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(hostOf(*st));
  }
  return out;
}

}  // namespace hwl::storage
