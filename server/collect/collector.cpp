// Per-host coroutines: persistent mutual-TLS connections to agents, outbox drains, telemetry.
#include "collector.hpp"

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
#include <set>
#include <thread>

#include "hwl/crypto.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"
#include "hwl/tls.hpp"
#include "ledger/fleet_projection.hpp"
#include "ledger/hosts_projection.hpp"

namespace hwl::collect {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bj = boost::json;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

namespace {

const std::set<std::string> kAgentEventTypes = {
    "job.started", "job.ready", "job.exited", "job.failed",
    "job.cancelled", "job.lost", "host.inventory_changed"};

int64_t nowMs() { return SystemClock::instance().nowMs(); }

// Completes when every append has been committed (or refused); the result is the first error.
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
          l.appendAsync(std::move(rs[i]), [st, i, ex](Result<ledger::AppendResult> r) {
            if (!r) st->results[i] = r.error();
            if (--st->left == 0)
              asio::post(ex, [st] { st->handler(std::move(st->results)); });
          });
        }
      },
      asio::use_awaitable, std::move(reqs));
}

}  // namespace

ledger::AppendRequest outboxEntryToEvent(const std::string& host_id, const bj::object& entry) {
  int64_t seq = 0;
  if (auto it = entry.find("seq"); it != entry.end() && it->value().is_number()) {
    boost::system::error_code ec;
    seq = it->value().to_number<int64_t>(ec);
  }
  std::string type;
  if (auto it = entry.find("type"); it != entry.end() && it->value().is_string())
    type = std::string(it->value().get_string());
  bj::object data;
  if (auto it = entry.find("data"); it != entry.end() && it->value().is_object())
    data = it->value().get_object();
  if (kAgentEventTypes.count(type) == 0) {
    // Kept, not dropped: an entry of a type this server does not know.
    data = bj::object{{"type", type}, {"entry", data}};
    type = "agent.unknown_entry";
  }
  data["host_id"] = host_id;  // the verified identity, never what the agent wrote
  data["agent_seq"] = seq;
  if (auto it = entry.find("time_ms"); it != entry.end()) data["agent_time_ms"] = it->value();
  std::string stream = "host/" + host_id;
  if (type.rfind("job.", 0) == 0) {
    auto job = data.find("job_id");
    if (job != data.end() && job->value().is_string() && !job->value().get_string().empty())
      stream = "job/" + std::string(job->value().get_string());
  }
  ledger::AppendRequest req;
  req.actor = "host:" + host_id;
  req.parts.push_back(
      {stream, ledger::kAnyVersion,
       {{host_id + ":" + std::to_string(seq), std::move(type), std::move(data)}}});
  return req;
}

struct Collector::Impl {
  struct Link {
    Link(asio::io_context& ioc, std::string id, std::string addr)
        : host_id(std::move(id)), address(std::move(addr)), strand(asio::make_strand(ioc)),
          timer(strand) {}
    std::string host_id;
    std::string address;
    asio::strand<asio::io_context::executor_type> strand;
    asio::steady_timer timer;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
    beast::flat_buffer buffer;
    std::atomic<bool> stopped{false};
    enum class Known { kUnknown, kUp, kDown } known = Known::kUnknown;
  };

  ledger::Ledger& ledger;
  TelemetryStore& store;
  CollectorSettings settings;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<asio::ssl::context> ssl;
  std::thread io_thread;
  std::thread sync_thread;
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

  Impl(ledger::Ledger& l, TelemetryStore& s, CollectorSettings st)
      : ledger(l), store(s), settings(std::move(st)) {}

  void update(const std::string& id, const std::function<void(HostLive&)>& f) {
    std::lock_guard lk(mu);
    f(live[id]);
  }

  asio::awaitable<Result<std::pair<unsigned, std::string>>> request(Link& link,
                                                                    const std::string& target);
  // One scheduled request: timed, counted, and its outcome fed to the reachability state.
  // The body on 200, nullopt on a failure (or a 503 when `busy_ok`, answered but not ready).
  asio::awaitable<std::optional<std::string>> scrapeGet(std::shared_ptr<Link> link,
                                                        const std::string& target, bool busy_ok);
  asio::awaitable<bool> drain(std::shared_ptr<Link> link);
  asio::awaitable<bool> scrape(std::shared_ptr<Link> link);
  asio::awaitable<void> run(std::shared_ptr<Link> link);
  asio::awaitable<void> outcome(std::shared_ptr<Link> link, bool ok, const std::string& why);
  void syncLoop();
  void syncOnce();
};

