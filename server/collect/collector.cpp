// Per-host coroutines: persistent mutual-TLS connections to agents, outbox drains, telemetry.
#include "collector.hpp"

// GCC 12 reports asio's awaitable frame (allocated and freed by its own operator new/delete) as a
// mismatched pair once coroutines are inlined into one another; a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <condition_variable>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "dispatch/agent_transport_io.hpp"
#include "host_source.hpp"
#include "hwl/crypto.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/proto/events.hpp"
#include "hwl/proto/job_spec.hpp"
#include "ledger/rows.hpp"

namespace hwl::collect {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bj = boost::json;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

namespace {

// The entry types an agent may report, and for job events the state each one reports.
const std::map<std::string, std::string, std::less<>> kJobEventStates = {
    {proto::event::kJobStarted, "running"},     {proto::event::kJobReady, "ready"},
    {proto::event::kJobExited, "exited"},       {proto::event::kJobFailed, "failed"},
    {proto::event::kJobCancelled, "cancelled"}, {proto::event::kJobLost, "lost"}};
constexpr std::string_view kInventoryType = proto::event::kHostInventoryChanged;

// Bounds on what one entry may bring into the ledger. The agent's outbox refuses entries over
// 256 KiB; free text is cut (deterministically, so a re-drain gives the same event).
constexpr size_t kMaxEntryJsonBytes = 256 * 1024;
constexpr size_t kMaxReasonBytes = 4096;
constexpr size_t kMaxLogTailBytes = 16 * 1024;
constexpr size_t kMaxOtherFieldBytes = 4096;
constexpr size_t kMaxInventoryGpus = 256;
constexpr size_t kMaxGpuJsonBytes = 8 * 1024;

bool isInt(const bj::value& v) { return v.is_int64() || v.is_uint64(); }

// The last `max` bytes of `s`, starting at a UTF-8 character boundary.
std::string lastBytes(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t from = s.size() - max;
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;
  return std::string(s.substr(from));
}

// The first `max` bytes of `s`, ending at a UTF-8 character boundary.
std::string firstBytes(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t to = max;
  while (to > 0 && (static_cast<unsigned char>(s[to]) & 0xC0) == 0x80) --to;
  return std::string(s.substr(0, to));
}

// Printable, bounded, for quoting an agent's words in a refusal.
std::string quoteable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  return out;
}

// Checks the data of a job event, cutting free text to its bound; the refusal reason otherwise.
Result<bj::object> checkJobData(const std::string& type, bj::object data) {
  const auto* id = data.if_contains("job_id");
  if (id == nullptr || !id->is_string() || !proto::validJobId(id->as_string()))
    return invalidArgument("job_id: missing or not a valid job id");
  for (auto& kv : data) {
    const std::string_view k = kv.key();
    auto& v = kv.value();
    if (k == "job_id") continue;
    if (k == "state") {
      if (!v.is_string() || v.as_string() != kJobEventStates.at(type))
        return invalidArgument("state: must be \"" + kJobEventStates.at(type) + "\" for " + type);
    } else if (k == "pid" || k == "proc_start_time" || k == "started_ms" || k == "ready_ms" ||
               k == "ended_ms" || k == "runtime_ms" || k == "exit_code" || k == "signal") {
      if (!isInt(v) && !v.is_null())
        return invalidArgument(std::string(k) + ": must be an integer");
    } else if (k == "exit_status_known" || k == "adopted") {
      if (!v.is_bool()) return invalidArgument(std::string(k) + ": must be a boolean");
    } else if (k == "reason") {
      if (!v.is_string()) return invalidArgument("reason: must be a string");
      v = bj::string(firstBytes(v.as_string(), kMaxReasonBytes));
    } else if (k == "log_tail") {
      if (!v.is_string()) return invalidArgument("log_tail: must be a string");
      v = bj::string(lastBytes(v.as_string(), kMaxLogTailBytes));
    } else if (k == "spec") {
      if (type != proto::event::kJobStarted)
        return invalidArgument("spec: only job.started carries one");
      // The same parser the agent accepted it with; the GPUs are checked for form only here.
      std::vector<std::string> gpus;
      if (v.is_object())
        if (const auto* g = v.as_object().if_contains("gpus"); g && g->is_array())
          for (const auto& u : g->as_array())
            if (u.is_string()) gpus.emplace_back(u.as_string());
      auto spec = proto::parseJobSpec(v, gpus, "/");
      if (!spec) return invalidArgument("spec: " + spec.error().message);
      if (spec->id != id->as_string()) return invalidArgument("spec: its id is not the job_id");
    } else if (bj::serialize(v).size() > kMaxOtherFieldBytes) {
      return invalidArgument(quoteable(k) + ": larger than " + std::to_string(kMaxOtherFieldBytes) +
                             " bytes");
    }
  }
  return data;
}

Result<bj::object> checkInventoryData(bj::object data) {
  for (const char* k : {"gpus", "added", "removed", "changed"}) {
    const auto* v = data.if_contains(k);
    if (v == nullptr) continue;
    if (!v->is_array()) return invalidArgument(std::string(k) + ": must be an array");
    if (v->as_array().size() > kMaxInventoryGpus)
      return invalidArgument(std::string(k) + ": more than " + std::to_string(kMaxInventoryGpus) +
                             " GPUs");
    for (const auto& g : v->as_array()) {
      if (!g.is_object()) return invalidArgument(std::string(k) + ": a GPU is not an object");
      const auto* u = g.as_object().if_contains("uuid");
      if (u == nullptr || !u->is_string() || u->as_string().empty() ||
          u->as_string().size() > proto::kMaxGpuUuidBytes)
        return invalidArgument(std::string(k) + ": a GPU has no valid uuid");
      if (bj::serialize(g).size() > kMaxGpuJsonBytes)
        return invalidArgument(std::string(k) + ": a GPU is larger than " +
                               std::to_string(kMaxGpuJsonBytes) + " bytes");
    }
  }
  for (const auto& kv : data) {
    const std::string_view k = kv.key();
    if (k == "gpus" || k == "added" || k == "removed" || k == "changed") continue;
    if (bj::serialize(kv.value()).size() > kMaxOtherFieldBytes)
      return invalidArgument(quoteable(k) + ": larger than " + std::to_string(kMaxOtherFieldBytes) +
                             " bytes");
  }
  return data;
}

int64_t nowMs() { return SystemClock::instance().nowMs(); }

// Completes when every append has been committed (or refused); the result is the first error.
std::optional<double> dbl(const bj::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it == o.end() || !it->value().is_number()) return std::nullopt;
  boost::system::error_code ec;
  double d = it->value().to_number<double>(ec);
  return ec ? std::nullopt : std::optional<double>(d);
}

