// sqlite3 RAII wrappers.
#include "sqlite.hpp"

namespace hwl::sqlite {

Result<Db> Db::open(const std::filesystem::path& path, Mode mode, bool create) {
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (create) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db;
  db.db_.reset(raw);  // adopt before checking, so a failed open is still closed
  if (rc != SQLITE_OK) {
    std::string msg = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return unavailable("cannot open database " + path.string() + ": " + msg);
  }
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status Db::exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err != nullptr ? err : errmsg();
    sqlite3_free(err);
    return internal("SQL failed: " + m);
  }
  return {};
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  Stmt stmt(s);
  if (rc != SQLITE_OK) return internal("cannot prepare SQL: " + errmsg());
  return stmt;
}

Result<std::optional<int64_t>> Db::queryInt(std::string_view sql) {
  auto st = prepare(sql);
  if (!st) return st.error();
  auto row = st->step();
  if (!row) return row.error();
  if (!*row || st->isNull(0)) return std::optional<int64_t>{};
  return std::optional<int64_t>(st->i64(0));
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(s_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(s_.get());
  Code code = (rc & 0xff) == SQLITE_CONSTRAINT ? Code::kConflict : Code::kInternal;
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) code = Code::kUnavailable;
  return Error{code, std::string("SQL step failed: ") + sqlite3_errmsg(db)};
}

Status Stmt::run() {
  auto r = step();
  sqlite3_reset(s_.get());
  if (!r) return r.error();
  return {};
}

Result<Transaction> Transaction::begin(Db& db) {
  auto st = db.exec("BEGIN IMMEDIATE");
  if (!st) return st.error();
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
  auto st = db_->exec("COMMIT");
  if (!st) return st;
  db_ = nullptr;
  return {};
}

}  // namespace hwl::sqlite
