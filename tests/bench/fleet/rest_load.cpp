// A fixed-rate HTTPS load generator for one GET route: N threads, each with a keep-alive
// connection, sharing a request schedule; prints p50/p99/max latency and errors.
// Usage: rest_load URL CA_FILE TOKEN RPS SECONDS [THREADS]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hwl/http.hpp"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: rest_load URL CA_FILE TOKEN RPS SECONDS [THREADS]\n");
    return 2;
  }
  std::string url = argv[1];
  auto slash = url.find('/', url.find("//") + 2);
  std::string base = url.substr(0, slash);
  std::string target = slash == std::string::npos ? "/" : url.substr(slash);
  std::string ca = argv[2];
  std::string token = argv[3];
  double rps = std::atof(argv[4]);
  double seconds = std::atof(argv[5]);
  int threads = argc > 6 ? std::atoi(argv[6]) : 8;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now() + std::chrono::milliseconds(200);
  const auto interval = std::chrono::duration<double>(1.0 / rps);
  const auto total = static_cast<int64_t>(rps * seconds);
  std::atomic<int64_t> next{0};
  std::mutex mu;
  std::vector<double> lat;
  int64_t errors = 0, bytes = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      hwl::http::Client c({.base_url = base, .ca_file = ca, .verify_hostname = false});
      std::vector<std::pair<std::string, std::string>> h{{"Authorization", "Bearer " + token}};
      for (;;) {
        int64_t i = next++;
        if (i >= total) return;
        auto due =
            start + std::chrono::duration_cast<clock::duration>(interval * static_cast<double>(i));
        std::this_thread::sleep_until(due);
        // Latency from when the request was due, so a backlog counts against the server.
        auto r = c.request("GET", target, {}, h);
        double ms = std::chrono::duration<double, std::milli>(clock::now() - due).count();
        std::lock_guard lk(mu);
        if (r && r->status == 200) {
          lat.push_back(ms);
          bytes += static_cast<int64_t>(r->body.size());
        } else {
          ++errors;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))];
  };
  std::printf(
      "{\"answered\": %zu, \"errors\": %lld, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, "
      "\"mean_bytes\": %lld}\n",
      lat.size(), static_cast<long long>(errors), pct(0.5), pct(0.99),
      lat.empty() ? 0.0 : lat.back(),
      lat.empty() ? 0LL : static_cast<long long>(bytes / static_cast<int64_t>(lat.size())));
  return 0;
}