std::optional<int64_t> i64(const bj::object& o, std::string_view k) {
  auto d = dbl(o, k);
  return d ? std::optional<int64_t>(static_cast<int64_t>(*d)) : std::nullopt;
}

// The memory of each job's processes on a GPU of an agent's answer, summed by job (a job id the
// agent names must be a valid one; a process without a figure adds nothing).
std::vector<std::pair<std::string, int64_t>> jobMemoryOf(const bj::object& gpu) {
  std::map<std::string, int64_t> by_job;
  for (const auto& p : probes::processesFromJson(gpu)) {
    if (p.job_id.empty() || !p.memory_bytes ||
        *p.memory_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      continue;
    }
    by_job[p.job_id] += static_cast<int64_t>(*p.memory_bytes);
  }
  return {by_job.begin(), by_job.end()};
}

// The GPU points of an agent's /v1/telemetry answer.
std::vector<ledger::GpuPoint> pointsFromTelemetry(const bj::object& t) {
  std::vector<ledger::GpuPoint> out;
  auto it = t.find("gpus");
  if (it == t.end() || !it->value().is_array()) return out;
  for (const auto& g : it->value().get_array()) {
    if (!g.is_object()) continue;
    const auto& o = g.get_object();
    auto uuid = o.find("uuid");
    if (uuid == o.end() || !uuid->value().is_string() || uuid->value().get_string().empty())
      continue;
    ledger::GpuPoint p;
    p.uuid = std::string(uuid->value().get_string());
    p.util_pct = dbl(o, "utilization_gpu_pct");
    p.mem_used_bytes = i64(o, "memory_used_bytes");
    p.mem_total_bytes = i64(o, "memory_total_bytes");
    p.power_w = dbl(o, "power_w");
    p.temp_c = dbl(o, "temperature_c");
    p.energy_mj = i64(o, "energy_mj");
    p.job_memory = jobMemoryOf(o);
    out.push_back(std::move(p));
  }
  return out;
}

