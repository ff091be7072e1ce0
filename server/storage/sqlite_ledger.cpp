// The ledger's writer thread, group commit, hash chain, checkpoints and verification.
#include "sqlite_ledger.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <set>

#include "fleet_projection.hpp"
#include "hosts_projection.hpp"
#include "hwl/json.hpp"
#include "migrations.hpp"
#include "telemetry_days.hpp"
#include "tokens_projection.hpp"

namespace hwl::storage {

using ledger::checkpointMessage;
using ledger::eventHash;
using ledger::kAnyVersion;

namespace {

crypto::Digest toDigest(std::string_view blob) {
  crypto::Digest d{};
  if (blob.size() == d.size()) std::copy(blob.begin(), blob.end(), d.begin());
  return d;
}

std::string_view digestView(const crypto::Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

Status pragmas(sqlite::Db& db) {
  for (const char* p :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (auto s = db.exec(p); !s) return s;
  }
  return {};
}

constexpr const char* kEventCols =
    "SELECT seq, id, stream, version, type, time_ms, actor, data, prev_hash, hash FROM events";

Event eventOf(const sqlite::Stmt& st) {
  Event e;
  e.seq = st.i64(0);
  e.id = st.text(1);
  e.stream = st.text(2);
  e.version = st.i64(3);
  e.type = st.text(4);
  e.time_ms = st.i64(5);
  e.actor = st.text(6);
  e.data = st.text(7);
  e.prev_hash = toDigest(st.blob(8));
  e.hash = toDigest(st.blob(9));
  return e;
}

// Every row of a prepared event query.
Result<std::vector<Event>> eventsOf(sqlite::Stmt& st) {
  std::vector<Event> out;
  for (;;) {
    auto row = st.step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(eventOf(st));
  }
  return out;
}

}  // namespace

struct SqliteLedger::Stmts {
  sqlite::Stmt by_id;
  sqlite::Stmt stream_version;
  sqlite::Stmt insert;
  sqlite::Stmt insert_cp;
};

namespace {

// The projections' queries on one connection (inside a read transaction for a snapshot).
class SqliteReadView final : public ledger::ReadView {
 public:
  explicit SqliteReadView(sqlite::Db& db) : db_(db) {}
  Result<int64_t> streamVersion(std::string_view stream) override {
    return SqliteLedger::streamVersionOn(db_, stream);
  }
  Result<std::optional<TokenRow>> findToken(std::string_view id) override {
    return storage::findToken(db_, id);
  }
  Result<std::vector<TokenRow>> listTokens() override { return storage::listTokens(db_); }
  Result<std::optional<EnrollTokenRow>> findEnrollToken(std::string_view id) override {
    return storage::findEnrollToken(db_, id);
  }
  Result<std::vector<EnrollTokenRow>> listEnrollTokens() override {
    return storage::listEnrollTokens(db_);
  }
  Result<std::optional<HostCertRow>> findHostCert(std::string_view serial_hex) override {
    return storage::findHostCert(db_, serial_hex);
  }
  Result<std::pair<std::set<std::string>, std::set<std::string>>> revokedHosts() override {
    return storage::revokedHosts(db_);
  }
  Result<std::optional<HostRow>> findHost(std::string_view id) override {
    return storage::findHost(db_, id);
  }
  Result<std::vector<HostRow>> listHosts(std::string_view after, int64_t limit) override {
    return storage::listHosts(db_, after, limit);
  }
  Result<std::vector<GpuRow>> listGpus(std::string_view host_id) override {
    return storage::listGpus(db_, host_id);
  }
  Result<std::vector<GpuRow>> listGpusBetween(std::string_view first,
                                              std::string_view last) override {
    return storage::listGpusBetween(db_, first, last);
  }
  Result<std::vector<JobRow>> listJobs(std::string_view host_id) override {
    return storage::listJobs(db_, host_id);
  }
  Result<std::vector<JobRow>> listActiveJobs() override { return storage::listActiveJobs(db_); }
  Result<std::optional<JobRow>> findJob(std::string_view id) override {
    return storage::findJob(db_, id);
  }
  Result<std::map<std::string, int64_t>> agentCursors() override {
    return storage::agentCursors(db_);
  }