asio::awaitable<Result<std::pair<unsigned, std::string>>> Collector::Impl::request(
    Link& link, const std::string& target) {
  using R = Result<std::pair<unsigned, std::string>>;
  beast::error_code ec;
  if (!link.stream) {
    auto hp = http::splitHostPort(link.address);
    if (!hp) co_return R(hp.error());
    tcp::resolver resolver(link.strand);
    auto [rec, results] =
        co_await resolver.async_resolve(hp->first, std::to_string(hp->second), kNoThrow);
    if (rec) co_return R(unavailable("cannot resolve " + link.address + ": " + rec.message()));
    link.stream.emplace(link.strand, *ssl);
    link.buffer.clear();
    auto& tcp_stream = beast::get_lowest_layer(*link.stream);
    tcp_stream.expires_after(settings.request_timeout);
    auto [cec, ep] = co_await tcp_stream.async_connect(results, kNoThrow);
    if (cec) {
      link.stream.reset();
      co_return R(unavailable("cannot connect to " + link.address + ": " + cec.message()));
    }
    tcp_stream.expires_after(settings.request_timeout);
    std::tie(ec) = co_await link.stream->async_handshake(asio::ssl::stream_base::client, kNoThrow);
    if (ec) {
      link.stream.reset();
      co_return R(unavailable("TLS handshake with " + link.address + " failed: " + ec.message()));
    }
    // The agent must be the host we think it is: its certificate's SAN names that host.
    http::PeerCert pc;
    if (X509* peer = SSL_get0_peer_certificate(link.stream->native_handle()))
      http::tls::describe(peer, pc);
    std::string want = "hwledger://host/" + link.host_id;
    if (std::find(pc.uris.begin(), pc.uris.end(), want) == pc.uris.end()) {
      link.stream.reset();
      co_return R(permissionDenied("the agent at " + link.address + " is not " + link.host_id));
    }
  }
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, link.address);
  req.set(bhttp::field::user_agent, "hwledger-server");
  req.keep_alive(true);
  auto& lowest = beast::get_lowest_layer(*link.stream);
  lowest.expires_after(settings.request_timeout);
  size_t n = 0;
  std::tie(ec, n) = co_await bhttp::async_write(*link.stream, req, kNoThrow);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(32 << 20);
  if (!ec) std::tie(ec, n) = co_await bhttp::async_read(*link.stream, link.buffer, parser, kNoThrow);
  if (ec) {
    link.stream.reset();
    co_return R(unavailable("GET " + target + " on " + link.address + ": " + ec.message()));
  }
  auto res = parser.release();
  if (!res.keep_alive()) link.stream.reset();
  co_return R(std::make_pair(res.result_int(), std::move(res.body())));
}

asio::awaitable<void> Collector::Impl::outcome(std::shared_ptr<Link> link, bool ok,
                                               const std::string& why) {
  int misses = 0;
  update(link->host_id, [&](HostLive& h) {
    h.connected = link->stream.has_value();
    if (ok) {
      h.misses = 0;
      h.last_seen_ms = nowMs();
    } else {
      ++h.misses;
    }
    misses = h.misses;
    if (!ok && h.misses == 1) spdlog::info("scrape of {} failed: {}", link->host_id, why);
  });
  ledger::NewEvent ev;
  if (ok && link->known != Link::Known::kUp) {
    ev = {"", "host.reachable", bj::object{{"host_id", link->host_id}}};
    link->known = Link::Known::kUp;
  } else if (!ok && misses >= settings.miss_threshold && link->known != Link::Known::kDown) {
    // Only after several misses in a row: one slow answer is not an outage.
    ev = {"", "host.unreachable",
          bj::object{{"host_id", link->host_id}, {"missed_scrapes", misses}, {"error", why}}};
    link->known = Link::Known::kDown;
  } else {
    co_return;
  }
  update(link->host_id, [&](HostLive& h) { h.reachable = link->known == Link::Known::kUp; });
  ledger::AppendRequest req;
  req.actor = "system";
  req.parts.push_back({"host/" + link->host_id, ledger::kAnyVersion, {std::move(ev)}});
  std::vector<ledger::AppendRequest> reqs;
  reqs.push_back(std::move(req));
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
      latency(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                  .count());
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

asio::awaitable<bool> Collector::Impl::drain(std::shared_ptr<Link> link) {
  for (int page = 0; page < 20; ++page) {
    int64_t cursor = 0;
    {
      std::lock_guard lk(mu);
      cursor = live[link->host_id].outbox_cursor;
    }
    const std::string target = "/v1/outbox?after=" + std::to_string(cursor) +
                               "&limit=" + std::to_string(settings.outbox_page);
    auto text = co_await scrapeGet(link, target, false);
    if (!text) co_return false;
    auto body = json::parseObject(*text);
    if (!body || !body->contains("entries") || !body->at("entries").is_array()) co_return false;
    const auto& entries = body->at("entries").get_array();
    std::vector<ledger::AppendRequest> reqs;
    std::vector<int64_t> seqs;
    for (const auto& e : entries) {
      if (!e.is_object()) continue;
      auto req = outboxEntryToEvent(link->host_id, e.get_object());
      int64_t seq = req.parts[0].events[0].data.as_object().at("agent_seq").as_int64();
      if (seq <= cursor) continue;
      seqs.push_back(seq);
      reqs.push_back(std::move(req));
    }
    if (reqs.empty()) co_return true;
    auto results = co_await awaitAppends(ledger, reqs);
    int64_t done = cursor;
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i] && results[i].error().code == Code::kConflict) {
        // The agent reuses a seq with other content (its state was reset): keep the entry as
        // a separate event rather than lose it, and move on.
        ledger::AppendRequest kept;
        kept.actor = "host:" + link->host_id;
        bj::object d{{"host_id", link->host_id},
                     {"agent_seq", seqs[i]},
                     {"entry", reqs[i].parts[0].events[0].data}};
        kept.parts.push_back({"host/" + link->host_id, ledger::kAnyVersion,
                              {{"", "host.outbox_conflict", std::move(d)}}});
        std::vector<ledger::AppendRequest> one;
        one.push_back(std::move(kept));
        auto again = co_await awaitAppends(ledger, std::move(one));
        if (!again.front()) break;
      } else if (!results[i]) {
        spdlog::warn("outbox of {}: {}", link->host_id, results[i].error().message);
        break;
      }
      done = seqs[i];
    }
    update(link->host_id, [&](HostLive& h) { h.outbox_cursor = std::max(h.outbox_cursor, done); });
    if (done != seqs.back() || entries.size() < settings.outbox_page) co_return true;
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
  int64_t now = nowMs();
  store.record(link->host_id, now, pointsFromTelemetry(*body));
  auto shared = std::make_shared<const bj::object>(std::move(*body));
  update(link->host_id, [&](HostLive& h) {
    h.telemetry = shared;
    h.telemetry_ms = now;
  });
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
  link->stream.reset();
  update(link->host_id, [](HostLive& h) { h.connected = false; });
}