auto awaitAppends(ledger::Ledger& l, std::vector<ledger::AppendRequest> reqs) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<Status>)>(
      [&l](auto handler, std::vector<ledger::AppendRequest> rs) {
        using H = decltype(handler);
        struct State {
          explicit State(H h, size_t n) : handler(std::move(h)), results(n), left(n) {}
          H handler;
          std::vector<Status> results;
          std::atomic<size_t> left;
        };
        auto ex = asio::get_associated_executor(handler);
        auto st = std::make_shared<State>(std::move(handler), rs.size());
        if (rs.empty()) {
          asio::post(ex, [st] { st->handler(std::vector<Status>{}); });
          return;
        }
        for (size_t i = 0; i < rs.size(); ++i) {
          l.appendAsync(std::move(rs[i]), [st, i, ex](const Result<ledger::AppendResult>& r) {
            if (!r) st->results[i] = r.error();
            if (--st->left == 0) asio::post(ex, [st] { st->handler(std::move(st->results)); });
          });
        }
      },
      asio::use_awaitable, std::move(reqs));
}

}  // namespace

ledger::AppendRequest rejectedEntryEvent(const std::string& host_id, int64_t seq,
                                         const std::string& type, const std::string& reason) {
  ledger::AppendRequest req;
  req.actor = "host:" + host_id;
  req.parts.push_back({"host/" + host_id,
                       ledger::kAnyVersion,
                       {{host_id + ":" + std::to_string(seq), proto::event::kAgentRejectedEntry,
                         bj::object{{"host_id", host_id},
                                    {"agent_seq", seq},
                                    {"entry_type", quoteable(type)},
                                    {"reason", reason}}}}});
  return req;
}

ledger::AppendRequest outboxEntryToEvent(const std::string& host_id, const bj::object& entry) {
  int64_t seq = 0;
  if (auto it = entry.find("seq");
      it != entry.end() && it->value().is_int64() && it->value().as_int64() > 0)
    seq = it->value().as_int64();
  std::string type;
  if (auto it = entry.find("type"); it != entry.end() && it->value().is_string())
    type = firstBytes(it->value().get_string(), 128);
  auto refuse = [&](const std::string& why) { return rejectedEntryEvent(host_id, seq, type, why); };
  if (bj::serialize(entry).size() > kMaxEntryJsonBytes)
    return refuse("the entry is larger than " + std::to_string(kMaxEntryJsonBytes) + " bytes");
  const bool job = kJobEventStates.count(type) != 0;
  if (!job && type != kInventoryType)
    return refuse("entries of type \"" + quoteable(type) + "\" are not accepted from agents");
  auto it = entry.find("data");
  if (it == entry.end() || !it->value().is_object()) return refuse("data: must be an object");
  Result<bj::object> checked = job ? checkJobData(type, it->value().get_object())
                                   : checkInventoryData(it->value().get_object());
  if (!checked) return refuse(checked.error().message);
  bj::object data = std::move(*checked);
  data["host_id"] = host_id;  // the verified identity, never what the agent wrote
  data["agent_seq"] = seq;
  if (auto t = entry.find("time_ms"); t != entry.end()) {
    if (!isInt(t->value())) return refuse("time_ms: must be an integer");
    data["agent_time_ms"] = t->value();
  }
  std::string stream = "host/" + host_id;
  if (job) stream = "job/" + std::string(data.at("job_id").as_string());
  ledger::AppendRequest req;
  req.actor = "host:" + host_id;
  req.parts.push_back({stream,
                       ledger::kAnyVersion,
                       {{host_id + ":" + std::to_string(seq), std::move(type), std::move(data)}}});
  return req;
}

Known knownOf(proto::HostState s) {
  return s == proto::HostState::kReachable     ? Known::kUp
         : s == proto::HostState::kUnreachable ? Known::kDown
                                               : Known::kUnknown;
}

std::optional<ledger::NewEvent> reachabilityChange(const std::string& host_id, bool ok, int misses,
                                                   int threshold, Known& known,
                                                   const std::string& why) {
  if (ok && known != Known::kUp) {
    known = Known::kUp;
    return ledger::NewEvent{"", proto::event::kHostReachable, bj::object{{"host_id", host_id}}};
  }
  if (!ok && misses >= threshold && known != Known::kDown) {
    // Only after several misses in a row: one slow answer is not an outage.
    known = Known::kDown;
    return ledger::NewEvent{
        "", proto::event::kHostUnreachable,
        bj::object{{"host_id", host_id}, {"missed_scrapes", misses}, {"error", why}}};
  }
  return std::nullopt;
}

struct Collector::Impl {
  struct Link {
    Link(asio::io_context& ioc, std::string id, std::string addr)
        : host_id(std::move(id)),
          address(std::move(addr)),
          strand(asio::make_strand(ioc)),
          timer(strand) {}
    std::string host_id;
    std::string address;
    asio::strand<asio::io_context::executor_type> strand;
    asio::steady_timer timer;
    std::atomic<bool> stopped{false};
    Known known = Known::kUnknown;
  };

