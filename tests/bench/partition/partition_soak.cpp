// Partition soak (not a test: it prints figures). The real hwledger-server and hwledger-agent in
// two network namespaces joined by a veth pair; for SECONDS (default 300) the link is cut again
// and again, alternately by taking the agent's veth end down and by nftables drop rules (a
// half-open link), while jobs are submitted, become ready, exit, and are cancelled. Afterwards
// the agent's outbox is compared with the ledger and the detection latency of every cut
// (cut -> host.unreachable) and its recovery (heal -> host.reachable) are reported.
//
//   partition_soak [--seconds 300] [--cut-seconds 20] [--heal-seconds 10]
//
// Needs root (network namespaces, nftables); prints why and exits 0 when it cannot run. Exits 1
// when an event was lost or duplicated, a job stream is out of order or a cut went unnoticed.
#include <signal.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "fleet_support.hpp"
#include "netns_support.hpp"

namespace {

namespace bj = boost::json;
namespace fleet = hwl::itest::fleet;
using namespace hwl::itest::netns;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using fleet::i64;
using fleet::str;

struct CutRecord {
  Cut how;
  int64_t cut_ms = 0;
  int64_t heal_ms = 0;
  int64_t detected_ms = -1;   // host.unreachable time_ms
  int64_t recovered_ms = -1;  // host.reachable time_ms
};

struct Job {
  std::string id;
  std::string kind;  // batch | web | long
  bool cancel_requested = false;
};

std::string figures(std::vector<int64_t> v) {
  if (v.empty()) return "n=0";
  std::sort(v.begin(), v.end());
  const int64_t p50 = v[(v.size() - 1) / 2];
  return "p50 " + std::to_string(p50) + " ms, max " + std::to_string(v.back()) +
         " ms (n=" + std::to_string(v.size()) + ")";
}

bj::object jobBody(int n, Job& job) {
  switch (n % 3) {
    case 0: {
      job.kind = "batch";
      const std::string cmd = "echo batch " + std::to_string(n) + "; sleep " +
                              std::to_string(3 + (n * 7) % 25) + "; exit " + std::to_string(n % 5);
      return {{"name", "batch-" + std::to_string(n)},
              {"command", bj::array{"/bin/sh", "-c", bj::string(cmd)}},
              {"host", "h100"}};
    }
    case 1: {
      job.kind = "web";
      const int port = 18000 + n;
      // Ready after 3 s, then serves until `timeout` ends it (exit 124), often while cut off.
      const std::string cmd = "sleep 3; exec timeout " + std::to_string(5 + (n * 11) % 25) + " " +
                              fleet::testHttpServerBin() + " " + std::to_string(port);
      return {{"name", "web-" + std::to_string(n)},
              {"command", bj::array{"/bin/sh", "-c", bj::string(cmd)}},
              {"host", "h100"},
              {"port", port},
              {"ready_path", "/"}};
    }
    default:
      job.kind = "long";
      return {{"name", "long-" + std::to_string(n)},
              {"command", bj::array{"/bin/sleep", "100000"}},
              {"host", "h100"}};
  }
}

bool terminal(const std::string& state) {
  return state == "exited" || state == "failed" || state == "cancelled" || state == "lost";
}

int soak(int seconds, int cut_s, int heal_s) {
  NetnsPair net;
  fleet::FleetDir root;
  NsServer srv(net, root.path());
  NsAgent agent(net, root.path());
  srv.launch();
  agent.enroll(srv);
  agent.start();
  waitForFleet(srv, agent, 60s);
  std::cout << "server " << srv.url() << " (namespace " << net.serverNs() << "), agent " << kAgentIp
            << ":" << kAgentPort << " (namespace " << net.agentNs() << ")\n"
            << "collector: scrape timeout " << kScrapeTimeoutMs << " ms, outbox every "
            << kOutboxIntervalMs << " ms, telemetry every " << kTelemetryIntervalMs
            << " ms, unreachable after " << kMissThreshold << " misses" << std::endl;

  std::vector<Job> jobs;
  std::vector<CutRecord> cuts;
  int submit_failures = 0, cancel_failures = 0, late_recoveries = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  int n = 0;
  for (int k = 0;; ++k) {
    // Healed: wait for the host, cancel the previous window's long jobs, submit a job every 2 s
    // (none in the last 2 s before a cut, so no submission races the cut itself).
    const auto window_end = Clock::now() + std::chrono::seconds(heal_s);
    if (!waitForHostState(srv, agent.hostId(), "reachable", 30s)) ++late_recoveries;
    for (auto& j : jobs) {
      if (j.kind != "long" || j.cancel_requested) continue;
      j.cancel_requested = true;
      auto h = srv.request("DELETE", "/v1/jobs/" + j.id);
      if (h.status != 200 && h.status != 202) ++cancel_failures;
    }
    while (Clock::now() + 2s < window_end && Clock::now() < end) {
      Job job;
      auto body = jobBody(n++, job);
      try {
        job.id = submitJob(srv, body);
        jobs.push_back(job);
      } catch (const std::exception& e) {
        ++submit_failures;
        std::cerr << "submit: " << e.what() << "\n";
      }
      std::this_thread::sleep_for(2s);
    }
    std::this_thread::sleep_until(window_end);
    if (Clock::now() + std::chrono::seconds(cut_s) > end) break;

    CutRecord c;
    c.how = k % 2 == 0 ? Cut::kLinkDown : Cut::kNftDrop;
    c.cut_ms = wallMs();
    net.cut(c.how);
    std::this_thread::sleep_for(std::chrono::seconds(cut_s));
    c.heal_ms = wallMs();
    net.heal();
    cuts.push_back(c);
    std::cout << "cut " << cuts.size() << " (" << cutName(c.how) << ") healed after " << cut_s
              << " s; " << jobs.size() << " jobs so far" << std::endl;
  }

  // Let everything end: cancel what is left, wait for terminal states on the server.
  if (!waitForHostState(srv, agent.hostId(), "reachable", 30s)) ++late_recoveries;
  for (auto& j : jobs) {
    if (j.kind != "long" || j.cancel_requested) continue;
    j.cancel_requested = true;
    auto h = srv.request("DELETE", "/v1/jobs/" + j.id);
    if (h.status != 200 && h.status != 202) ++cancel_failures;
  }
  std::map<std::string, int> final_states;
  const auto settle_until = Clock::now() + 60s;
  for (const auto& j : jobs) {
    std::string state;
    fleet::eventually(
        [&] {
          state = str(jobView(srv, j.id).at("state"));
          return terminal(state) || Clock::now() >= settle_until;
        },
        std::chrono::duration_cast<std::chrono::milliseconds>(settle_until - Clock::now() + 1s));
    ++final_states[j.kind + " " + state];
  }
  // A last drain after the final entries (the outbox is read every 300 ms).
  std::this_thread::sleep_for(2s);

  // Detection and recovery per cut, from the ledger's own timestamps.
  int outages = 0, reachables = 0;
  std::vector<std::pair<int64_t, std::string>> host_events;
  for (const auto& e : srv.allEvents("&stream=host/" + agent.hostId())) {
    const std::string type = str(e.at("type"));
    if (type == "host.unreachable") ++outages;
    if (type == "host.reachable") ++reachables;
    host_events.emplace_back(i64(e.at("time_ms")), type);
  }
  int unnoticed = 0;
  std::vector<int64_t> det_all, det_link, det_nft, rec_all;
  for (auto& c : cuts) {
    for (const auto& [t, type] : host_events) {
      if (c.detected_ms < 0 && type == "host.unreachable" && t >= c.cut_ms && t <= c.heal_ms)
        c.detected_ms = t;
      if (c.recovered_ms < 0 && type == "host.reachable" && t >= c.heal_ms) c.recovered_ms = t;
    }
    if (c.detected_ms < 0) {
      ++unnoticed;
      continue;
    }
    const int64_t d = c.detected_ms - c.cut_ms;
    det_all.push_back(d);
    (c.how == Cut::kLinkDown ? det_link : det_nft).push_back(d);
    if (c.recovered_ms >= 0) rec_all.push_back(c.recovered_ms - c.heal_ms);
  }

  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  const auto a = audit(srv, agent, ids);
  const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);

