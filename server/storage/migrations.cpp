// The ledger schema, one numbered migration at a time. Never edit a released migration: add one.
#include "migrations.hpp"

namespace hwl::storage {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kAll = {
      {1, "events and checkpoints", R"sql(
CREATE TABLE events(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  stream TEXT NOT NULL,
  version INTEGER NOT NULL,
  type TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  data TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  UNIQUE(stream, version)
);
CREATE INDEX events_type ON events(type, seq);
CREATE TABLE checkpoints(
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  time_ms INTEGER NOT NULL,
  signature BLOB NOT NULL
);
)sql"},
      {2, "tokens projection", R"sql(
CREATE TABLE tokens(
  id TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL,
  note TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  expires_ms INTEGER,
  revoked_ms INTEGER
);
)sql"},
      {3, "enrollment tokens and hosts projections", R"sql(
CREATE TABLE enroll_tokens(
  id TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL,
  host_hint TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  used_ms INTEGER,
  used_by_host TEXT
);
CREATE TABLE hosts(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  address TEXT NOT NULL,
  state TEXT NOT NULL,
  enrolled_ms INTEGER NOT NULL,
  state_changed_ms INTEGER NOT NULL,
  cert_serial TEXT,
  cert_spki TEXT,
  cert_not_after_ms INTEGER,
  platform TEXT NOT NULL,
  revoked_ms INTEGER
);
CREATE TABLE host_certs(
  serial TEXT PRIMARY KEY,
  host_id TEXT NOT NULL,
  spki TEXT NOT NULL,
  not_after_ms INTEGER NOT NULL,
  issued_ms INTEGER NOT NULL
);
CREATE INDEX host_certs_host ON host_certs(host_id);
)sql"},
      {4, "fleet: gpus, jobs, agent outbox cursors, telemetry time series", R"sql(
CREATE TABLE gpus(
  host_id TEXT NOT NULL,
  uuid TEXT NOT NULL,
  idx INTEGER NOT NULL,
  name TEXT NOT NULL,
  memory_total_bytes INTEGER,
  driver_version TEXT NOT NULL,
  present INTEGER NOT NULL,
  changed_ms INTEGER NOT NULL,
  PRIMARY KEY(host_id, uuid)
);
CREATE TABLE jobs(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  host_id TEXT NOT NULL,
  state TEXT NOT NULL,
  gpus TEXT NOT NULL,
  spec TEXT NOT NULL,
  submitted_by TEXT NOT NULL,
  submitted_ms INTEGER NOT NULL,
  started_ms INTEGER,
  ready_ms INTEGER,
  ended_ms INTEGER,
  exit_code INTEGER,
  signal INTEGER,
  reason TEXT NOT NULL
);
CREATE INDEX jobs_host ON jobs(host_id, state);
CREATE TABLE agent_cursors(
  host_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
);
CREATE TABLE ts_series(
  id INTEGER PRIMARY KEY,
  host_id TEXT NOT NULL,
  gpu_uuid TEXT NOT NULL,
  UNIQUE(host_id, gpu_uuid)
);
CREATE TABLE ts_raw(
  series INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  util REAL,
  mem_used INTEGER,
  mem_total INTEGER,
  power_w REAL,
  temp_c REAL,
  energy_mj INTEGER,
  PRIMARY KEY(series, time_ms)
) WITHOUT ROWID;
CREATE TABLE ts_1m(
  series INTEGER NOT NULL,
  bucket_ms INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  util_sum REAL NOT NULL,
  util_n INTEGER NOT NULL,
  util_max REAL,
  mem_used_max INTEGER,
  power_sum REAL NOT NULL,
  power_n INTEGER NOT NULL,
  power_max REAL,
  temp_max REAL,
  energy_wh REAL NOT NULL,
  energy_counter INTEGER NOT NULL,
  PRIMARY KEY(series, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE ts_1h(
  series INTEGER NOT NULL,
  bucket_ms INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  util_sum REAL NOT NULL,
  util_n INTEGER NOT NULL,
  util_max REAL,
  mem_used_max INTEGER,
  power_sum REAL NOT NULL,
  power_n INTEGER NOT NULL,
  power_max REAL,
  temp_max REAL,
  energy_wh REAL NOT NULL,
  energy_counter INTEGER NOT NULL,
  PRIMARY KEY(series, bucket_ms)
) WITHOUT ROWID;
)sql"},
      {5, "revocable enrollment tokens", R"sql(
ALTER TABLE enroll_tokens ADD COLUMN revoked_ms INTEGER;
)sql"},
      {6, "agentless hosts: how to reach them", R"sql(
ALTER TABLE hosts ADD COLUMN ssh TEXT NOT NULL DEFAULT '';
)sql"},
      {7, "telemetry by GPU-day for reports", R"sql(
CREATE TABLE ev_gpu_days(
  day_ms INTEGER NOT NULL,
  host_id TEXT NOT NULL,
  gpu_uuid TEXT NOT NULL,
  hours INTEGER NOT NULL,
  energy_wh REAL NOT NULL,
  counter_hours INTEGER NOT NULL,
  power_hours INTEGER NOT NULL,
  util_sum REAL NOT NULL,
  util_n INTEGER NOT NULL,
  idle_hours INTEGER NOT NULL,
  seqs TEXT NOT NULL,
  PRIMARY KEY(day_ms, host_id, gpu_uuid)
) WITHOUT ROWID;
CREATE INDEX events_hourly ON events(json_extract(data, '$.hour_start_ms'))
  WHERE type = 'telemetry.hourly';
INSERT INTO ev_gpu_days
  SELECT hr - hr % 86400000, h, g, count(*), total(e), coalesce(sum(src = 'counter'), 0),
         coalesce(sum(src = 'power'), 0), total(u), count(u), coalesce(sum(u <= 1.0), 0),
         group_concat(seq, ',')
  FROM (SELECT seq, json_extract(data, '$.host_id') AS h, json_extract(data, '$.gpu_uuid') AS g,
               json_extract(data, '$.hour_start_ms') AS hr,
               CASE WHEN json_type(data, '$.energy_wh') IN ('integer', 'real')
                    THEN json_extract(data, '$.energy_wh') END AS e,
               json_extract(data, '$.energy_source') AS src,
               CASE WHEN json_type(data, '$.util_mean_pct') IN ('integer', 'real')
                    THEN json_extract(data, '$.util_mean_pct') END AS u
        FROM events WHERE type = 'telemetry.hourly' ORDER BY seq)
  WHERE typeof(h) = 'text' AND h <> '' AND typeof(g) = 'text' AND g <> ''
    AND typeof(hr) = 'integer'
  GROUP BY 1, 2, 3;
)sql"},
      {8, "each job's own GPU memory by minute", R"sql(
CREATE TABLE ts_job_mem(
  series INTEGER NOT NULL,
  bucket_ms INTEGER NOT NULL,
  job_id TEXT NOT NULL,
  mem_max INTEGER NOT NULL,
  PRIMARY KEY(series, bucket_ms, job_id)
) WITHOUT ROWID;
)sql"},
  };
  return kAll;
}

Status migrate(sqlite::Db& db, int64_t now_ms) {
  auto st = db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT "
      "NULL, applied_ms INTEGER NOT NULL)");
  if (!st) return st;
  auto cur = db.queryInt("SELECT max(version) FROM schema_migrations");
  if (!cur) return cur.error();
  int64_t have = cur->value_or(0);
  int64_t newest = migrations().back().version;
  if (have > newest)
    return Error{Code::kFailedPrecondition,
                 "the database has schema version " + std::to_string(have) +
                     ", newer than this build's " + std::to_string(newest)};
  for (const auto& m : migrations()) {
    if (m.version <= have) continue;
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    if (auto s = db.exec(m.sql); !s)
      return internal("migration " + std::to_string(m.version) + " failed: " + s.error().message);
    auto ins = db.prepare("INSERT INTO schema_migrations(version, name, applied_ms) VALUES(?,?,?)");
    if (!ins) return ins.error();
    ins->bind(1, m.version).bind(2, m.name).bind(3, now_ms);
    if (auto s = ins->run(); !s) return s;
    if (auto s = tx->commit(); !s) return s;
  }
  return {};
}

}  // namespace hwl::storage