  ledger::Ledger& ledger;
  ledger::TimeSeries& store;
  CollectorSettings settings;
  dispatch::AgentTransport& transport;
  asio::io_context& ioc;
  std::thread sync_thread;
  std::map<proto::HostKind, std::unique_ptr<HostSource>> sources;
  std::condition_variable links_cv;
  size_t links_running = 0;  // coroutines of links not yet ended (under mu)
  std::mutex mu;
  std::condition_variable sync_cv;
  bool sync_requested = false;
  bool stopping = false;
  std::map<std::string, std::shared_ptr<Link>> links;
  std::map<std::string, HostLive> live;
  uint64_t ok = 0, failed = 0;
  std::vector<double> latencies;  // ring of the last kWindow
  size_t latency_next = 0;
  static constexpr size_t kWindow = 20'000;
  void latency(double ms) {
    ++ok;
    if (latencies.size() < kWindow)
      latencies.push_back(ms);
    else
      latencies[latency_next++ % kWindow] = ms;
  }

  Impl(ledger::Ledger& l, ledger::TimeSeries& s, CollectorSettings st, dispatch::AgentTransport& t)
      : ledger(l), store(s), settings(st), transport(t), ioc(dispatch::ioContext(t)) {}
  void startLink(const ledger::HostRow& h, int64_t cursor);
  void stopLink(const std::string& host_id);

  void update(const std::string& id, const std::function<void(HostLive&)>& f) {
    std::lock_guard lk(mu);
    f(live[id]);
    ++generation;
  }
  std::atomic<uint64_t> generation{0};  // bumped by every change of `live`

  asio::awaitable<Result<std::pair<unsigned, std::string>>> request(Link& link,
                                                                    const std::string& target);
  // One scheduled request: timed, counted, and its outcome fed to the reachability state.
  // The body on 200, nullopt on a failure (or a 503 when `busy_ok`, answered but not ready).
  asio::awaitable<std::optional<std::string>> scrapeGet(std::shared_ptr<Link> link,
                                                        const std::string& target, bool busy_ok);
  // An outbox entry on its way into the ledger.
  struct Drained {
    int64_t seq = 0;
    ledger::AppendRequest req;
  };
  // Appends `batch` (concurrently, results in order) and moves `done` to the last seq recorded
  // before the first failure; false on that failure. Empties the batch.
  asio::awaitable<bool> appendInOrder(std::shared_ptr<Link> link, std::vector<Drained>& batch,
                                      int64_t& done);
  asio::awaitable<bool> drain(std::shared_ptr<Link> link);
  asio::awaitable<bool> scrape(std::shared_ptr<Link> link);
  asio::awaitable<void> run(std::shared_ptr<Link> link);
  asio::awaitable<void> outcome(std::shared_ptr<Link> link, bool ok, const std::string& why);
  // Records a poll's outcome in the live view; the append it calls for, if any.
  std::optional<ledger::AppendRequest> noteOutcome(const std::string& host_id, Known& known,
                                                   bool ok, const std::string& why);
  // The telemetry document of a poll, into the time series and the live view.
  void noteTelemetry(const std::string& host_id, bj::object body);
  std::unique_ptr<HostSink> sink;
  void syncLoop();
  void syncOnce();
};

asio::awaitable<Result<std::pair<unsigned, std::string>>> Collector::Impl::request(
    Link& link, const std::string& target) {
  using R = Result<std::pair<unsigned, std::string>>;
  // On the transport's pooled connections, shared with job dispatch.
  dispatch::AgentEndpoint to{link.host_id, link.address};
  dispatch::AgentCall call{.method = "GET", .target = target, .timeout = settings.request_timeout};
  auto r = co_await dispatch::asyncCall(transport, std::move(to), std::move(call));
  if (!r) co_return R(r.error());
  co_return R(std::make_pair(r->status, std::move(r->body)));
}

std::optional<ledger::AppendRequest> Collector::Impl::noteOutcome(const std::string& host_id,
                                                                  Known& known, bool ok,
                                                                  const std::string& why) {
  int misses = 0;
  update(host_id, [&](HostLive& h) {
    h.connected = ok;
    if (ok) {
      h.misses = 0;
      h.last_seen_ms = nowMs();
    } else {
      ++h.misses;
    }
    misses = h.misses;
    if (!ok && h.misses == 1) spdlog::info("poll of {} failed: {}", host_id, why);
  });
  auto change = reachabilityChange(host_id, ok, misses, settings.miss_threshold, known, why);
  if (!change) return std::nullopt;
  update(host_id, [&](HostLive& h) { h.reachable = known == Known::kUp; });
  ledger::AppendRequest req;
  req.actor = "system";
  req.parts.push_back({"host/" + host_id, ledger::kAnyVersion, {std::move(*change)}});
  return req;
}