void Collector::Impl::syncOnce() {
  auto rows = ledger.withReader(
      [](sqlite::Db& db) -> Result<std::vector<std::tuple<ledger::HostRow, int64_t>>> {
        auto hosts = ledger::listHosts(db);
        if (!hosts) return hosts.error();
        // One read of every cursor, not a query per host (this runs every few seconds).
        auto cursors = ledger::agentCursors(db);
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
  std::lock_guard lk(mu);
  std::set<std::string> wanted;
  for (auto& [h, cursor] : *rows) {
    if (h.kind != "agent" || h.state == "revoked" || h.address.empty()) continue;
    wanted.insert(h.id);
    auto it = links.find(h.id);
    if (it != links.end() && it->second->address == h.address) continue;
    if (it != links.end()) it->second->stopped = true;
    auto link = std::make_shared<Link>(ioc, h.id, h.address);
    link->known = h.state == "reachable"     ? Link::Known::kUp
                  : h.state == "unreachable" ? Link::Known::kDown
                                             : Link::Known::kUnknown;
    auto& l = live[h.id];
    l.outbox_cursor = std::max(l.outbox_cursor, cursor);
    l.reachable = link->known == Link::Known::kUp;
    links[h.id] = link;
    asio::co_spawn(link->strand, run(link), asio::detached);
  }
  for (auto it = links.begin(); it != links.end();) {
    if (wanted.count(it->first) != 0) {
      ++it;
      continue;
    }
    // Revoked (or gone): stop calling its agent now.
    auto link = it->second;
    link->stopped = true;
    asio::post(link->strand, [link] {
      link->timer.cancel();
      if (link->stream) beast::get_lowest_layer(*link->stream).close();
    });
    live.erase(it->first);
    it = links.erase(it);
  }
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

Collector::Collector(ledger::Ledger& ledger, TelemetryStore& store, CollectorSettings settings)
    : impl_(std::make_unique<Impl>(ledger, store, std::move(settings))) {}

Collector::~Collector() { stop(); }

Status Collector::start() {
  http::ClientSettings cs{.ca_file = impl_->settings.ca_file,
                          .cert_file = impl_->settings.cert_file,
                          .key_file = impl_->settings.key_file,
                          .verify_hostname = false};
  auto ctx = http::tls::makeClientContext(cs);
  if (!ctx) return ctx.error();
  impl_->ssl.emplace(std::move(*ctx));
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->io_thread = std::thread([this] { impl_->ioc.run(); });
  impl_->sync_thread = std::thread([this] { impl_->syncLoop(); });
  return {};
}

void Collector::stop() {
  if (!impl_->io_thread.joinable()) return;
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping = true;
    for (auto& [id, link] : impl_->links) {
      link->stopped = true;
      asio::post(link->strand, [link] {
        link->timer.cancel();
        if (link->stream) beast::get_lowest_layer(*link->stream).close();
      });
    }
  }
  impl_->sync_cv.notify_all();
  impl_->sync_thread.join();
  impl_->work.reset();
  // Links finish their current request (bounded by the request timeout) and exit.
  impl_->io_thread.join();
}

void Collector::syncHosts() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->sync_requested = true;
  }
  impl_->sync_cv.notify_all();
}

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
  auto at = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
  s.p50_ms = at(0.50);
  s.p99_ms = at(0.99);
  s.max_ms = v.back();
  return s;
}

}  // namespace hwl::collect
