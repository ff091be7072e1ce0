// Applies inventory, job and agent-outbox events to the fleet tables.
#include "fleet_projection.hpp"

#include <boost/json.hpp>

#include "hwl/json.hpp"
#include "hwl/proto/events.hpp"

namespace hwl::storage {

namespace bj = boost::json;

namespace {

std::optional<int64_t> intOf(const bj::object& o, std::string_view k) {
  auto v = json::optionalInt(o, k);
  return v ? *v : std::nullopt;
}

// Times of 0 mean "not yet" in agent reports.
std::optional<int64_t> msOf(const bj::object& o, std::string_view k) {
  auto v = intOf(o, k);
  return v && *v > 0 ? v : std::nullopt;
}

std::string strOf(const bj::object& o, std::string_view k) {
  auto v = json::optionalString(o, k);
  return v && *v ? **v : std::string();
}

Status applyInventory(sqlite::Db& db, const Event& e, const bj::object& d,
                      const std::string& host) {
  auto it = d.find("gpus");
  if (it == d.end() || !it->value().is_array()) return {};
  auto gone = db.prepare("UPDATE gpus SET present = 0, changed_ms = ? WHERE host_id = ?");
  if (!gone) return gone.error();
  gone->bind(1, e.time_ms).bind(2, host);
  if (auto s = gone->run(); !s) return s;
  auto up = db.prepare(
      "INSERT INTO gpus(host_id, uuid, idx, name, memory_total_bytes, driver_version, present, "
      "changed_ms) VALUES(?,?,?,?,?,?,1,?) ON CONFLICT(host_id, uuid) DO UPDATE SET "
      "idx = excluded.idx, name = excluded.name, memory_total_bytes = excluded.memory_total_bytes, "
      "driver_version = excluded.driver_version, present = 1, changed_ms = excluded.changed_ms");
  if (!up) return up.error();
  for (const auto& g : it->value().get_array()) {
    if (!g.is_object()) continue;
    const auto& o = g.get_object();
    std::string uuid = strOf(o, "uuid");
    if (uuid.empty()) continue;
    up->bind(1, host)
        .bind(2, uuid)
        .bind(3, intOf(o, "index").value_or(0))
        .bind(4, strOf(o, "name"))
        .bind(5, intOf(o, "memory_total_bytes"))
        .bind(6, strOf(o, "driver_version"))
        .bind(7, e.time_ms);
    if (auto s = up->run(); !s) return s;
    up->reset();
  }
  return {};
}

std::string stateFor(const std::string& type, const bj::object& d) {
  std::string s = strOf(d, "state");
  if (!s.empty()) return s;
  if (type == proto::event::kJobStarted) return "running";
  return type.substr(4);  // job.ready → ready, job.exited → exited, ...
}

Status applyJob(sqlite::Db& db, const Event& e, const bj::object& d,
                const std::optional<std::pair<std::string, int64_t>>& origin) {
  std::string id = strOf(d, "job_id");
  if (id.empty()) return {};
  // Evidence about the job, not a state of it.
  if (e.type == proto::event::kJobUsage || e.type == proto::event::kJobIdle ||
      e.type == proto::event::kJobReconciled) {
    return {};
  }
  if (e.type == proto::event::kJobSubmitted) {
    std::string spec = "{}";
    if (auto it = d.find("spec"); it != d.end()) spec = json::canonical(it->value());
    auto st = db.prepare(
        "INSERT INTO jobs(id, name, host_id, state, gpus, spec, submitted_by, submitted_ms, "
        "reason) VALUES(?,?,'','submitted','[]',?,?,?,'')");
    if (!st) return st.error();
    st->bind(1, id).bind(2, strOf(d, "name")).bind(3, spec).bind(4, e.actor).bind(5, e.time_ms);
    return st->run();
  }
  if (e.type == proto::event::kJobPlaced) {
    std::string gpus = "[]";
    if (auto it = d.find("gpus"); it != d.end()) gpus = json::canonical(it->value());
    auto st = db.prepare("UPDATE jobs SET host_id = ?, gpus = ?, state = 'placed' WHERE id = ?");
    if (!st) return st.error();
    st->bind(1, strOf(d, "host_id")).bind(2, gpus).bind(3, id);
    return st->run();
  }
  // A state reported by an agent (or a dispatch failure recorded by the server).
  auto cur = findJob(db, id);
  if (!cur) return cur.error();
  if (origin) {
    if (!cur->has_value()) {
      // A job started on the agent directly: recorded too.
      std::string spec = "{}";
      if (auto it = d.find("spec"); it != d.end()) spec = json::canonical(it->value());
      auto st = db.prepare(
          "INSERT INTO jobs(id, name, host_id, state, gpus, spec, submitted_by, submitted_ms, "
          "reason) VALUES(?,?,?,'accepted','[]',?,?,?,'')");
      if (!st) return st.error();
      st->bind(1, id)
          .bind(2, id)
          .bind(3, origin->first)
          .bind(4, spec)
          .bind(5, e.actor)
          .bind(6, e.time_ms);
      if (auto s = st->run(); !s) return s;
    } else if ((*cur)->host_id != origin->first) {
      return {};  // a host may only report its own jobs
    }
  } else if (!cur->has_value()) {
    return {};
  }
  auto st = db.prepare(
      "UPDATE jobs SET state = ?, started_ms = coalesce(?, started_ms), "
      "ready_ms = coalesce(?, ready_ms), ended_ms = coalesce(?, ended_ms), "
      "exit_code = coalesce(?, exit_code), signal = coalesce(?, signal), "
      "reason = CASE WHEN ? = '' THEN reason ELSE ? END WHERE id = ?");
  if (!st) return st.error();
  std::string reason = strOf(d, "reason");
  st->bind(1, stateFor(e.type, d))
      .bind(2, msOf(d, "started_ms"))
      .bind(3, msOf(d, "ready_ms"))
      .bind(4, msOf(d, "ended_ms"))
      .bind(5, intOf(d, "exit_code"))
      .bind(6, intOf(d, "signal"))
      .bind(7, reason)
      .bind(8, reason)
      .bind(9, id);
  return st->run();
}

}  // namespace

std::optional<std::pair<std::string, int64_t>> agentOrigin(const Event& e) {
  if (e.actor.rfind("host:", 0) != 0) return std::nullopt;
  std::string host = e.actor.substr(5);
  if (e.id.size() <= host.size() + 1 || e.id.compare(0, host.size(), host) != 0 ||
      e.id[host.size()] != ':')
    return std::nullopt;
  int64_t seq = 0;
  for (size_t i = host.size() + 1; i < e.id.size(); ++i) {
    char c = e.id[i];
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + (c - '0');
  }
  return std::make_pair(host, seq);
}

Status FleetProjection::apply(sqlite::Db& db, const Event& e) {
  auto origin = agentOrigin(e);
  if (origin) {
    auto st = db.prepare(
        "INSERT INTO agent_cursors(host_id, seq) VALUES(?,?) ON CONFLICT(host_id) DO UPDATE SET "
        "seq = max(seq, excluded.seq)");
    if (!st) return st.error();
    st->bind(1, origin->first).bind(2, origin->second);
    if (auto s = st->run(); !s) return s;
  }
  bool job = e.type.rfind("job.", 0) == 0;
  if (!job && e.type != proto::event::kHostInventoryChanged) return {};
  auto d = json::parseObject(e.data);
  if (!d) return {};
  if (job) return applyJob(db, e, *d, origin);
  std::string host = strOf(*d, "host_id");
  if (host.empty()) return {};
  return applyInventory(db, e, *d, host);
}

namespace {
constexpr const char* kGpuCols =
    "SELECT host_id, uuid, idx, name, memory_total_bytes, driver_version, present FROM gpus "
    "WHERE present = 1";

Result<std::vector<GpuRow>> readGpus(sqlite::Stmt& st) {
  std::vector<GpuRow> out;
  for (;;) {
    auto r = st.step();
    if (!r) return r.error();
    if (!*r) break;
    out.push_back(GpuRow{std::string(st.text(0)), std::string(st.text(1)), st.i64(2),
                         std::string(st.text(3)), st.optI64(4), std::string(st.text(5)),
                         st.i64(6) != 0});
  }
  return out;
}
}  // namespace

Result<std::vector<GpuRow>> listGpus(sqlite::Db& db, std::string_view host_id) {
  std::string sql = kGpuCols;
  if (!host_id.empty()) sql += " AND host_id = ?1";
  sql += " ORDER BY host_id, idx, uuid";
  auto st = db.prepare(sql);
  if (!st) return st.error();
  if (!host_id.empty()) st->bind(1, host_id);
  return readGpus(*st);
}

Result<std::vector<GpuRow>> listGpusBetween(sqlite::Db& db, std::string_view first,
                                            std::string_view last) {
  auto st = db.prepare(std::string(kGpuCols) +
                       " AND host_id >= ? AND host_id <= ? ORDER BY host_id, idx, uuid");
  if (!st) return st.error();
  st->bind(1, first).bind(2, last);
  return readGpus(*st);
}

namespace {
constexpr const char* kJobCols =
    "SELECT id, name, host_id, state, gpus, spec, submitted_by, submitted_ms, started_ms, "
    "ready_ms, ended_ms, exit_code, signal, reason FROM jobs";
JobRow jobOf(const sqlite::Stmt& st) {
  JobRow j;
  j.id = st.text(0);
  j.name = st.text(1);
  j.host_id = st.text(2);
  j.state = st.text(3);
  j.gpus = st.text(4);
  j.spec = st.text(5);
  j.submitted_by = st.text(6);
  j.submitted_ms = st.i64(7);
  j.started_ms = st.optI64(8);
  j.ready_ms = st.optI64(9);
  j.ended_ms = st.optI64(10);
  j.exit_code = st.optI64(11);
  j.signal = st.optI64(12);
  j.reason = st.text(13);
  return j;
}
}  // namespace

Result<std::vector<JobRow>> listJobs(sqlite::Db& db, std::string_view host_id) {
  std::string sql = kJobCols;
  if (!host_id.empty()) sql += " WHERE host_id = ?1";
  sql += " ORDER BY submitted_ms, id";
  auto st = db.prepare(sql);
  if (!st) return st.error();
  if (!host_id.empty()) st->bind(1, host_id);
  std::vector<JobRow> out;
  for (;;) {
    auto r = st->step();
    if (!r) return r.error();
    if (!*r) break;
    out.push_back(jobOf(*st));
  }
  return out;
}

Result<std::vector<JobRow>> listActiveJobs(sqlite::Db& db) {
  auto st = db.prepare(std::string(kJobCols) +
                       " WHERE state NOT IN ('exited', 'failed', 'cancelled', 'lost', "
                       "'dispatch_failed') ORDER BY submitted_ms, id");
  if (!st) return st.error();
  std::vector<JobRow> out;
  for (;;) {
    auto r = st->step();
    if (!r) return r.error();
    if (!*r) break;
    out.push_back(jobOf(*st));
  }
  return out;
}

Result<std::optional<JobRow>> findJob(sqlite::Db& db, std::string_view id) {
  auto st = db.prepare(std::string(kJobCols) + " WHERE id = ?");
  if (!st) return st.error();
  st->bind(1, id);
  auto r = st->step();
  if (!r) return r.error();
  if (!*r) return std::optional<JobRow>{};
  return std::optional<JobRow>(jobOf(*st));
}

Result<std::map<std::string, int64_t>> agentCursors(sqlite::Db& db) {
  auto st = db.prepare("SELECT host_id, seq FROM agent_cursors");
  if (!st) return st.error();
  std::map<std::string, int64_t> out;
  for (;;) {
    auto r = st->step();
    if (!r) return r.error();
    if (!*r) break;
    out.emplace(std::string(st->text(0)), st->i64(1));
  }
  return out;
}

}  // namespace hwl::storage