asio::awaitable<void> Collector::Impl::outcome(std::shared_ptr<Link> link, bool ok,
                                               const std::string& why) {
  auto req = noteOutcome(link->host_id, link->known, ok, why);
  if (!req) co_return;
  std::vector<ledger::AppendRequest> reqs;
  reqs.push_back(std::move(*req));
  co_await awaitAppends(ledger, std::move(reqs));
}

asio::awaitable<std::optional<std::string>> Collector::Impl::scrapeGet(std::shared_ptr<Link> link,
                                                                       const std::string& target,
                                                                       bool busy_ok) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = co_await request(*link, target);
  bool answered = r && (r->first == 200 || (busy_ok && r->first == 503));
  {
    std::lock_guard lk(mu);
    if (answered)
      latency(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    else
      ++failed;
  }
  // Arguments of a co_await are named locals, never temporaries: GCC 12 can destroy a
  // temporary that lives across a suspension twice.
  std::string why;
  if (!answered) why = !r ? r.error().message : "HTTP " + std::to_string(r->first);
  co_await outcome(link, answered, why);
  if (!answered || r->first != 200) co_return std::nullopt;
  co_return std::move(r->second);
}

asio::awaitable<bool> Collector::Impl::appendInOrder(std::shared_ptr<Link> link,
                                                     std::vector<Drained>& batch, int64_t& done) {
  if (batch.empty()) co_return true;
  std::vector<ledger::AppendRequest> reqs;
  reqs.reserve(batch.size());
  for (const auto& d : batch) reqs.push_back(d.req);
  auto results = co_await awaitAppends(ledger, std::move(reqs));
  bool ok = true;
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i] && results[i].error().code == Code::kConflict) {
      // The agent reuses a seq with other content (its state was reset): keep the entry as
      // a separate event rather than lose it, and move on.
      ledger::AppendRequest kept;
      kept.actor = "host:" + link->host_id;
      bj::object d{{"host_id", link->host_id},
                   {"agent_seq", batch[i].seq},
                   {"entry", batch[i].req.parts[0].events[0].data}};
      kept.parts.push_back({"host/" + link->host_id,
                            ledger::kAnyVersion,
                            {{"", proto::event::kHostOutboxConflict, std::move(d)}}});
      std::vector<ledger::AppendRequest> one;
      one.push_back(std::move(kept));
      auto again = co_await awaitAppends(ledger, std::move(one));
      if (!again.front()) {
        ok = false;
        break;
      }
    } else if (!results[i]) {
      spdlog::warn("outbox of {}: {}", link->host_id, results[i].error().message);
      ok = false;
      break;
    }
    done = batch[i].seq;
  }
  batch.clear();
  co_return ok;
}

namespace {

// Which host the ledger places each job on (nullopt: the ledger has no such job).
Result<std::map<std::string, std::optional<std::string>>> jobOwners(
    ledger::Ledger& ledger, const std::set<std::string>& ids) {
  return ledger.withReader(
      [&](ledger::ReadView& view) -> Result<std::map<std::string, std::optional<std::string>>> {
        std::map<std::string, std::optional<std::string>> out;
        for (const auto& id : ids) {
          auto j = view.findJob(id);
          if (!j) return j.error();
          out[id] = j->has_value() ? std::optional<std::string>((*j)->host_id) : std::nullopt;
        }
        return out;
      });
}

std::string jobOf(const ledger::AppendRequest& req) {
  const auto& ev = req.parts[0].events[0];
  if (ev.type.rfind("job.", 0) != 0) return {};
  return std::string(ev.data.as_object().at("job_id").as_string());
}

}  // namespace

