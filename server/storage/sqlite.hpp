// RAII over the sqlite3 C API: a database handle, prepared statements, and a
// rollback-on-destruct transaction. Errors come back as Result, never as exceptions.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/result.hpp"

namespace hwl::sqlite {

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

class Stmt;

class Db {
 public:
  enum class Mode { kReadWrite, kReadOnly };
  static Result<Db> open(const std::filesystem::path& path, Mode mode = Mode::kReadWrite,
                         bool create = false);
  Status exec(std::string_view sql);
  Result<Stmt> prepare(std::string_view sql);
  [[nodiscard]] sqlite3* get() const { return db_.get(); }
  [[nodiscard]] std::string errmsg() const { return sqlite3_errmsg(db_.get()); }
  [[nodiscard]] int64_t changes() const { return sqlite3_changes64(db_.get()); }
  // Runs a query returning one integer (or nullopt when it returns no row / NULL).
  Result<std::optional<int64_t>> queryInt(std::string_view sql);

 private:
  std::unique_ptr<sqlite3, DbClose> db_;
};

class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_.get(), i, v);
    return *this;
  }
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bindBlob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_.get(), i, p, static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bindNull(int i) {
    sqlite3_bind_null(s_.get(), i);
    return *this;
  }
  Stmt& bind(int i, const std::optional<int64_t>& v) { return v ? bind(i, *v) : bindNull(i); }
  Stmt& bind(int i, const std::optional<std::string>& v) {
    return v ? bind(i, std::string_view(*v)) : bindNull(i);
  }
  // SQLITE_ROW → true, SQLITE_DONE → false, else an error.
  Result<bool> step();
  Status run();  // step to completion, expecting no rows
  void reset() {
    sqlite3_reset(s_.get());
    sqlite3_clear_bindings(s_.get());
  }
  [[nodiscard]] int64_t i64(int col) const { return sqlite3_column_int64(s_.get(), col); }
  [[nodiscard]] bool isNull(int col) const {
    return sqlite3_column_type(s_.get(), col) == SQLITE_NULL;
  }
  [[nodiscard]] std::optional<int64_t> optI64(int col) const {
    if (isNull(col)) return std::nullopt;
    return i64(col);
  }
  [[nodiscard]] std::string_view text(int col) const {
    const auto* p = sqlite3_column_text(s_.get(), col);
    int n = sqlite3_column_bytes(s_.get(), col);
    return p == nullptr
               ? std::string_view()
               : std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  [[nodiscard]] std::string_view blob(int col) const {
    const void* p = sqlite3_column_blob(s_.get(), col);
    int n = sqlite3_column_bytes(s_.get(), col);
    return p == nullptr ? std::string_view()
                        : std::string_view(static_cast<const char*>(p), static_cast<size_t>(n));
  }
  [[nodiscard]] int columns() const { return sqlite3_column_count(s_.get()); }
  [[nodiscard]] sqlite3_stmt* get() const { return s_.get(); }

 private:
  std::unique_ptr<sqlite3_stmt, StmtFinalize> s_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> begin(Db& db);
  Transaction(Transaction&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
};

}  // namespace hwl::sqlite