 private:
  sqlite::Db& db_;
};

}  // namespace

void SqliteLedger::view(bool snapshot, const std::function<void(ledger::ReadView&)>& fn) {
  withDb([&](sqlite::Db& db) {
    struct End {
      sqlite::Db* d;
      ~End() {
        if (d) (void)d->exec("COMMIT");
      }
    } end{nullptr};
    if (snapshot) {
      (void)db.exec("BEGIN");
      end.d = &db;
    }
    SqliteReadView v(db);
    fn(v);
  });
}

// The telemetry-days projection is the ledger's own: reports read it, so it is never left out.
SqliteLedger::SqliteLedger(LedgerOptions opts) : opts_(std::move(opts)) {
  opts_.projections.push_back(std::make_unique<TelemetryDaysProjection>());
}

Status SqliteLedger::telemetrySpans(int64_t from_ms, int64_t to_ms, bool whole_days,
                                    const ledger::SpanVisitor& fn) {
  return withDb(
      [&](sqlite::Db& db) { return readTelemetrySpans(db, from_ms, to_ms, whole_days, fn); });
}

Result<std::unique_ptr<SqliteLedger>> SqliteLedger::open(LedgerOptions opts) {
  std::unique_ptr<SqliteLedger> l(new SqliteLedger(std::move(opts)));
  if (auto s = l->init(); !s) return s.error();
  return l;
}

Status SqliteLedger::init() {
  bool existed = std::filesystem::exists(opts_.db_path);
  if (!existed && !opts_.create)
    return notFound("no ledger at " + opts_.db_path.string() + " (run init first)");
  auto db = sqlite::Db::open(opts_.db_path, sqlite::Db::Mode::kReadWrite, opts_.create);
  if (!db) return db.error();
  writer_ = std::make_unique<sqlite::Db>(std::move(*db));
  if (!existed) ::chmod(opts_.db_path.c_str(), 0600);
  if (auto s = pragmas(*writer_); !s) return s;
  if (auto s = migrate(*writer_, opts_.clock->nowMs()); !s) return s;

  auto by_id = writer_->prepare("SELECT seq, stream, type, data FROM events WHERE id = ?");
  auto sv = writer_->prepare("SELECT max(version) FROM events WHERE stream = ?");
  auto ins = writer_->prepare(
      "INSERT INTO events(seq, id, stream, version, type, time_ms, actor, data, prev_hash, hash) "
      "VALUES(?,?,?,?,?,?,?,?,?,?)");
  auto cp =
      writer_->prepare("INSERT INTO checkpoints(seq, hash, time_ms, signature) VALUES(?,?,?,?)");
  if (!by_id) return by_id.error();
  if (!sv) return sv.error();
  if (!ins) return ins.error();
  if (!cp) return cp.error();
  stmts_ = std::make_unique<Stmts>(
      Stmts{std::move(*by_id), std::move(*sv), std::move(*ins), std::move(*cp)});

  auto head = writer_->prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
  if (!head) return head.error();
  auto row = head->step();
  if (!row) return row.error();
  if (*row) {
    head_seq_ = head->i64(0);
    head_hash_ = toDigest(head->blob(1));
  }
  published_seq_ = head_seq_;
  auto lcp = writer_->queryInt("SELECT max(seq) FROM checkpoints");
  if (!lcp) return lcp.error();
  last_checkpoint_seq_ = lcp->value_or(0);
  if (auto s = reconcileCheckpointLog(); !s) return s;

  for (size_t i = 0; i < std::max<size_t>(1, opts_.readers); ++i) {
    auto r = sqlite::Db::open(opts_.db_path, sqlite::Db::Mode::kReadWrite, false);
    if (!r) return r.error();
    if (auto s = r->exec("PRAGMA query_only=1"); !s) return s;
    readers_.push_back(std::make_unique<sqlite::Db>(std::move(*r)));
  }
  writer_thread_ = std::thread([this] { writerLoop(); });
  return {};
}

SqliteLedger::~SqliteLedger() { close(); }

void SqliteLedger::appendAsync(AppendRequest req, Callback done) {
  {
    std::lock_guard lk(mu_);
    if (!closing_) {
      queue_.push_back(Pending{std::move(req), std::move(done), {}, {}});
      queue_cv_.notify_one();
      return;
    }
  }
  done(unavailable("the ledger is closed"));
}

Result<AppendResult> SqliteLedger::append(AppendRequest req) {
  std::promise<Result<AppendResult>> p;
  auto f = p.get_future();
  appendAsync(std::move(req), [&p](Result<AppendResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<int64_t> SqliteLedger::streamVersionOn(sqlite::Db& db, std::string_view stream) {
  auto st = db.prepare("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?");
  if (!st) return st.error();
  st->bind(1, stream);
  auto r = st->step();
  if (!r) return r.error();
  return *r ? st->i64(0) : int64_t{0};
}

Result<int64_t> SqliteLedger::streamVersion(std::string_view stream) {
  return withDb([&](sqlite::Db& db) { return streamVersionOn(db, stream); });
}

void SqliteLedger::runTaskAsync(std::function<Status(sqlite::Db&)> task,
                                std::function<void(Status)> done) {
  {
    std::lock_guard lk(mu_);
    if (!closing_) {
      queue_.push_back(Pending{{}, {}, std::move(task), std::move(done)});
      queue_cv_.notify_one();
      return;
    }
  }
  done(unavailable("the ledger is closed"));
}

Status SqliteLedger::runTask(std::function<Status(sqlite::Db&)> task) {
  std::promise<Status> p;
  auto f = p.get_future();
  runTaskAsync(std::move(task), [&p](const Status& s) { p.set_value(s); });
  return f.get();
}

void SqliteLedger::writerLoop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lk(mu_);
      queue_cv_.wait(lk, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty() && closing_) break;
      if (queue_.front().task) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      } else {
        size_t events = 0;
        while (!queue_.empty() && !queue_.front().task && events < opts_.max_batch_events) {
          for (const auto& part : queue_.front().req.parts) events += part.events.size();
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    if (batch.front().task) {
      Status s = batch.front().task(*writer_);
      batch.front().task_done(s);
      continue;
    }
    commitBatch(batch);
  }
  // Final checkpoint: the head at shutdown is signed, so truncation after it is detectable.
  if (opts_.signing_key && head_seq_ > last_checkpoint_seq_) {
    auto tx = sqlite::Transaction::begin(*writer_);
    if (tx) {
      auto cp = signCheckpoint(head_seq_, head_hash_);
      if (cp) {
        auto& st = stmts_->insert_cp;
        st.bind(1, cp->seq)
            .bindBlob(2, cp->hash.data(), cp->hash.size())
            .bind(3, cp->time_ms)
            .bindBlob(4, cp->signature.data(), cp->signature.size());
        auto s = st.run();
        st.reset();
        if (s && tx->commit()) {
          last_checkpoint_seq_ = cp->seq;
          (void)exportCheckpoints({*cp});
        }
      }
    }
  }
}

void SqliteLedger::commitBatch(std::vector<Pending>& batch) {
  std::vector<Result<AppendResult>> results;
  results.reserve(batch.size());
  const int64_t start_seq = head_seq_;
  const crypto::Digest start_hash = head_hash_;
  const int64_t start_cp = last_checkpoint_seq_;
  std::vector<Checkpoint> cps;
  auto tx = sqlite::Transaction::begin(*writer_);
  if (!tx) {
    for (auto& p : batch) p.done(unavailable("cannot start a transaction: " + tx.error().message));
    return;
  }
  for (auto& p : batch) {
    (void)writer_->exec("SAVEPOINT req");
    const int64_t seq0 = head_seq_;
    const crypto::Digest hash0 = head_hash_;
    const size_t cps0 = cps.size();
    const int64_t lcp0 = last_checkpoint_seq_;
    auto r = applyOne(p.req, cps);
    if (!r) {
      (void)writer_->exec("ROLLBACK TO req");
      head_seq_ = seq0;
      head_hash_ = hash0;
      cps.resize(cps0);
      last_checkpoint_seq_ = lcp0;
    }
    (void)writer_->exec("RELEASE req");
    results.push_back(std::move(r));
  }
  if (auto s = tx->commit(); !s) {
    head_seq_ = start_seq;
    head_hash_ = start_hash;
    last_checkpoint_seq_ = start_cp;
    for (auto& p : batch) p.done(unavailable("commit failed: " + s.error().message));
    return;
  }
  if (!cps.empty()) (void)exportCheckpoints(cps);
  {
    std::lock_guard lk(mu_);
    published_seq_ = head_seq_;
  }
  head_cv_.notify_all();
  for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
}

Result<AppendResult> SqliteLedger::applyOne(const AppendRequest& req,
                                            std::vector<Checkpoint>& cps) {
  if (req.actor.empty()) return invalidArgument("an append needs an actor");
  if (req.parts.empty()) return invalidArgument("an append needs at least one event");
  // Idempotency: an append whose every event id exists with the same content is a no-op.
  size_t total = 0, existing = 0;
  AppendResult out;
  auto& by_id = stmts_->by_id;
  std::vector<std::string> datas;
  for (const auto& part : req.parts) {
    if (part.stream.empty()) return invalidArgument("an append needs a stream");
    if (part.events.empty()) return invalidArgument("an append needs at least one event");
    for (const auto& ev : part.events) {
      ++total;
      if (ev.type.empty()) return invalidArgument("an event needs a type");
      datas.push_back(json::canonical(ev.data));
      if (ev.id.empty()) continue;
      by_id.bind(1, ev.id);
      auto row = by_id.step();
      if (!row) {
        by_id.reset();
        return row.error();
      }
      if (*row) {
        bool same = by_id.text(1) == part.stream && by_id.text(2) == ev.type &&
                    by_id.text(3) == datas.back();
        int64_t seq = by_id.i64(0);
        by_id.reset();
        if (!same)
          return conflict("event id \"" + ev.id + "\" already exists with different content");
        ++existing;
        out.seqs.push_back(seq);
      } else {
        by_id.reset();
      }
    }
  }
  if (existing == total) {
    out.duplicate = true;
    return out;
  }
  if (existing > 0) return conflict("some event ids of this append already exist, others do not");
  out.seqs.clear();

  size_t di = 0;
  for (const auto& part : req.parts) {
    auto& sv = stmts_->stream_version;
    sv.bind(1, part.stream);
    auto row = sv.step();
    if (!row) {
      sv.reset();
      return row.error();
    }
    int64_t cur = sv.isNull(0) ? 0 : sv.i64(0);
    sv.reset();
    if (part.expected_version != kAnyVersion && part.expected_version != cur)
      return conflict("stream \"" + part.stream + "\" is at version " + std::to_string(cur) +
                      ", not the expected " + std::to_string(part.expected_version));
    for (const auto& ev : part.events) {
      Event e;
      e.seq = head_seq_ + 1;
      e.id = ev.id.empty() ? nextEventId() : ev.id;
      e.stream = part.stream;
      e.version = ++cur;
      e.type = ev.type;
      e.time_ms = opts_.clock->nowMs();
      e.actor = req.actor;
      e.data = std::move(datas[di++]);
      e.prev_hash = head_hash_;
      e.hash = eventHash(hasher_, e.prev_hash, e.seq, e.id, e.stream, e.version, e.type, e.time_ms,
                         e.actor, e.data);
      auto& ins = stmts_->insert;
      ins.bind(1, e.seq)
          .bind(2, e.id)
          .bind(3, e.stream)
          .bind(4, e.version)
          .bind(5, e.type)
          .bind(6, e.time_ms)
          .bind(7, e.actor)
          .bind(8, e.data)
          .bindBlob(9, e.prev_hash.data(), 32)
          .bindBlob(10, e.hash.data(), 32);
      auto s = ins.run();
      ins.reset();
      if (!s) return s.error();
      for (auto& proj : opts_.projections) {
        if (auto ps = proj->apply(*writer_, e); !ps) return ps.error();
      }
      head_seq_ = e.seq;
      head_hash_ = e.hash;
      out.seqs.push_back(e.seq);
      if (opts_.signing_key && opts_.checkpoint_every > 0 && e.seq % opts_.checkpoint_every == 0) {
        auto cp = signCheckpoint(e.seq, e.hash);
        if (!cp) return cp.error();
        auto& st = stmts_->insert_cp;
        st.bind(1, cp->seq)
            .bindBlob(2, cp->hash.data(), 32)
            .bind(3, cp->time_ms)
            .bindBlob(4, cp->signature.data(), cp->signature.size());
        auto cs = st.run();
        st.reset();
        if (!cs) return cs.error();
        last_checkpoint_seq_ = cp->seq;
        cps.push_back(std::move(*cp));
      }
    }
  }
  return out;
}

// Time-ordered ids (like ULIDs): "ev_" + 12 hex digits of Unix ms + 6 of a counter + 16 random.
// Ordered ids keep inserts into the id index sequential, which keeps commits small.
std::string SqliteLedger::nextEventId() {
  if (id_random_.size() - id_random_pos_ < 8) {
    id_random_ = crypto::randomBytes(4096);
    id_random_pos_ = 0;
  }
  char buf[64];
  int64_t now = opts_.clock->nowMs();
  uint64_t rnd = 0;
  std::memcpy(&rnd, id_random_.data() + id_random_pos_, 8);
  id_random_pos_ += 8;
  std::snprintf(buf, sizeof buf, "ev_%012llx%06x%016llx",
                static_cast<unsigned long long>(now) & 0xffffffffffffULL,
                static_cast<unsigned>(id_counter_++ & 0xffffff),
                static_cast<unsigned long long>(rnd));
  return buf;
}

Result<Checkpoint> SqliteLedger::signCheckpoint(int64_t seq, const crypto::Digest& hash) {
  Checkpoint cp;
  cp.seq = seq;
  cp.hash = hash;
  cp.time_ms = opts_.clock->nowMs();
  auto sig = crypto::sign(opts_.signing_key.get(), checkpointMessage(seq, hash, cp.time_ms));
  if (!sig) return sig.error();
  cp.signature = std::move(*sig);
  return cp;
}

Status SqliteLedger::exportCheckpoints(const std::vector<Checkpoint>& cps) {
  if (opts_.checkpoint_log.empty()) return {};
  std::string lines;
  for (const auto& c : cps) lines += boost::json::serialize(checkpointToJson(c)) + "\n";
  FILE* f = std::fopen(opts_.checkpoint_log.c_str(), "ae");
  if (f == nullptr) return internal("cannot open " + opts_.checkpoint_log.string());
  std::fwrite(lines.data(), 1, lines.size(), f);
  std::fflush(f);
  ::fsync(fileno(f));
  std::fclose(f);
  return {};
}

Status SqliteLedger::reconcileCheckpointLog() {
  if (opts_.checkpoint_log.empty()) return {};
  // A crash between COMMIT and the export leaves checkpoints only in the table: copy them out.
  int64_t last = 0;
  {
    std::ifstream in(opts_.checkpoint_log);
    std::string line;
    while (std::getline(in, line)) {
      boost::system::error_code ec;
      auto v = boost::json::parse(line, ec);
      if (!ec && v.is_object() && v.as_object().contains("seq") &&
          v.as_object().at("seq").is_int64())
        last = std::max(last, v.as_object().at("seq").as_int64());
    }
  }
  auto st = writer_->prepare(
      "SELECT seq, hash, time_ms, signature FROM checkpoints WHERE seq > ? ORDER BY seq");
  if (!st) return st.error();
  st->bind(1, last);
  std::vector<Checkpoint> missing;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    missing.push_back(
        Checkpoint{st->i64(0), toDigest(st->blob(1)), st->i64(2), std::string(st->blob(3))});
  }
  if (!missing.empty()) return exportCheckpoints(missing);
  if (!std::filesystem::exists(opts_.checkpoint_log)) {
    FILE* f = std::fopen(opts_.checkpoint_log.c_str(), "ae");
    if (f != nullptr) std::fclose(f);
    ::chmod(opts_.checkpoint_log.c_str(), 0644);
  }
  return {};
}

void SqliteLedger::close() {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closing_ = true;
    closed_ = true;
  }
  queue_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
  head_cv_.notify_all();
}

int64_t SqliteLedger::headSeq() const {
  std::lock_guard lk(mu_);
  return published_seq_;
}

int64_t SqliteLedger::waitForHead(int64_t seq, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  head_cv_.wait_for(lk, timeout, [&] { return published_seq_ > seq || closing_; });
  return published_seq_;
}

std::unique_ptr<sqlite::Db> SqliteLedger::takeReader() {
  std::unique_lock lk(readers_mu_);
  readers_cv_.wait(lk, [this] { return !readers_.empty(); });
  auto db = std::move(readers_.back());
  readers_.pop_back();
  return db;
}

void SqliteLedger::giveReader(std::unique_ptr<sqlite::Db> db) {
  {
    std::lock_guard lk(readers_mu_);
    readers_.push_back(std::move(db));
  }
  readers_cv_.notify_one();
}

Result<std::vector<Event>> SqliteLedger::read(const EventQuery& q) {
  return withDb([&](sqlite::Db& db) -> Result<std::vector<Event>> {
    std::string sql = std::string(kEventCols) + " WHERE seq > ?1";
    if (!q.stream.empty()) sql += " AND stream = ?2";
    if (!q.type.empty()) sql += " AND type = ?3";
    // A prefix as a range, so no LIKE pattern is built from it: [prefix, prefix + U+10FFFF).
    if (!q.stream_prefix.empty()) sql += " AND stream >= ?5 AND stream < ?6";
    sql += " ORDER BY seq LIMIT ?4";
    auto st = db.prepare(sql);
    if (!st) return st.error();
    st->bind(1, q.after);
    if (!q.stream.empty()) st->bind(2, q.stream);
    if (!q.type.empty()) st->bind(3, q.type);
    st->bind(4, q.limit);
    if (!q.stream_prefix.empty()) {
      st->bind(5, q.stream_prefix);
      st->bind(6, q.stream_prefix + "\xf4\x8f\xbf\xbf");
    }
    return eventsOf(*st);
  });
}

Result<std::vector<Checkpoint>> SqliteLedger::checkpoints(int64_t after, int64_t limit) {
  return withDb([&](sqlite::Db& db) -> Result<std::vector<Checkpoint>> {
    auto st = db.prepare(
        "SELECT seq, hash, time_ms, signature FROM checkpoints WHERE seq > ? ORDER BY seq LIMIT ?");
    if (!st) return st.error();
    st->bind(1, after).bind(2, limit);
    std::vector<Checkpoint> out;
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      out.push_back(
          Checkpoint{st->i64(0), toDigest(st->blob(1)), st->i64(2), std::string(st->blob(3))});
    }
    return out;
  });
}

VerifyReport SqliteLedger::verify() {
  VerifyOptions vo;
  vo.checkpoint_log = opts_.checkpoint_log;
  if (opts_.signing_key) {
    auto pub = crypto::publicKeyFromPem(crypto::publicKeyPem(opts_.signing_key.get()));
    if (pub) vo.public_key = std::shared_ptr<EVP_PKEY>(pub->release(), crypto::PkeyFree{});
  }
  return withDb([&](sqlite::Db& db) { return verifyDatabase(db, vo); });
}

Result<std::vector<Event>> readEventsOfType(sqlite::Db& db, std::string_view type) {
  auto st = db.prepare(std::string(kEventCols) + " WHERE type = ? ORDER BY seq");
  if (!st) return st.error();
  st->bind(1, std::string(type));
  return eventsOf(*st);
}

VerifyReport verifyDatabase(sqlite::Db& db, const VerifyOptions& opts) {
  VerifyReport rep;
  auto fail = [&](int64_t seq, std::string why) {
    if (!rep.first_bad_seq || seq < *rep.first_bad_seq) {
      rep.first_bad_seq = seq;
      rep.problem = std::move(why);
    }
    rep.ok = false;
  };
  // Checkpoints from the table and from the exported log, each checked on its own.
  std::vector<std::pair<Checkpoint, std::string>> cps;  // with where it came from
  if (auto st = db.prepare("SELECT seq, hash, time_ms, signature FROM checkpoints ORDER BY seq")) {
    for (;;) {
      auto row = st->step();
      if (!row || !*row) break;
      cps.emplace_back(
          Checkpoint{st->i64(0), toDigest(st->blob(1)), st->i64(2), std::string(st->blob(3))},
          "table");
    }
  }
  if (!opts.checkpoint_log.empty()) {
    std::ifstream in(opts.checkpoint_log);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      auto v = json::parseObject(line);
      Checkpoint c;
      bool good = v.has_value();
      if (good) {
        auto& o = *v;
        auto h = o.contains("hash") && o.at("hash").is_string()
                     ? crypto::unhex(std::string(o.at("hash").as_string()))
                     : Result<std::string>(invalidArgument("no hash"));
        auto sig = o.contains("signature") && o.at("signature").is_string()
                       ? crypto::unhex(std::string(o.at("signature").as_string()))
                       : Result<std::string>(invalidArgument("no signature"));
        good = h && h->size() == 32 && sig && o.contains("seq") && o.at("seq").is_int64() &&
               o.contains("time_ms") && o.at("time_ms").is_int64();
        if (good) {
          c.seq = o.at("seq").as_int64();
          c.hash = toDigest(*h);
          c.time_ms = o.at("time_ms").as_int64();
          c.signature = *sig;
        }
      }
      if (!good) {
        rep.checkpoints_ok = false;
        rep.ok = false;
        if (rep.problem.empty())
          rep.problem = "checkpoint log line " + std::to_string(lineno) + " is malformed";
        continue;
      }
      cps.emplace_back(c, "log");
    }
  }
  std::map<int64_t, crypto::Digest> wanted;  // seq → hash recomputed there
  for (const auto& [c, from] : cps) wanted[c.seq] = {};

