// Applies token.created / token.revoked to the tokens table.
#include "tokens_projection.hpp"

#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::storage {

Status TokensProjection::apply(sqlite::Db& db, const Event& e) {
  if (e.type != proto::event::kTokenCreated && e.type != proto::event::kTokenRevoked) return {};
  auto data = json::parseObject(e.data);
  if (!data) return data.error();
  if (data->contains("kind")) return {};  // enrollment tokens have a projection of their own
  auto id = json::requiredString(*data, "id");
  if (!id) return id.error();
  if (e.type == proto::event::kTokenCreated) {
    auto role = json::requiredString(*data, "role");
    auto hash = json::requiredString(*data, "secret_sha256");
    auto note = json::optionalString(*data, "note");
    auto exp = json::optionalInt(*data, "expires_ms");
    if (!role) return role.error();
    if (!hash) return hash.error();
    if (!note) return note.error();
    if (!exp) return exp.error();
    auto st = db.prepare(
        "INSERT INTO tokens(id, role, secret_sha256, note, created_ms, created_by, expires_ms) "
        "VALUES(?,?,?,?,?,?,?)");
    if (!st) return st.error();
    st->bind(1, *id)
        .bind(2, *role)
        .bind(3, *hash)
        .bind(4, note->value_or(""))
        .bind(5, e.time_ms)
        .bind(6, e.actor)
        .bind(7, *exp);
    return st->run();
  }
  auto st = db.prepare("UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
  if (!st) return st.error();
  st->bind(1, e.time_ms).bind(2, *id);
  return st->run();
}

namespace {
TokenRow rowOf(const sqlite::Stmt& st) {
  TokenRow t;
  t.id = st.text(0);
  t.role = parseRole(st.text(1)).value_or(Role::kViewer);
  t.secret_sha256 = st.text(2);
  t.note = st.text(3);
  t.created_ms = st.i64(4);
  t.created_by = st.text(5);
  t.expires_ms = st.optI64(6);
  t.revoked_ms = st.optI64(7);
  return t;
}
constexpr const char* kCols =
    "SELECT id, role, secret_sha256, note, created_ms, created_by, expires_ms, revoked_ms FROM "
    "tokens";
}  // namespace

Result<std::optional<TokenRow>> findToken(sqlite::Db& db, std::string_view id) {
  auto st = db.prepare(std::string(kCols) + " WHERE id = ?");
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<TokenRow>{};
  return std::optional<TokenRow>(rowOf(*st));
}

Result<std::vector<TokenRow>> listTokens(sqlite::Db& db) {
  auto st = db.prepare(std::string(kCols) + " ORDER BY created_ms, id");
  if (!st) return st.error();
  std::vector<TokenRow> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(rowOf(*st));
  }
  return out;
}

}  // namespace hwl::storage
