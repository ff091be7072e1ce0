// `hwledger events`: the ledger's events a page at a time, or followed live over the SSE stream.
#include <string>

#include "client.hpp"
#include "commands.hpp"
#include "hwl/json.hpp"
#include "output.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct EventsOptions {
  int64_t after = 0;
  int64_t limit = 100;
  std::string stream;
  std::string type;
  bool follow = false;
};

// A followed event is printed whole, one per line, as it arrives: no table can be aligned yet.
void printEvent(const bj::object& e, bool as_json, std::ostream& out) {
  if (as_json) {
    printJson(out, e);
    return;
  }
  out << e.at("seq").as_int64() << "  " << fmtTime(e.at("time_ms").as_int64()) << "  "
      << str(e.at("type")) << "  " << str(e.at("stream")) << "  " << str(e.at("actor")) << "  "
      << bj::serialize(e.at("data")) << "\n";
}

std::string filters(const EventsOptions& o) {
  std::string q;
  if (!o.stream.empty()) q += "&stream=" + o.stream;
  if (!o.type.empty()) q += "&type=" + o.type;
  return q;
}

int followEvents(const EventsOptions& o, const Context& ctx) {
  Api api(ctx.conn);
  const std::string target = "/v1/events/stream?after=" + std::to_string(o.after) + filters(o);
  std::string buf;
  auto st = api.client().stream("GET", target, api.headers(), [&](std::string_view chunk) {
    buf += chunk;
    size_t pos;
    while ((pos = buf.find("\n\n")) != std::string::npos) {
      std::string msg = buf.substr(0, pos);
      buf.erase(0, pos + 2);
      size_t d = msg.find("data: ");
      if (d == std::string::npos) continue;
      auto v = json::parseObject(msg.substr(d + 6));
      if (v) printEvent(*v, ctx.json, ctx.out);
      ctx.out.flush();
    }
    return true;
  });
  if (!st) return fail(ctx.err, st.error());
  if (*st >= 400) return fail(ctx.err, Error{Code::kUnavailable, "HTTP " + std::to_string(*st)});
  return 0;
}

int listEvents(const EventsOptions& o, const Context& ctx) {
  Api api(ctx.conn);
  const std::string target = "/v1/events?after=" + std::to_string(o.after) +
                             "&limit=" + std::to_string(o.limit) + filters(o);
  return show(ctx, api.call("GET", target), [&](const bj::value& v) {
    Table t({"SEQ", "TIME", "TYPE", "STREAM", "ACTOR", "DATA"});
    for (const auto& e : v.as_object().at("events").as_array()) {
      const auto& ev = e.as_object();
      std::string data = bj::serialize(ev.at("data"));
      if (data.size() > 80) data = data.substr(0, 77) + "...";
      t.add({std::to_string(ev.at("seq").as_int64()), fmtTime(ev.at("time_ms").as_int64()),
             str(ev.at("type")), str(ev.at("stream")), str(ev.at("actor")), data});
    }
    t.print(ctx.out);
    return 0;
  });
}

int events(const EventsOptions& o, const Context& ctx) {
  return o.follow ? followEvents(o, ctx) : listEvents(o, ctx);
}

}  // namespace

void registerEvents(CLI::App& app, Commands& commands) {
  auto* events_cmd = app.add_subcommand("events", "list ledger events, or follow them live");
  auto& o = commands.add(events_cmd, events);
  events_cmd->add_option("--after", o.after, "start after this seq");
  events_cmd->add_option("--limit", o.limit, "at most this many (max 1000 per page)");
  events_cmd->add_option("--stream", o.stream, "only this stream");
  events_cmd->add_option("--type", o.type, "only this event type");
  events_cmd->add_flag("--follow,-f", o.follow, "keep streaming new events");
}

}  // namespace hwl::cli
