// hwledger subcommands: events, tokens, ledger verify.
#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "hwl/crypto.hpp"
#include "hwl/http.hpp"
#include "hwl/json.hpp"
#include "hwl/planner/plan_command.hpp"
#include "ledger/ledger.hpp"
#include "ledger/sqlite.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace bj = boost::json;

namespace {

struct Global {
  std::string server;
  std::string token;
  std::string ca;
  bool json = false;
};

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
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

}  // namespace

int runCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"hwledger: operate and audit an hwLedger fleet"};
  app.require_subcommand(1);
  Global g;
  g.server = envOr("HWLEDGER_SERVER");
  g.token = envOr("HWLEDGER_TOKEN");
  g.ca = envOr("HWLEDGER_CA");
  app.add_option("--server", g.server, "server URL, https://HOST:PORT (env HWLEDGER_SERVER)");
  app.add_option("--token", g.token, "API token ID.SECRET (env HWLEDGER_TOKEN)");
  app.add_option("--ca", g.ca, "CA certificate to verify the server (env HWLEDGER_CA)");
  app.add_flag("--json", g.json, "print JSON instead of tables");

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
  plan->add_option("--tp", po.tp, "tensor parallel degree");
  plan->add_option("--gpu-mem", po.gpu_mem, "memory per GPU, e.g. 80GiB");
  plan->add_option("--activation", po.activation, "override the activation/workspace estimate");
  plan->add_option("--overhead", po.overhead, "override the runtime overhead");
  plan->add_flag("--per-layer", po.per_layer, "show every layer");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
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

  if (*plan) {
    po.context = context;
    po.json = g.json;
    return planner::runPlanCommand(po, out, err);
  }

  if (*verify) {
    std::filesystem::path db(db_path);
    auto dir = db.parent_path().empty() ? std::filesystem::path(".") : db.parent_path();
    ledger::VerifyOptions vo;
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
    auto rep = ledger::verifyDatabase(*conn, vo);
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
