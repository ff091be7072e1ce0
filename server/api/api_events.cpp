// The ledger's events (paged and live) and its integrity: verification from genesis and the
// signed checkpoints.
#include <boost/json.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "api.hpp"
#include "ledger/rows.hpp"
#include "params.hpp"

namespace hwl::api {

namespace bj = boost::json;

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

}  // namespace hwl::api