  crypto::Sha256 h;
  crypto::Digest prev{};
  int64_t expect = 1;
  auto st = db.prepare(
      "SELECT seq, id, stream, version, type, time_ms, actor, data, prev_hash, hash FROM events "
      "ORDER BY seq");
  if (!st) {
    rep.ok = false;
    rep.problem = st.error().message;
    return rep;
  }
  bool broken = false;
  for (;;) {
    auto row = st->step();
    if (!row) {
      rep.ok = false;
      rep.problem = row.error().message;
      break;
    }
    if (!*row) break;
    ++rep.events;
    int64_t seq = st->i64(0);
    rep.head_seq = seq;
    if (broken) continue;
    if (seq != expect) {
      fail(expect, "event seq " + std::to_string(expect) + " is missing");
      broken = true;
      continue;
    }
    auto computed = eventHash(h, prev, seq, st->text(1), st->text(2), st->i64(3), st->text(4),
                              st->i64(5), st->text(6), st->text(7));
    if (st->blob(8) != digestView(prev)) {
      fail(seq, "event " + std::to_string(seq) + " does not link to its predecessor");
      broken = true;
      continue;
    }
    if (st->blob(9) != digestView(computed)) {
      fail(seq, "event " + std::to_string(seq) + " does not match its hash");
      broken = true;
      continue;
    }
    if (auto it = wanted.find(seq); it != wanted.end()) it->second = computed;
    prev = computed;
    rep.head_hash = computed;
    ++expect;
  }
  for (const auto& [c, from] : cps) {
    ++rep.checkpoints_checked;
    if (opts.public_key &&
        !crypto::verify(opts.public_key.get(), checkpointMessage(c.seq, c.hash, c.time_ms),
                        c.signature)) {
      rep.checkpoints_ok = false;
      rep.ok = false;
      if (rep.problem.empty())
        rep.problem =
            "checkpoint at seq " + std::to_string(c.seq) + " (" + from + ") has a bad signature";
      continue;
    }
    if (c.seq > rep.head_seq) {
      rep.checkpoints_ok = false;
      fail(rep.head_seq + 1, "the ledger ends at seq " + std::to_string(rep.head_seq) +
                                 " but a signed checkpoint (" + from + ") covers seq " +
                                 std::to_string(c.seq) + ": events were removed from the tail");
      continue;
    }
    if (broken && rep.first_bad_seq && c.seq >= *rep.first_bad_seq) continue;
    if (wanted[c.seq] != c.hash) {
      rep.checkpoints_ok = false;
      fail(c.seq, "the chain at seq " + std::to_string(c.seq) +
                      " differs from its signed checkpoint (" + from + ")");
    }
  }
  return rep;
}

