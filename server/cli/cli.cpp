// hwledger subcommands: events, tokens, ledger verify.
#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <chrono>
#include <map>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "hwl/crypto.hpp"
#include "hwl/files.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/plan_command.hpp"
#include "hwl/planner/formats.hpp"
#include "hwl/planner/plan_json.hpp"
#include "hwl/planner/placement.hpp"
#include "storage/sqlite_ledger.hpp"
#include "storage/sqlite.hpp"
#include "parse.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace bj = boost::json;

namespace {

struct Global {
  std::string server;
  std::string token;
  std::string ca;
  bool json = false;
  std::string output = "table";
};

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// The CLI config file: $HWLEDGER_CONFIG, else $XDG_CONFIG_HOME/hwledger/config.json, else
// ~/.config/hwledger/config.json.
std::filesystem::path configPath() {
  if (auto p = envOr("HWLEDGER_CONFIG"); !p.empty()) return p;
  if (auto x = envOr("XDG_CONFIG_HOME"); !x.empty())
    return std::filesystem::path(x) / "hwledger" / "config.json";
  if (auto h = envOr("HOME"); !h.empty())
    return std::filesystem::path(h) / ".config" / "hwledger" / "config.json";
  return {};
}

// Fills what neither a flag nor the environment gave from the config file
// {"server": URL, "ca": FILE, "token_file": FILE} (paths relative to the file's folder). An
// absent file is no error; an unreadable one, an unknown key or a missing token file is.
Status applyConfigFile(Global& g) {
  const std::filesystem::path path = configPath();
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return {};
  const std::string where = "config " + path.string();
  auto text = files::readFile(path, 1 << 16);
  if (!text) return invalidArgument(where + ": " + text.error().message);
  auto o = json::parseObject(*text);
  if (!o) return invalidArgument(where + ": " + o.error().message);
  if (auto st = json::checkKeys(*o, {"server", "ca", "token_file"}, where); !st) return st;
  auto server = json::optionalString(*o, "server");
  auto ca = json::optionalString(*o, "ca");
  auto token_file = json::optionalString(*o, "token_file");
  for (const auto* r : {&server, &ca, &token_file})
    if (!*r) return invalidArgument(where + ": " + r->error().message);
  auto near = [&](const std::string& p) {
    std::filesystem::path f(p);
    return f.is_absolute() ? f : path.parent_path() / f;
  };
  if (g.server.empty() && *server) g.server = **server;
  if (g.ca.empty() && *ca) g.ca = near(**ca).string();
  if (g.token.empty() && *token_file) {
    auto t = files::readFile(near(**token_file), 4096);
    if (!t)
      return invalidArgument(where + ": token_file " + near(**token_file).string() + ": " +
                             t.error().message);
    std::string tok = *t;
    while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r' || tok.back() == ' '))
      tok.pop_back();
    g.token = tok;
  }
  return {};
}

std::string fmtTime(int64_t ms) {
  if (ms == 0) return "";
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string str(const bj::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return bj::serialize(v);
}

class Api {
 public:
  explicit Api(const Global& g)
      : g_(g), client_(http::ClientSettings{.base_url = g.server, .ca_file = g.ca}) {}

  Result<bj::value> call(std::string_view method, std::string_view target,
                         std::string_view body = {}) {
    if (g_.server.empty())
      return invalidArgument("no server: pass --server URL or set HWLEDGER_SERVER");
    auto r = client_.request(method, target, body, headers());
    if (!r) return r.error();
    auto v = json::parse(r->body);
    if (r->status >= 400) {
      std::string msg = "HTTP " + std::to_string(r->status);
      if (v && v->is_object() && v->as_object().contains("error")) {
        const auto& e = v->as_object().at("error").as_object();
        msg += " " + str(e.at("code")) + ": " + str(e.at("message"));
      }
      return Error{Code::kFailedPrecondition, msg};
    }
    if (!v) return internal("the server sent invalid JSON");
    return std::move(*v);
  }

  std::vector<std::pair<std::string, std::string>> headers() const {
    std::vector<std::pair<std::string, std::string>> h;
    if (!g_.token.empty()) h.emplace_back("Authorization", "Bearer " + g_.token);
    return h;
  }
  http::Client& client() { return client_; }

 private:
  const Global& g_;
  http::Client client_;
};

void printEvent(const bj::object& e, bool as_json, std::ostream& out) {
  if (as_json) {
    out << bj::serialize(e) << "\n";
    return;
  }
  out << e.at("seq").as_int64() << "  " << fmtTime(e.at("time_ms").as_int64()) << "  "
      << str(e.at("type")) << "  " << str(e.at("stream")) << "  " << str(e.at("actor")) << "  "
      << bj::serialize(e.at("data")) << "\n";
}

int fail(std::ostream& err, const Error& e) {
  err << "error: " << e.message << "\n";
  return 1;
}

// Only characters that mean nothing to a shell, so the printed lines paste as they are.
bool shellSafe(std::string_view s, std::string_view extra) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    extra.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// The lines an operator pastes on a new GPU host, from a POST /v1/enroll-tokens answer: the
// server's public URL (or the one this CLI used), the token, the CA pin and the name; the agent
// finds its own advertise address on the route to the server.
Result<std::string> enrollCommand(const bj::object& o, const std::string& cli_server, int port) {
  const std::string server =
      o.contains("server_url") ? str(o.at("server_url")) : cli_server;
  const std::string token = str(o.at("token")), pin = str(o.at("ca_pin"));
  const std::string name = o.contains("host_hint") ? str(o.at("host_hint")) : "";
  if (!shellSafe(server, ":/.-[]") || server.rfind("https://", 0) != 0)
    return invalidArgument("the server URL " + server + " cannot be printed as a command");
  // An IPv6 literal's brackets are a glob to the shell.
  const std::string server_arg =
      server.find('[') == std::string::npos ? server : "'" + server + "'";
  if (!shellSafe(token, "._-") || !shellSafe(pin, ":") || (!name.empty() && !shellSafe(name, "._-")))
    return internal("the server's answer holds characters a shell would interpret");
  std::string args = " --server " + server_arg + " --token " + token + " --ca-pin " + pin;
  if (!name.empty()) args += " --name " + name;
  if (port != 9443) args += " --advertise-port " + std::to_string(port);
  std::ostringstream out;
  out << "On the GPU host, with the agent installed as a service (deploy/install-agent.sh or the "
         "hwledger-agent package):\n\n"
      << "  sudo -u hwledger-agent hwledger-agent enroll" << args
      << " --state-dir /var/lib/hwledger-agent\n"
      << "  sudo systemctl enable --now hwledger-agent\n\n"
      << "Or by hand, as any user:\n\n"
      << "  hwledger-agent enroll" << args << " --state-dir ~/.hwledger-agent\n"
      << "  hwledger-agent run --state-dir ~/.hwledger-agent --listen 0.0.0.0:" << port << "\n";
  return out.str();
}


// Every page of GET /v1/hosts.
Result<bj::array> allHosts(Api& api) {
  bj::array all;
  std::string after;
  for (;;) {
    auto page = api.call("GET", "/v1/hosts?limit=1000" + (after.empty() ? "" : "&after=" + after));
    if (!page) return page.error();
    for (auto& h : page->as_object().at("hosts").as_array()) all.push_back(std::move(h));
    const auto& next = page->as_object().at("next_after");
    if (!next.is_string()) return all;
    after = std::string(next.as_string());
  }
}

// Host names and GPU indices for tables: people read names, the API answers with ids.
struct FleetNames {
  std::map<std::string, std::string> host;                     // host id -> name
  std::map<std::string, std::pair<std::string, int64_t>> gpu;  // uuid -> (host id, index)
  [[nodiscard]] std::string hostName(const std::string& id) const {
    auto it = host.find(id);
    return it == host.end() ? id : it->second;
  }
  [[nodiscard]] std::string gpuIndices(const bj::array& uuids) const {
    std::string list;
    for (const auto& u : uuids) {
      auto it = gpu.find(str(u));
      if (!list.empty()) list += ",";
      list += it == gpu.end() ? str(u) : std::to_string(it->second.second);
    }
    return list.empty() ? "-" : list;
  }
};

Result<FleetNames> fleetNames(Api& api) {
  auto hosts = allHosts(api);
  if (!hosts) return hosts.error();
  FleetNames n;
  for (const auto& h : *hosts) {
    const auto& o = h.as_object();
    const std::string id = str(o.at("id"));
    n.host[id] = str(o.at("name"));
    if (auto it = o.find("gpus"); it != o.end() && it->value().is_array())
      for (const auto& gv : it->value().as_array()) {
        const auto& go = gv.as_object();
        n.gpu[str(go.at("uuid"))] = {id, go.at("index").is_int64() ? go.at("index").as_int64() : -1};
      }
  }
  return n;
}

std::string fmtDuration(int64_t ms) {
  if (ms < 0) return "-";
  const long long s = ms / 1000;
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s / 60 % 60);
  return buf;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}


// Per-GPU memory of every host that is not revoked, from GET /v1/hosts: free = total minus used
// by the latest sample (the total before any sample).
std::vector<planner::HostCapacity> capacities(const bj::array& hosts) {
  std::vector<planner::HostCapacity> out;
  for (const auto& h : hosts) {
    const auto& o = h.as_object();
    if (str(o.at("state")) == "revoked") continue;
    planner::HostCapacity c{str(o.at("id")), str(o.at("name")), {}};
    if (auto it = o.find("gpus"); it != o.end() && it->value().is_array())
      for (const auto& gv : it->value().as_array()) {
        const auto& go = gv.as_object();
        auto total = go.find("memory_total_bytes");
        if (total == go.end() || !total->value().is_number()) continue;
        boost::system::error_code ec;
        const auto t = total->value().to_number<uint64_t>(ec);
        if (ec) continue;
        uint64_t used = 0;
        if (auto sm = go.find("sample"); sm != go.end() && sm->value().is_object())
          if (auto u = sm->value().as_object().find("memory_used_bytes");
              u != sm->value().as_object().end() && u->value().is_number())
            used = u->value().to_number<uint64_t>(ec);
        c.gpus.push_back({t, ec || used > t ? 0 : t - used});
      }
    out.push_back(std::move(c));
  }
  return out;
}

bj::object placementJson(const planner::Placement& p) {
  bj::object o{{"host", p.host_id},          {"name", p.host_name},
               {"fits", p.fits},             {"gpus_needed", p.gpus_needed},
               {"per_gpu_bytes", p.per_gpu_bytes}, {"headroom_bytes", p.headroom_bytes}};
  if (!p.reason.empty()) o["reason"] = p.reason;
  return o;
}

std::string placementLine(const planner::Placement& p) {
  if (p.fits)
    return "host " + p.host_name + ": fits on " + std::to_string(p.gpus_needed) + " GPU(s), " +
           planner::formatBytes(p.per_gpu_bytes) + " each, " +
           planner::formatBytes(static_cast<uint64_t>(p.headroom_bytes)) + " to spare";
  return "host " + p.host_name + ": does NOT fit: " + p.reason;
}

}  // namespace

int runCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"hwledger: operate and audit an hwLedger fleet"};
  app.require_subcommand(1);
  // Global options are accepted after a subcommand too (`hwledger jobs list --json`).
  app.fallthrough();
  app.set_version_flag("--version", "hwledger " HWL_VERSION);
  Global g;
  g.server = envOr("HWLEDGER_SERVER");
  g.token = envOr("HWLEDGER_TOKEN");
  g.ca = envOr("HWLEDGER_CA");
  app.add_option("--server", g.server,
                 "server URL, https://HOST:PORT (env HWLEDGER_SERVER, else the config file "
                 "~/.config/hwledger/config.json or $HWLEDGER_CONFIG)");
  app.add_option("--token", g.token, "API token ID.SECRET (env HWLEDGER_TOKEN, else the config's token_file)");
  app.add_option("--ca", g.ca, "CA certificate to verify the server (env HWLEDGER_CA, else the config's ca)");
  app.add_flag("--json", g.json, "print JSON instead of tables (same as -o json)");
  app.add_option("-o,--output", g.output, "output format: table|json|csv");

  // events
  auto* events = app.add_subcommand("events", "list ledger events, or follow them live");
  int64_t after = 0, limit = 100;
  std::string stream, type;
  bool follow = false;
  events->add_option("--after", after, "start after this seq");
  events->add_option("--limit", limit, "at most this many (max 1000 per page)");
  events->add_option("--stream", stream, "only this stream");
  events->add_option("--type", type, "only this event type");
  events->add_flag("--follow,-f", follow, "keep streaming new events");

  // tokens
  auto* tokens = app.add_subcommand("tokens", "API tokens");
  tokens->require_subcommand(1);
  auto* tcreate = tokens->add_subcommand("create", "create a token (the secret is shown once)");
  std::string role, note;
  int64_t ttl = 0;
  tcreate->add_option("--role", role, "viewer|operator|admin")->required();
  tcreate->add_option("--ttl", ttl, "lifetime in seconds");
  tcreate->add_option("--note", note, "what the token is for");
  auto* tlist = tokens->add_subcommand("list", "list tokens (no secrets)");
  auto* trevoke = tokens->add_subcommand("revoke", "revoke a token");
  std::string revoke_id;
  trevoke->add_option("id", revoke_id, "token id")->required();

  // ledger verify (offline)
  auto* ledger_cmd = app.add_subcommand("ledger", "offline ledger checks");
  ledger_cmd->require_subcommand(1);
  auto* verify = ledger_cmd->add_subcommand("verify", "recompute every hash and check checkpoints");
  std::string db_path, cp_path, pub_path;
  verify->add_option("--db", db_path, "ledger.db to check")->required();
  verify->add_option("--checkpoints", cp_path,
                     "exported checkpoints.log (default: beside the database)");
  verify->add_option("--pubkey", pub_path,
                     "checkpoint public key PEM (default: checkpoint.pub beside the database)");

  // fleet
  auto* hosts_cmd = app.add_subcommand("hosts", "enrolled hosts and their state");
  std::string revoke_host;
  auto* host_revoke = hosts_cmd->add_subcommand("revoke", "revoke a host's certificates");
  host_revoke->add_option("id", revoke_host, "host id")->required();
  auto* gpus_cmd = app.add_subcommand("gpus", "GPUs of the fleet with their latest sample");
  auto* jobs_cmd = app.add_subcommand("jobs", "jobs placed on the fleet");
  jobs_cmd->require_subcommand(1);
  auto* jsubmit = jobs_cmd->add_subcommand("submit", "place and start a job: -- COMMAND ARGS...");
  std::string job_name, job_host, ready_path;
  int64_t job_gpus = -1, job_port = 0, job_max = 0;
  std::string job_mem_text;
  std::vector<std::string> job_cmd, job_env;
  jsubmit->add_option("--name", job_name, "a name for the job");
  jsubmit->add_option("--gpus", job_gpus, "whole GPUs needed");
  jsubmit->add_option("--gpu-memory", job_mem_text, "free memory needed on each GPU, e.g. 24GiB");
  jsubmit->add_option("--host", job_host, "host id or name to place it on");
  jsubmit->add_option("--port", job_port, "port the job serves on (loopback)");
  jsubmit->add_option("--ready-path", ready_path, "path that answers 2xx once ready");
  jsubmit->add_option("--max-runtime", job_max, "seconds before it is stopped");
  jsubmit->add_option("--env", job_env, "NAME=VALUE (repeatable)");
  jsubmit->add_option("command", job_cmd, "the command and its arguments")->required();
  auto* jlist = jobs_cmd->add_subcommand("list", "list jobs");
  std::string job_id;
  int64_t log_tail = 100;
  bool log_follow = false;
  auto* jlogs = jobs_cmd->add_subcommand("logs", "a job's output");
  jlogs->add_option("id", job_id, "job id")->required();
  jlogs->add_option("--tail", log_tail, "last N lines");
  jlogs->add_flag("--follow,-f", log_follow, "keep streaming");
  auto* jcancel = jobs_cmd->add_subcommand("cancel", "stop a job");
  jcancel->add_option("id", job_id, "job id")->required();
  auto* usage_cmd = app.add_subcommand("usage", "GPU-hours, energy and utilisation");
  std::string group_by = "host";
  std::string usage_from_text, usage_to_text;
  usage_cmd->add_option("--group-by", group_by, "host|gpu|job");
  usage_cmd->add_option("--from", usage_from_text,
                        "start: 2026-12-02, 2026-12-02T10:00:00Z or -24h (default: 24 h ago)");
  usage_cmd->add_option("--to", usage_to_text, "end, same forms (default: now)");
  auto* etok = app.add_subcommand("enroll-token", "one-time tokens that enroll agents");
  etok->require_subcommand(1);
  auto* etok_create = etok->add_subcommand("create", "create a token and print the agent command");
  int64_t etok_ttl = 0;
  std::string etok_hint;
  etok_create->add_option("--ttl", etok_ttl, "lifetime in seconds (default 900, max 86400)");
  etok_create->add_option("--name,--host-hint", etok_hint,
                          "name the host will get (letters, digits, '.', '_', '-')");
  int etok_port = 9443;
  etok_create->add_option("--agent-port", etok_port, "port the agent listens on (9443)")
      ->check(CLI::Range(1, 65535));

  // plan (offline, or against a GPU memory size)
  auto* plan = app.add_subcommand("plan", "how much GPU memory a model needs, and whether it fits");
  planner::PlanCliOptions po;
  uint64_t context = 0;
  plan->add_option("model", po.model,
                   "config.json, GGUF, safetensors file or index, or a directory holding them")
      ->required();
  plan->add_option("--context", context, "tokens per sequence")->required();
  plan->add_option("--batch", po.batch, "concurrent sequences");
  plan->add_option("--weights", po.weights, "weight format: native|bf16|fp16|fp8|int8|int4|q4_k_m|...");
  plan->add_option("--kv", po.kv, "KV cache format: auto|bf16|fp16|fp8|int8|q8_0|q4_0");
  plan->add_option("--state-dtype", po.state_dtype, "recurrent state dtype: auto|fp32|bf16");
  auto* plan_tp = plan->add_option("--tp", po.tp, "tensor parallel degree");
  std::string plan_host;
  auto* gpu_mem_opt = plan->add_option("--gpu-mem", po.gpu_mem, "memory per GPU, e.g. 80GiB");
  plan->add_option("--host", plan_host,
                   "fit against this enrolled host: its GPUs' free memory by the latest sample")
      ->excludes(gpu_mem_opt);
  plan->add_option("--activation", po.activation, "override the activation/workspace estimate");
  plan->add_option("--overhead", po.overhead, "override the runtime overhead");
  plan->add_flag("--per-layer", po.per_layer, "show every layer");

  // placements: where a model fits on the fleet now
  auto* places = app.add_subcommand("placements", "where a model fits on the enrolled hosts now");
  planner::PlanCliOptions plo;
  uint64_t place_context = 0;
  places->add_option("model", plo.model, "config.json, GGUF, safetensors file or index, or a directory")
      ->required();
  places->add_option("--context", place_context, "tokens per sequence")->required();
  places->add_option("--batch", plo.batch, "concurrent sequences");
  places->add_option("--weights", plo.weights, "weight format: native|bf16|fp8|int4|q4_k_m|...");
  places->add_option("--kv", plo.kv, "KV cache format: auto|bf16|fp8|q8_0|...");
  auto* place_tp = places->add_option("--tp", plo.tp, "only this tensor parallel degree (default: the fewest GPUs of 1, 2, 4, 8)");

  // An unknown first word is named, with the nearest subcommand, rather than CLI11's
  // "A subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a[0] == '-') {
      if (a == "--server" || a == "--token" || a == "--ca" || a == "-o" || a == "--output") ++i;
      continue;
    }
    std::vector<std::string> names;
    for (const auto* sc : app.get_subcommands({})) names.push_back(sc->get_name());
    if (std::find(names.begin(), names.end(), a) != names.end()) break;
    err << "error: unknown command \"" << a << "\"";
    auto near = nearest(a, names);
    if (!near.empty()) err << "; did you mean \"" << near << "\"?";
    err << "\nRun 'hwledger --help' for the commands.\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err) == 0 ? 0 : 2;
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err) == 0 ? 0 : 2;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e, out, err);
    return 0;
  } catch (const CLI::ParseError& e) {
    app.exit(e, out, err);
    return 2;
  }
  {
    auto o = parseOutput(g.output);
    if (!o) {
      err << "error: " << o.error().message << "\n";
      return 2;
    }
    if (g.json) g.output = "json";
    g.json = g.output == "json";
    Table::setFormat(g.output == "csv");
  }
  // Offline commands (ledger verify, plan without --host) need no server, and no config file.
  const bool offline = *verify || (*plan && plan_host.empty());
  if (auto st = offline ? Status{} : applyConfigFile(g); !st) {
    err << "error: " << st.error().message << "\n";
    return 1;
  }
  auto usageError = [&](const Error& e) {
    err << "error: " << e.message << "\n";
    return 2;
  };
  uint64_t job_mem = 0;
  if (!job_mem_text.empty()) {
    auto m = parseSize(job_mem_text);
    if (!m) return usageError(m.error());
    job_mem = *m;
  }
  if (!po.gpu_mem.empty()) {
    auto m = parseSize(po.gpu_mem);
    if (!m) return usageError(m.error());
  }
  int64_t usage_from = 0, usage_to = 0;
  {
    int64_t now = static_cast<int64_t>(std::time(nullptr)) * 1000;
    if (!usage_from_text.empty()) {
      auto t = parseTime(usage_from_text, now);
      if (!t) return usageError(t.error());
      usage_from = *t;
    }
    if (!usage_to_text.empty()) {
      auto t = parseTime(usage_to_text, now);
      if (!t) return usageError(t.error());
      usage_to = *t;
    }
  }

  if (*events) {
    Api api(g);
    if (follow) {
      std::string target = "/v1/events/stream?after=" + std::to_string(after);
      if (!stream.empty()) target += "&stream=" + stream;
      if (!type.empty()) target += "&type=" + type;
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
          if (v) printEvent(*v, g.json, out);
          out.flush();
        }
        return true;
      });
      if (!st) return fail(err, st.error());
      if (*st >= 400) return fail(err, Error{Code::kUnavailable, "HTTP " + std::to_string(*st)});
      return 0;
    }
    std::string target = "/v1/events?after=" + std::to_string(after) +
                         "&limit=" + std::to_string(limit);
    if (!stream.empty()) target += "&stream=" + stream;
    if (!type.empty()) target += "&type=" + type;
    auto v = api.call("GET", target);
    if (!v) return fail(err, v.error());
    const auto& arr = v->as_object().at("events").as_array();
    if (g.json) {
      out << bj::serialize(*v) << "\n";
      return 0;
    }
    Table t({"SEQ", "TIME", "TYPE", "STREAM", "ACTOR", "DATA"});
    for (const auto& e : arr) {
      const auto& o = e.as_object();
      std::string data = bj::serialize(o.at("data"));
      if (data.size() > 80) data = data.substr(0, 77) + "...";
      t.add({std::to_string(o.at("seq").as_int64()), fmtTime(o.at("time_ms").as_int64()),
             str(o.at("type")), str(o.at("stream")), str(o.at("actor")), data});
    }
    t.print(out);
    return 0;
  }

  if (*tokens) {
    Api api(g);
    if (*tcreate) {
      bj::object body{{"role", role}, {"note", note}};
      if (ttl > 0) body["ttl_s"] = ttl;
      auto v = api.call("POST", "/v1/tokens", bj::serialize(body));
      if (!v) return fail(err, v.error());
      if (g.json) {
        out << bj::serialize(*v) << "\n";
      } else {
        const auto& o = v->as_object();
        out << "id:      " << str(o.at("id")) << "\nrole:    " << str(o.at("role"))
            << "\nexpires: "
            << (o.at("expires_ms").is_null() ? "never" : fmtTime(o.at("expires_ms").as_int64()))
            << "\ntoken:   " << str(o.at("token")) << "\n(the token is shown only once)\n";
      }
      return 0;
    }
    if (*tlist) {
      auto v = api.call("GET", "/v1/tokens");
      if (!v) return fail(err, v.error());
      if (g.json) {
        out << bj::serialize(*v) << "\n";
        return 0;
      }
      Table t({"ID", "ROLE", "CREATED", "EXPIRES", "REVOKED", "NOTE"});
      for (const auto& e : v->as_object().at("tokens").as_array()) {
        const auto& o = e.as_object();
        auto tm = [&](const char* k) {
          return o.at(k).is_null() ? std::string("-") : fmtTime(o.at(k).as_int64());
        };
        t.add({str(o.at("id")), str(o.at("role")), tm("created_ms"), tm("expires_ms"),
               tm("revoked_ms"), str(o.at("note"))});
      }
      t.print(out);
      return 0;
    }
    if (*trevoke) {
      auto v = api.call("DELETE", "/v1/tokens/" + revoke_id);
      if (!v) return fail(err, v.error());
      if (g.json)
        out << bj::serialize(*v) << "\n";
      else
        out << "revoked " << revoke_id << "\n";
      return 0;
    }
  }

  auto gib = [](const bj::value& v) -> std::string {
    if (!v.is_number()) return "-";
    boost::system::error_code ec;
    double d = v.to_number<double>(ec) / (1024.0 * 1024 * 1024);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GiB", d);
    return buf;
  };
  auto numStr = [](const bj::object& o, const char* k, const char* fmt) -> std::string {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_number()) return "-";
    boost::system::error_code ec;
    char buf[32];
    std::snprintf(buf, sizeof buf, fmt, it->value().to_number<double>(ec));
    return buf;
  };
  auto get = [&](Api& api, const std::string& target) -> Result<bj::value> {
    return api.call("GET", target);
  };

  if (*hosts_cmd) {
    Api api(g);
    if (*host_revoke) {
      auto v = api.call("POST", "/v1/hosts/" + revoke_host + "/revoke", "{}");
      if (!v) return fail(err, v.error());
      if (g.json)
        out << bj::serialize(*v) << "\n";
      else
        out << "revoked " << revoke_host << "\n";
      return 0;
    }
    auto all = allHosts(api);
    if (!all) return fail(err, all.error());
    bj::value v = bj::object{{"hosts", std::move(*all)}};
    if (g.json) {
      out << bj::serialize(v) << "\n";
      return 0;
    }
    Table t({"ID", "NAME", "STATE", "ADDRESS", "GPUS", "LAST SEEN", "CERT EXPIRES"});
    for (const auto& e : v.as_object().at("hosts").as_array()) {
      const auto& o = e.as_object();
      std::string seen = o.at("last_seen_ms").is_int64() ? fmtTime(o.at("last_seen_ms").as_int64()) : "-";
      t.add({str(o.at("id")), str(o.at("name")), str(o.at("state")), str(o.at("address")),
             std::to_string(o.at("gpus").as_array().size()), seen,
             fmtTime(o.at("cert_not_after_ms").as_int64())});
    }
    t.print(out);
    return 0;
  }
  if (*gpus_cmd) {
    Api api(g);
    auto v = get(api, "/v1/gpus");
    if (!v) return fail(err, v.error());
    if (g.json) {
      out << bj::serialize(*v) << "\n";
      return 0;
    }
    Table t({"HOST", "IDX", "NAME", "UUID", "MEMORY", "USED", "UTIL%", "TEMP C", "POWER W"});
    for (const auto& e : v->as_object().at("gpus").as_array()) {
      const auto& o = e.as_object();
      bj::object s;
      if (o.contains("sample")) s = o.at("sample").as_object();
      t.add({str(o.at("host_name")), std::to_string(o.at("index").as_int64()), str(o.at("name")),
             str(o.at("uuid")), gib(o.at("memory_total_bytes")),
             s.contains("memory_used_bytes") ? gib(s.at("memory_used_bytes")) : "-",
             numStr(s, "utilization_gpu_pct", "%.0f"), numStr(s, "temperature_c", "%.0f"),
             numStr(s, "power_w", "%.0f")});
    }
    t.print(out);
    return 0;
  }
  if (*jobs_cmd) {
    Api api(g);
    if (*jsubmit) {
      bj::array cmd;
      for (const auto& c : job_cmd) cmd.push_back(bj::string(c));
      bj::object env;
      for (const auto& e : job_env) {
        auto eq = e.find('=');
        if (eq == std::string::npos || eq == 0)
          return fail(err, invalidArgument("--env takes NAME=VALUE, not " + e));
        env[e.substr(0, eq)] = e.substr(eq + 1);
      }
      bj::object body{{"command", cmd}, {"env", env}};
      if (!job_name.empty()) body["name"] = job_name;
      if (job_gpus >= 0) body["gpus"] = job_gpus;
      if (job_mem > 0) body["gpu_memory_bytes"] = job_mem;
      if (!job_host.empty()) body["host"] = job_host;
      if (job_port > 0) body["port"] = job_port;
      if (!ready_path.empty()) body["ready_path"] = ready_path;
      if (job_max > 0) body["max_runtime_s"] = job_max;
      auto r = api.client().request("POST", "/v1/jobs", bj::serialize(body), api.headers());
      if (!r) return fail(err, r.error());
      auto v = json::parse(r->body);
      if (r->status == 409 && v && v->is_object()) {
        err << "error: no host can take this job:\n";
        const auto& e = v->as_object().at("error").as_object();
        auto names = fleetNames(api);  // the answer names hosts by id; people know their names
        if (e.contains("hosts"))
          for (const auto& kv : e.at("hosts").as_object()) {
            const std::string id(kv.key());
            const std::string name = names ? names->hostName(id) : id;
            err << "  " << name << (name == id ? "" : " (" + id + ")") << ": " << str(kv.value())
                << "\n";
          }
        return 1;
      }
      if (r->status >= 300 || !v) {
        err << "error: HTTP " << r->status << " " << r->body << "\n";
        return 1;
      }
      if (g.json)
        out << bj::serialize(*v) << "\n";
      else
        out << "job " << str(v->as_object().at("id")) << " placed on "
            << str(v->as_object().at("host_name")) << " (" << str(v->as_object().at("host"))
            << ")\n";
      return 0;
    }
    if (*jlist) {
      auto v = get(api, "/v1/jobs");
      if (!v) return fail(err, v.error());
      if (g.json) {
        out << bj::serialize(*v) << "\n";
        return 0;
      }
      auto names = fleetNames(api);
      if (!names) return fail(err, names.error());
      Table t({"ID", "NAME", "HOST", "STATE", "GPUS", "STARTED", "DURATION", "EXIT", "REASON"});
      const int64_t now = nowMs();
      for (const auto& e : v->as_object().at("jobs").as_array()) {
        const auto& o = e.as_object();
        std::string exit = o.at("exit_code").is_int64() ? std::to_string(o.at("exit_code").as_int64())
                           : o.at("signal").is_int64() ? "signal " + std::to_string(o.at("signal").as_int64())
                                                       : "-";
        auto ms = [&](const char* k) {
          auto it = o.find(k);
          return it != o.end() && it->value().is_int64() ? it->value().as_int64() : int64_t{0};
        };
        const int64_t started = ms("started_ms"), ended = ms("ended_ms");
        t.add({str(o.at("id")), str(o.at("name")), names->hostName(str(o.at("host"))),
               str(o.at("state")), names->gpuIndices(o.at("gpus").as_array()),
               started > 0 ? fmtTime(started) : "-",
               started > 0 ? fmtDuration((ended > 0 ? ended : now) - started) : "-", exit,
               str(o.at("reason"))});
      }
      t.print(out);
      return 0;
    }
    if (*jlogs) {
      std::string target = "/v1/jobs/" + job_id + "/logs?tail=" + std::to_string(log_tail);
      if (log_follow) {
        auto st = api.client().stream("GET", target + "&follow=1", api.headers(), [&](std::string_view c) {
          out << c;
          out.flush();
          return true;
        });
        if (!st) return fail(err, st.error());
        return *st < 300 ? 0 : 1;
      }
      auto r = api.client().request("GET", target, {}, api.headers());
      if (!r) return fail(err, r.error());
      if (r->status >= 300) {
        err << "error: HTTP " << r->status << " " << r->body << "\n";
        return 1;
      }
      out << r->body;
      return 0;
    }
    if (*jcancel) {
      auto v = api.call("DELETE", "/v1/jobs/" + job_id);
      if (!v) return fail(err, v.error());
      if (g.json)
        out << bj::serialize(*v) << "\n";
      else
        out << "cancelling " << job_id << "\n";
      return 0;
    }
  }
  if (*usage_cmd) {
    Api api(g);
    std::string target = "/v1/usage?group_by=" + group_by;
    if (usage_from > 0) target += "&from=" + std::to_string(usage_from);
    if (usage_to > 0) target += "&to=" + std::to_string(usage_to);
    auto v = get(api, target);
    if (!v) return fail(err, v.error());
    if (g.json) {
      out << bj::serialize(*v) << "\n";
      return 0;
    }
    auto names = fleetNames(api);
    if (!names) return fail(err, names.error());
    std::vector<std::string> head;
    if (group_by == "job") head = {"JOB", "NAME", "HOST"};
    else if (group_by == "gpu") head = {"HOST", "GPU"};
    else head = {"HOST", "GPUS"};
    // The server counts a GPU in each 1-minute bucket it reported a sample in, whether or not a
    // job held it: the header says so.
    for (const char* h : {"GPU-HOURS PRESENT (1-min samples)", "ENERGY", "MEAN UTIL%"})
      head.push_back(h);
    Table t(head);
    for (const auto& e : v->as_object().at("usage").as_array()) {
      const auto& o = e.as_object();
      std::vector<std::string> row;
      const std::string host = names->hostName(str(o.at("host")));
      if (group_by == "job") row = {str(o.at("job")), str(o.at("name")), host};
      else if (group_by == "gpu") row = {host, str(o.at("gpu_uuid"))};
      else row = {host, numStr(o, "gpus", "%.0f")};
      row.push_back(numStr(o, "gpu_hours", "%.3f"));
      {
        auto it = o.find("energy_kwh");
        boost::system::error_code ec;
        double kwh = it != o.end() && it->value().is_number() ? it->value().to_number<double>(ec) : -1;
        char buf[32];
        if (kwh < 0) std::snprintf(buf, sizeof buf, "-");
        else if (kwh < 1.0) std::snprintf(buf, sizeof buf, "%.1f Wh", kwh * 1000);
        else std::snprintf(buf, sizeof buf, "%.3f kWh", kwh);
        row.push_back(buf);
      }
      row.push_back(numStr(o, "mean_util_pct", "%.1f"));
      t.add(row);
    }
    t.print(out);
    return 0;
  }
  if (*etok) {
    Api api(g);
    bj::object body;
    if (etok_ttl > 0) body["ttl_s"] = etok_ttl;
    if (!etok_hint.empty()) body["host_hint"] = etok_hint;
    auto v = api.call("POST", "/v1/enroll-tokens", bj::serialize(body));
    if (!v) return fail(err, v.error());
    if (g.json) {
      out << bj::serialize(*v) << "\n";
      return 0;
    }
    const auto& o = v->as_object();
    auto cmd = enrollCommand(o, g.server, etok_port);
    if (!cmd) return fail(err, cmd.error());
    if (!o.contains("server_url"))
      err << "note: the server has no public_url set; the command names " << g.server
          << ", which the GPU host must be able to reach (hwledger-server run --public-url)\n";
    out << "enrollment token " << str(o.at("id")) << " (single use, expires "
        << fmtTime(o.at("expires_ms").as_int64()) << ")\n\n" << *cmd;
    return 0;
  }

  if (*plan) {
    po.context = context;
    po.json = g.json;
    if (!plan_host.empty()) {
      // The same placement as POST /v1/placements and `hwledger placements`, on this host only.
      auto req = planner::planRequestFromCli(po);
      if (!req) {
        err << "hwledger plan: " << req.error().message << "\n";
        return 2;
      }
      Api api(g);
      auto hosts = allHosts(api);
      if (!hosts) return fail(err, hosts.error());
      std::vector<planner::HostCapacity> cap;
      for (auto& c : capacities(*hosts))
        if (c.id == plan_host || c.name == plan_host) cap.push_back(std::move(c));
      if (cap.empty() || cap.front().gpus.empty())
        return fail(err, notFound("no GPUs known for host \"" + plan_host + "\""));
      auto placed = planner::placeOn(*req, cap, plan_tp->count() > 0);
      if (!placed) return fail(err, placed.error());
      const auto& p = placed->front();
      req->tp = p.gpus_needed > 0 ? p.gpus_needed : req->tp;
      if (p.fits) req->gpu_mem_bytes = p.per_gpu_bytes + static_cast<uint64_t>(p.headroom_bytes);
      auto computed = planner::computePlan(*req);
      if (!computed) return fail(err, computed.error());
      if (g.json) {
        auto o = planner::planToJson(*computed);
        o["placement"] = placementJson(p);
        out << bj::serialize(o) << "\n";
      } else {
        out << planner::planToTable(*computed) << "\n" << placementLine(p) << "\n";
      }
      return p.fits ? 0 : 1;
    }
    return planner::runPlanCommand(po, out, err);
  }

  if (*places) {
    plo.context = place_context;
    auto req = planner::planRequestFromCli(plo);
    if (!req) {
      err << "hwledger placements: " << req.error().message << "\n";
      return 2;
    }
    Api api(g);
    auto hosts = allHosts(api);
    if (!hosts) return fail(err, hosts.error());
    auto placed = planner::placeOn(*req, capacities(*hosts), place_tp->count() > 0);
    if (!placed) return fail(err, placed.error());
    if (g.json) {
      bj::array arr;
      for (const auto& p : *placed) arr.push_back(placementJson(p));
      out << bj::serialize(bj::object{{"placements", std::move(arr)}}) << "\n";
      return 0;
    }
    Table t({"HOST", "FITS", "GPUS", "PER GPU", "HEADROOM", "WHY NOT"});
    for (const auto& p : *placed)
      t.add({p.host_name, p.fits ? "yes" : "no", std::to_string(p.gpus_needed),
             planner::formatBytes(p.per_gpu_bytes),
             p.fits ? planner::formatBytes(static_cast<uint64_t>(p.headroom_bytes)) : "-",
             p.reason.empty() ? "-" : p.reason});
    t.print(out);
    return 0;
  }

  if (*verify) {
    std::filesystem::path db(db_path);
    auto dir = db.parent_path().empty() ? std::filesystem::path(".") : db.parent_path();
    storage::VerifyOptions vo;
    if (cp_path.empty() && std::filesystem::exists(dir / "checkpoints.log"))
      cp_path = (dir / "checkpoints.log").string();
    vo.checkpoint_log = cp_path;
    if (pub_path.empty() && std::filesystem::exists(dir / "checkpoint.pub"))
      pub_path = (dir / "checkpoint.pub").string();
    if (!pub_path.empty()) {
      auto k = crypto::loadPublicKeyPem(pub_path);
      if (!k) return fail(err, k.error());
      vo.public_key = std::shared_ptr<EVP_PKEY>(k->release(), crypto::PkeyFree{});
    } else {
      err << "warning: no checkpoint public key: signatures are not checked\n";
    }
    if (!std::filesystem::exists(db)) return fail(err, notFound("no database at " + db_path));
    auto conn = sqlite::Db::open(db, sqlite::Db::Mode::kReadOnly);
    if (!conn) return fail(err, conn.error());
    auto rep = storage::verifyDatabase(*conn, vo);
    if (g.json) {
      out << bj::serialize(rep.toJson()) << "\n";
    } else {
      out << "events:       " << rep.events << "\n"
          << "head seq:     " << rep.head_seq << "\n"
          << "head hash:    " << crypto::hex(rep.head_hash) << "\n"
          << "checkpoints:  " << rep.checkpoints_checked << " checked, "
          << (rep.checkpoints_ok ? "ok" : "FAILED") << "\n";
      if (rep.first_bad_seq) out << "first bad seq: " << *rep.first_bad_seq << "\n";
      if (!rep.problem.empty()) out << "problem:      " << rep.problem << "\n";
      out << (rep.ok ? "ledger OK\n" : "ledger BROKEN\n");
    }
    return rep.ok ? 0 : 1;
  }
  return 0;
}

}  // namespace hwl::cli