  std::cout << "\n== partition soak: " << elapsed.count() << " s, " << cuts.size() << " cuts of "
            << cut_s << " s (" << (cuts.size() + 1) / 2 << " link-down, " << cuts.size() / 2
            << " nft-drop), " << heal_s << " s healed between ==\n";
  std::cout << "jobs: " << jobs.size() << " submitted (" << submit_failures
            << " submissions refused), " << cancel_failures << " cancels refused; final:";
  for (const auto& [k, v] : final_states) std::cout << " " << k << "=" << v;
  std::cout << "\n";
  std::cout << "events: expected " << a.outbox_entries << " (agent outbox), seen " << a.seen
            << ", missing " << a.missing() << ", duplicates " << a.duplicates << ", wrong type "
            << a.wrong_type << ", not in the outbox " << a.unexpected << "\n";
  std::cout << "job streams: " << a.jobs - a.jobs_out_of_order << "/" << a.jobs
            << " exactly submitted, placed, then the agent's entries in order; server/agent "
               "state mismatches "
            << a.jobs_state_mismatch << "\n";
  std::cout << "outages in the ledger: " << outages << " host.unreachable, " << reachables
            << " host.reachable (incl. the first) for " << cuts.size() << " cuts; unnoticed cuts "
            << unnoticed << "; hosts not back within 30 s " << late_recoveries << "\n";
  std::cout << "detection (cut -> host.unreachable), bound " << kScrapeTimeoutMs << " ms x "
            << kMissThreshold << " misses + margin:\n"
            << "  all:       " << figures(det_all) << "\n"
            << "  link-down: " << figures(det_link) << "\n"
            << "  nft-drop:  " << figures(det_nft) << "\n";
  std::cout << "recovery (heal -> host.reachable): " << figures(rec_all) << "\n";
  auto collector = srv.getOk("/v1/collector");
  std::cout << "collector: " << i64(collector.at("requests_ok")) << " requests answered, "
            << i64(collector.at("requests_failed")) << " failed\n";
  for (const auto& p : a.problems) std::cout << "PROBLEM: " << p << "\n";
  const bool ok = a.clean() && unnoticed == 0 && outages == static_cast<int>(cuts.size());
  std::cout << (ok ? "result: nothing lost, nothing duplicated, every cut noticed\n"
                   : "result: DISCREPANCIES (see above)\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 300, cut_s = 20, heal_s = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](int& out) {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      out = std::stoi(argv[++i]);
      if (out <= 0) throw std::invalid_argument(a + " must be positive");
    };
    try {
      if (a == "--seconds")
        value(seconds);
      else if (a == "--cut-seconds")
        value(cut_s);
      else if (a == "--heal-seconds")
        value(heal_s);
      else
        throw std::invalid_argument("unknown argument " + a);
    } catch (const std::exception& e) {
      std::cerr << "usage: partition_soak [--seconds N] [--cut-seconds N] [--heal-seconds N]: "
                << e.what() << "\n";
      return 2;
    }
  }
  if (heal_s < 5) {
    std::cerr << "--heal-seconds must be at least 5 (the host must come back between cuts)\n";
    return 2;
  }
  if (auto why = unavailableReason(true); !why.empty()) {
    std::cout << "partition soak skipped: " << why << "\n";
    return 0;
  }
  try {
    return soak(seconds, cut_s, heal_s);
  } catch (const std::exception& e) {
    std::cerr << "partition soak failed: " << e.what() << "\n";
    return 1;
  }
}