std::vector<std::string> SqliteLedger::projectionTables() const {
  std::vector<std::string> out;
  for (const auto& p : opts_.projections)
    for (auto& t : p->tables()) out.push_back(t);
  return out;
}

Status SqliteLedger::replayInto(sqlite::Db& db) {
  for (const auto& t : projectionTables())
    if (auto s = db.exec("DELETE FROM " + t); !s) return s;
  auto st = db.prepare(std::string(kEventCols) + " ORDER BY seq");
  if (!st) return st.error();
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    Event e = eventOf(*st);
    for (auto& proj : opts_.projections)
      if (auto s = proj->apply(db, e); !s)
        return internal("replay of event " + std::to_string(e.seq) +
                        " failed: " + s.error().message);
  }
  return {};
}

Status SqliteLedger::rebuildProjections() {
  return runTask([this](sqlite::Db& db) -> Status {
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    if (auto s = replayInto(db); !s) return s;
    return tx->commit();
  });
}

Result<std::string> SqliteLedger::tableDigest(const std::string& table) {
  return withDb([&](sqlite::Db& db) -> Result<std::string> {
    auto st = db.prepare("SELECT * FROM " + table + " ORDER BY 1");
    if (!st) return st.error();
    crypto::Sha256 h;
    int64_t rows = 0;
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      ++rows;
      for (int c = 0; c < st->columns(); ++c) {
        int type = sqlite3_column_type(st->get(), c);
        h.update(std::to_string(type));
        ledger::hashLengthPrefixed(h, type == SQLITE_NULL ? std::string_view() : st->blob(c));
      }
    }
    return crypto::hex(h.finish()) + " (" + std::to_string(rows) + " rows)";
  });
}

}  // namespace hwl::storage
