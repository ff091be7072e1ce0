// Closed-loop HTTPS load for the submit benchmark: THREADS clients, each with its own keep-alive
// connection (http::Client), sharing COUNT requests; one line per request on stdout:
//   <index> <status> <latency ms> <host name from the answer, or ->
// Modes:
//   submit: POST /v1/jobs {"name": "bench-<i>", "command": ["/bin/true"], "gpus": 0,
//           "host": "sim-<i % HOSTS>"} (jobs pinned to hosts round-robin);
//   health: GET /v1/health.
// With PROBE_MS > 0 a further thread sends GET /v1/health every PROBE_MS while the others run
// (its own connection) and prints "probe <status> <latency ms>" lines. The last line is
// "elapsed <seconds>" from the first request to the last answer.
// Usage: submit_load BASE_URL CA_FILE TOKEN MODE COUNT THREADS HOSTS [PROBE_MS]
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hwl/http.hpp"

int main(int argc, char** argv) {
  if (argc < 8) {
    std::fprintf(stderr,
                 "usage: submit_load BASE_URL CA_FILE TOKEN submit|health COUNT THREADS HOSTS "
                 "[PROBE_MS]\n");
    return 2;
  }
  const std::string base = argv[1], ca = argv[2], token = argv[3], mode = argv[4];
  const int count = std::atoi(argv[5]), threads = std::atoi(argv[6]), hosts = std::atoi(argv[7]);
  const int probe_ms = argc > 8 ? std::atoi(argv[8]) : 0;
  if ((mode != "submit" && mode != "health") || count <= 0 || threads <= 0 || hosts <= 0) {
    std::fprintf(stderr, "submit_load: bad arguments\n");
    return 2;
  }
  using clock = std::chrono::steady_clock;
  const std::vector<std::pair<std::string, std::string>> headers{
      {"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  auto client = [&] {
    // A generous timeout: a submission may wait for the slow host's dispatch several times over.
    return std::make_unique<hwl::http::Client>(
        hwl::http::ClientSettings{.base_url = base,
                                  .ca_file = ca,
                                  .verify_hostname = false,
                                  .timeout = std::chrono::milliseconds(600'000)});
  };
  std::mutex out_mu;
  std::atomic<int> next{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  // Every client connects (and handshakes) before the first request goes out.
  std::vector<std::unique_ptr<hwl::http::Client>> clients;
  for (int t = 0; t < threads; ++t) {
    clients.push_back(client());
    (void)clients.back()->request("GET", "/v1/health", {}, headers);
  }
  std::thread probe;
  if (probe_ms > 0) {
    probe = std::thread([&] {
      auto c = client();
      (void)c->request("GET", "/v1/health", {}, headers);
      auto due = clock::now();
      while (!done) {
        due += std::chrono::milliseconds(probe_ms);
        std::this_thread::sleep_until(due);
        auto t0 = clock::now();
        auto r = c->request("GET", "/v1/health", {}, headers);
        double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
        std::lock_guard lk(out_mu);
        std::printf("probe %u %.3f\n", r ? r->status : 0U, ms);
        // The next probe is due from now: a stalled probe is one long sample, not a backlog.
        due = clock::now();
      }
    });
  }
  const auto start = clock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      auto& c = *clients[t];
      for (;;) {
        const int i = next++;
        if (i >= count) return;
        std::string body;
        if (mode == "submit") {
          body = boost::json::serialize(
              boost::json::object{{"name", "bench-" + std::to_string(i)},
                                  {"command", boost::json::array{"/bin/true"}},
                                  {"gpus", 0},
                                  {"host", "sim-" + std::to_string(i % hosts)}});
        }
        auto t0 = clock::now();
        auto r = mode == "submit" ? c.request("POST", "/v1/jobs", body, headers)
                                  : c.request("GET", "/v1/health", {}, headers);
        double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
        std::string host = "-";
        if (r && mode == "submit") {
          boost::system::error_code ec;
          auto v = boost::json::parse(r->body, ec);
          if (!ec && v.is_object())
            if (const auto* h = v.as_object().if_contains("host_name"); h && h->is_string())
              host = std::string(h->as_string());
        }
        std::lock_guard lk(out_mu);
        std::printf("%d %u %.3f %s\n", i, r ? r->status : 0U, ms, host.c_str());
        if (!r) std::fprintf(stderr, "request %d: %s\n", i, r.error().message.c_str());
      }
    });
  }
  for (auto& t : ts) t.join();
  const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
  done = true;
  if (probe.joinable()) probe.join();
  std::printf("elapsed %.3f\n", elapsed);
  return 0;
}