asio::awaitable<bool> Collector::Impl::drain(std::shared_ptr<Link> link) {
  const std::string& host = link->host_id;
  for (int page = 0; page < 20; ++page) {
    int64_t cursor = 0;
    {
      std::lock_guard lk(mu);
      cursor = live[host].outbox_cursor;
    }
    const std::string target = "/v1/outbox?after=" + std::to_string(cursor) +
                               "&limit=" + std::to_string(settings.outbox_page);
    auto text = co_await scrapeGet(link, target, false);
    if (!text) co_return false;
    auto body = json::parseObject(*text);
    if (!body || !body->contains("entries") || !body->at("entries").is_array()) co_return false;
    const auto& entries = body->at("entries").get_array();
    std::vector<Drained> items;
    std::set<std::string> job_ids;
    int64_t last = cursor;
    for (const auto& e : entries) {
      if (!e.is_object()) continue;
      auto req = outboxEntryToEvent(host, e.get_object());
      int64_t seq = req.parts[0].events[0].data.as_object().at("agent_seq").as_int64();
      // In seq order, each once: anything else cannot be acknowledged by the cursor.
      if (seq <= last) continue;
      last = seq;
      if (auto j = jobOf(req); !j.empty()) job_ids.insert(j);
      items.push_back({seq, std::move(req)});
    }
    if (items.empty()) co_return true;
    // A host reports only its own jobs: a job the ledger places on another host is refused. A job
    // the ledger does not know was started on this agent directly and becomes this host's, unless
    // its id is of the server's form (those are in the ledger before they are dispatched).
    auto owners = jobOwners(ledger, job_ids);
    if (!owners) co_return false;
    int64_t done = cursor;
    bool ok = true;
    std::vector<Drained> batch;
    for (auto& item : items) {
      const std::string job = jobOf(item.req);
      const std::string type = item.req.parts[0].events[0].type;
      if (!job.empty()) {
        auto& owner = (*owners)[job];
        if (!owner && job.rfind("job-", 0) != 0) {
          // Claimed by this entry: alone, on a stream that must still be new, after what came
          // before it, so two hosts cannot both claim one job.
          ok = co_await appendInOrder(link, batch, done);
          if (!ok) break;
          std::set<std::string> one{job};
          auto fresh = jobOwners(ledger, one);
          if (!fresh) {
            ok = false;
            break;
          }
          owner = fresh->at(job);
          if (!owner) {
            item.req.parts[0].expected_version = ledger::kNoStream;
            std::vector<ledger::AppendRequest> claim;
            claim.push_back(item.req);
            auto r = co_await awaitAppends(ledger, std::move(claim));
            if (r.front()) {
              owner = host;
              done = item.seq;
              continue;
            }
            if (r.front().error().code != Code::kConflict) {
              spdlog::warn("outbox of {}: {}", host, r.front().error().message);
              ok = false;
              break;
            }
            fresh = jobOwners(ledger, one);
            if (!fresh) {
              ok = false;
              break;
            }
            owner = fresh->at(job);
            item.req.parts[0].expected_version = ledger::kAnyVersion;
          }
        }
        if (!owner) {
          item.req =
              rejectedEntryEvent(host, item.seq, type, "job " + job + " is not in the ledger");
        } else if (*owner != host) {
          item.req =
              rejectedEntryEvent(host, item.seq, type, "job " + job + " is placed on another host");
        }
        if (item.req.parts[0].events[0].type == proto::event::kAgentRejectedEntry)
          spdlog::warn("outbox of {}: entry {} ({}) refused: job {} is not this host's", host,
                       item.seq, type, job);
      }
      batch.push_back(std::move(item));
    }
    if (ok) ok = co_await appendInOrder(link, batch, done);
    update(host, [&](HostLive& h) { h.outbox_cursor = std::max(h.outbox_cursor, done); });
    if (!ok || done != items.back().seq || entries.size() < settings.outbox_page) co_return true;
  }
  co_return true;
}

asio::awaitable<bool> Collector::Impl::scrape(std::shared_ptr<Link> link) {
  // 503: the agent answered but has no sample yet.
  const std::string target = "/v1/telemetry";
  auto text = co_await scrapeGet(link, target, true);
  if (!text) co_return false;
  auto body = json::parseObject(*text);
  if (!body) co_return false;
  noteTelemetry(link->host_id, std::move(*body));
  co_return true;
}

asio::awaitable<void> Collector::Impl::run(std::shared_ptr<Link> link) {
  using clock = std::chrono::steady_clock;
  auto next_outbox = clock::now();
  auto next_tel = clock::now();
  while (!link->stopped) {
    auto now = clock::now();
    if (now >= next_outbox) {
      co_await drain(link);
      next_outbox = clock::now() + settings.outbox_interval;
    }
    if (link->stopped) break;
    if (clock::now() >= next_tel) {
      co_await scrape(link);
      next_tel = clock::now() + settings.telemetry_interval;
    }
    link->timer.expires_at(std::min(next_outbox, next_tel));
    auto [ec] = co_await link->timer.async_wait(kNoThrow);
    (void)ec;
  }
  update(link->host_id, [](HostLive& h) { h.connected = false; });
  {
    std::lock_guard lk(mu);
    --links_running;
  }
  links_cv.notify_all();
}

