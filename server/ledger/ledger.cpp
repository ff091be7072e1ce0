// The ledger's value types that need no storage: the hash chain formula, events and checkpoints
// as JSON, roles.
#include <boost/json/parse.hpp>

#include "hwl/json.hpp"
#include "store.hpp"
#include "telemetry_span.hpp"

namespace hwl::ledger {

void hashLengthPrefixed(crypto::Sha256& h, std::string_view s) {
  uint8_t len[8];
  uint64_t n = s.size();
  for (int i = 7; i >= 0; --i) {
    len[i] = static_cast<uint8_t>(n & 0xff);
    n >>= 8;
  }
  h.update(len, 8);
  h.update(s);
}

namespace {

void lp(crypto::Sha256& h, std::string_view s) { hashLengthPrefixed(h, s); }
void lp(crypto::Sha256& h, int64_t v) { hashLengthPrefixed(h, std::to_string(v)); }

}  // namespace

crypto::Digest eventHash(crypto::Sha256& h, const crypto::Digest& prev, int64_t seq,
                         std::string_view id, std::string_view stream, int64_t version,
                         std::string_view type, int64_t time_ms, std::string_view actor,
                         std::string_view data) {
  h.update(prev.data(), prev.size());
  lp(h, seq);
  lp(h, id);
  lp(h, stream);
  lp(h, version);
  lp(h, type);
  lp(h, time_ms);
  lp(h, actor);
  lp(h, data);
  return h.finish();
}

boost::json::object eventToJson(const Event& e) {
  boost::json::object o;
  o["seq"] = e.seq;
  o["id"] = e.id;
  o["stream"] = e.stream;
  o["version"] = e.version;
  o["type"] = e.type;
  o["time_ms"] = e.time_ms;
  o["actor"] = e.actor;
  boost::system::error_code ec;
  o["data"] = boost::json::parse(e.data, ec);
  o["hash"] = crypto::hex(e.hash);
  return o;
}

std::string checkpointMessage(int64_t seq, const crypto::Digest& hash, int64_t time_ms) {
  return "hwledger-checkpoint-v1\n" + std::to_string(seq) + "\n" + crypto::hex(hash) + "\n" +
         std::to_string(time_ms);
}

boost::json::object checkpointToJson(const Checkpoint& c) {
  return {{"seq", c.seq},
          {"hash", crypto::hex(c.hash)},
          {"time_ms", c.time_ms},
          {"signature", crypto::hex(c.signature)}};
}

boost::json::object VerifyReport::toJson() const {
  boost::json::object o{{"ok", ok},
                        {"events", events},
                        {"head_seq", head_seq},
                        {"head_hash", crypto::hex(head_hash)},
                        {"checkpoints_ok", checkpoints_ok},
                        {"checkpoints_checked", checkpoints_checked}};
  if (first_bad_seq)
    o["first_bad_seq"] = *first_bad_seq;
  else
    o["first_bad_seq"] = nullptr;
  if (!problem.empty()) o["problem"] = problem;
  return o;
}

Result<AppendResult> Ledger::append(std::string stream, int64_t expected_version, std::string actor,
                                    std::vector<NewEvent> events) {
  AppendRequest req;
  req.actor = std::move(actor);
  req.parts.push_back(StreamAppend{std::move(stream), expected_version, std::move(events)});
  return append(std::move(req));
}

std::string_view roleName(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> parseRole(std::string_view s) {
  if (s == "viewer") return Role::kViewer;
  if (s == "operator") return Role::kOperator;
  if (s == "admin") return Role::kAdmin;
  return std::nullopt;
}

Status forEachEvent(Ledger& ledger, EventQuery q, const std::function<Status(Event&)>& fn) {
  if (q.limit <= 0) q.limit = 1000;
  for (;;) {
    auto page = ledger.read(q);
    if (!page) return page.error();
    for (auto& e : *page) {
      if (auto s = fn(e); !s) return s;
      q.after = e.seq;
    }
    if (static_cast<int64_t>(page->size()) < q.limit) return {};
  }
}

Result<std::vector<Event>> readAll(Ledger& ledger, EventQuery q) {
  std::vector<Event> out;
  auto s = forEachEvent(ledger, std::move(q), [&](Event& e) -> Status {
    out.push_back(std::move(e));
    return {};
  });
  if (!s) return s.error();
  return out;
}

std::optional<TelemetrySpan> hourSpan(int64_t seq, const boost::json::object& data) {
  TelemetrySpan s;
  s.host_id = json::textOf(data, "host_id");
  s.gpu_uuid = json::textOf(data, "gpu_uuid");
  const auto* hour = data.if_contains("hour_start_ms");
  if (s.host_id.empty() || s.gpu_uuid.empty() || hour == nullptr || !hour->is_int64()) {
    return std::nullopt;
  }
  s.start_ms = hour->as_int64();
  s.hours = 1;
  s.energy_wh = json::numberOf(data, "energy_wh");
  const std::string source = json::textOf(data, "energy_source");
  s.counter_hours = source == "counter" ? 1 : 0;
  s.power_hours = source == "power" ? 1 : 0;
  if (const auto* u = data.if_contains("util_mean_pct"); u != nullptr && u->is_number()) {
    s.util_sum = json::numberOf(data, "util_mean_pct");
    s.util_n = 1;
    s.idle_hours = s.util_sum <= kIdleHourUtilPct ? 1 : 0;
  }
  s.seqs.push_back(seq);
  return s;
}

}  // namespace hwl::ledger