void Collector::Impl::syncOnce() {
  auto rows = ledger.withReader(
      [](ledger::ReadView& view) -> Result<std::vector<std::tuple<ledger::HostRow, int64_t>>> {
        auto hosts = view.listHosts();
        if (!hosts) return hosts.error();
        // One read of every cursor, not a query per host (this runs every few seconds).
        auto cursors = view.agentCursors();
        if (!cursors) return cursors.error();
        std::vector<std::tuple<ledger::HostRow, int64_t>> out;
        for (auto& h : *hosts) {
          auto it = cursors->find(h.id);
          int64_t c = it == cursors->end() ? 0 : it->second;
          out.emplace_back(std::move(h), c);
        }
        return out;
      });
  if (!rows) {
    spdlog::warn("collector: {}", rows.error().message);
    return;
  }
  std::set<std::string> wanted;
  for (auto& [h, cursor] : *rows) {
    auto src = sources.find(h.kind);
    // A host of a kind no source follows is not called at all.
    if (src == sources.end() || h.state == proto::HostState::kRevoked || h.address.empty())
      continue;
    wanted.insert(h.id);
    if (!src->second->follows(h)) src->second->follow(h, cursor);
  }
  std::vector<std::string> gone;
  {
    std::lock_guard lk(mu);
    for (const auto& [id, l] : live)
      if (wanted.count(id) == 0) gone.push_back(id);
  }
  for (const auto& id : gone) {
    for (auto& [kind, src] : sources) src->drop(id);
    std::lock_guard lk(mu);
    live.erase(id);
    ++generation;
  }
}

void Collector::Impl::noteTelemetry(const std::string& host_id, bj::object body) {
  const int64_t now = nowMs();
  store.record(host_id, now, pointsFromTelemetry(body));
  auto shared = std::make_shared<const bj::object>(std::move(body));
  update(host_id, [&](HostLive& h) {
    h.telemetry = shared;
    h.telemetry_ms = now;
  });
}

namespace {
// How sources outside the collector report: synchronously, from their own threads.
class Sink final : public HostSink {
 public:
  explicit Sink(Collector::Impl& c) : c_(c) {}
  void following(const ledger::HostRow& h) override {
    {
      std::lock_guard lk(mu_);
      known_[h.id] = knownOf(h.state);
    }
    c_.update(h.id, [&](HostLive& l) { l.reachable = h.state == proto::HostState::kReachable; });
  }
  void observed(const std::string& host_id, bool ok, const std::string& raw_why,
                double latency_ms) override {
    // The reason may quote what the host printed: bounded, valid UTF-8, no control characters,
    // before it reaches a log line or host.unreachable.
    std::string why = json::validUtf8(firstBytes(raw_why, 1024));
    for (char& c : why)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    {
      std::lock_guard lk(c_.mu);
      if (ok)
        c_.latency(latency_ms);
      else
        ++c_.failed;
    }
    std::optional<ledger::AppendRequest> req;
    {
      std::lock_guard lk(mu_);
      auto it = known_.find(host_id);
      if (it == known_.end()) return;  // forgotten meanwhile
      req = c_.noteOutcome(host_id, it->second, ok, why);
    }
    if (req) {
      if (auto st = c_.ledger.append(std::move(*req)); !st)
        spdlog::warn("host {}: {}", host_id, st.error().message);
    }
  }
  void telemetry(const std::string& host_id, bj::object body) override {
    c_.noteTelemetry(host_id, std::move(body));
  }
  void forget(const std::string& host_id) override {
    std::lock_guard lk(mu_);
    known_.erase(host_id);
  }

 private:
  Collector::Impl& c_;
  std::mutex mu_;  // taken before c_.mu (noteOutcome updates the live view under it)
  std::map<std::string, Known> known_;
};
}  // namespace

// The agent's HTTPS API as a host source: a coroutine per host on the transport's I/O context.
class AgentSource final : public HostSource {
 public:
  explicit AgentSource(Collector::Impl& c) : c_(c) {}
  [[nodiscard]] proto::HostKind kind() const override { return proto::HostKind::kAgent; }
  [[nodiscard]] bool follows(const ledger::HostRow& h) const override {
    std::lock_guard lk(c_.mu);
    auto it = c_.links.find(h.id);
    return it != c_.links.end() && it->second->address == h.address;
  }
  void follow(const ledger::HostRow& h, int64_t cursor) override { c_.startLink(h, cursor); }
  void drop(const std::string& host_id) override { c_.stopLink(host_id); }
  void stopAll() override {
    std::vector<std::string> ids;
    {
      std::lock_guard lk(c_.mu);
      for (const auto& [id, l] : c_.links) ids.push_back(id);
    }
    for (const auto& id : ids) c_.stopLink(id);
    // Links finish their current request (bounded by the request timeout) and exit.
    std::unique_lock lk(c_.mu);
    c_.links_cv.wait(lk, [&] { return c_.links_running == 0; });
  }

 private:
  Collector::Impl& c_;
};

void Collector::Impl::startLink(const ledger::HostRow& h, int64_t cursor) {
  std::lock_guard lk(mu);
  if (stopping) return;
  auto it = links.find(h.id);
  if (it != links.end()) it->second->stopped = true;
  auto link = std::make_shared<Link>(ioc, h.id, h.address);
  link->known = knownOf(h.state);
  auto& l = live[h.id];
  l.outbox_cursor = std::max(l.outbox_cursor, cursor);
  l.reachable = link->known == Known::kUp;
  ++generation;
  links[h.id] = link;
  ++links_running;
  asio::co_spawn(link->strand, run(link), asio::detached);
}

void Collector::Impl::stopLink(const std::string& host_id) {
  std::shared_ptr<Link> link;
  {
    std::lock_guard lk(mu);
    auto it = links.find(host_id);
    if (it == links.end()) return;
    link = it->second;
    links.erase(it);
  }
  // Revoked (or gone): stop calling its agent now.
  link->stopped = true;
  asio::post(link->strand, [link] { link->timer.cancel(); });
  transport.closeHost(host_id);
}

void Collector::Impl::syncLoop() {
  std::unique_lock lk(mu);
  while (!stopping) {
    lk.unlock();
    syncOnce();
    lk.lock();
    sync_cv.wait_for(lk, settings.host_sync_interval,
                     [this] { return stopping || sync_requested; });
    sync_requested = false;
  }
}

Collector::Collector(ledger::Ledger& ledger, ledger::TimeSeries& store, CollectorSettings settings,
                     dispatch::AgentTransport& transport)
    : impl_(std::make_unique<Impl>(ledger, store, settings, transport)) {
  impl_->sources[proto::HostKind::kAgent] = std::make_unique<AgentSource>(*impl_);
  impl_->sink = std::make_unique<Sink>(*impl_);
}

void Collector::addSource(std::unique_ptr<HostSource> source) {
  const auto kind = source->kind();
  impl_->sources[kind] = std::move(source);
}

HostSink& Collector::sink() { return *impl_->sink; }

Collector::~Collector() { stop(); }

Status Collector::start() {
  impl_->sync_thread = std::thread([this] { impl_->syncLoop(); });
  return {};
}

void Collector::stop() {
  if (!impl_->sync_thread.joinable()) return;
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->sync_cv.notify_all();
  impl_->sync_thread.join();
  for (auto& [kind, src] : impl_->sources) src->stopAll();
}

void Collector::syncHosts() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->sync_requested = true;
  }
  impl_->sync_cv.notify_all();
}

uint64_t Collector::generation() const { return impl_->generation.load(); }

std::optional<HostLive> Collector::live(const std::string& id) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->live.find(id);
  if (it == impl_->live.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, HostLive> Collector::liveAll() const {
  std::lock_guard lk(impl_->mu);
  return impl_->live;
}

ScrapeStats Collector::stats() const {
  std::vector<double> v;
  ScrapeStats s;
  {
    std::lock_guard lk(impl_->mu);
    v = impl_->latencies;
    s.ok = impl_->ok;
    s.failed = impl_->failed;
  }
  s.window = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  s.p50_ms = at(0.50);
  s.p99_ms = at(0.99);
  s.max_ms = v.back();
  return s;
}

}  // namespace hwl::collect

namespace hwl::collect {

std::optional<dispatch::HostNow> Collector::now(const std::string& host_id) const {
  auto l = live(host_id);
  if (!l) return std::nullopt;
  dispatch::HostNow n{l->reachable, l->telemetry != nullptr, {}};
  if (!l->telemetry) return n;
  auto it = l->telemetry->find("gpus");
  if (it == l->telemetry->end() || !it->value().is_array()) return n;
  for (const auto& g : it->value().get_array()) {
    if (!g.is_object()) continue;
    const auto& o = g.get_object();
    auto u = o.find("uuid");
    if (u == o.end() || !u->value().is_string()) continue;
    auto num = [&](std::string_view k) -> std::optional<int64_t> {
      auto f = o.find(k);
      if (f == o.end() || !f->value().is_number()) return std::nullopt;
      boost::system::error_code ec;
      auto v = f->value().to_number<double>(ec);
      return ec ? std::nullopt : std::optional<int64_t>(static_cast<int64_t>(v));
    };
    auto total = num("memory_total_bytes");
    n.gpus.push_back({std::string(u->value().get_string()), total.value_or(0),
                      total ? num("memory_used_bytes") : std::nullopt});
  }
  return n;
}

}  // namespace hwl::collect
