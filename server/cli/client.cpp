// The CLI's side of the REST API: where the server is and who is asking (flags, environment,
// config file), requests with the bearer token, and the host listing tables resolve ids against.
#include "client.hpp"

#include <cstdlib>
#include <filesystem>

#include "hwl/crypto.hpp"
#include "hwl/files.hpp"
#include "hwl/json.hpp"
#include "output.hpp"

namespace hwl::cli {

namespace {

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

}  // namespace

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

Status applyConfigFile(Connection& conn) {
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
  if (conn.server.empty() && *server) conn.server = **server;
  if (conn.ca.empty() && *ca) conn.ca = near(**ca).string();
  if (conn.token.empty() && *token_file) {
    auto t = files::readFile(near(**token_file), 4096);
    if (!t)
      return invalidArgument(where + ": token_file " + near(**token_file).string() + ": " +
                             t.error().message);
    std::string tok = *t;
    while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r' || tok.back() == ' '))
      tok.pop_back();
    conn.token = tok;
  }
  return {};
}

Api::Api(const Connection& conn)
    : conn_(conn), client_(http::ClientSettings{.base_url = conn.server, .ca_file = conn.ca}) {}

Result<bj::value> Api::call(std::string_view method, std::string_view target,
                            std::string_view body) {
  if (conn_.server.empty())
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

std::vector<std::pair<std::string, std::string>> Api::headers() const {
  std::vector<std::pair<std::string, std::string>> h;
  if (!conn_.token.empty()) h.emplace_back("Authorization", "Bearer " + conn_.token);
  return h;
}

int failHttp(std::ostream& err, const http::ClientResponse& r) {
  err << "error: HTTP " << r.status << " " << r.body << "\n";
  return 1;
}

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

std::string FleetNames::hostName(const std::string& id) const {
  auto it = host.find(id);
  return it == host.end() ? id : it->second;
}

std::string FleetNames::gpuIndices(const bj::array& uuids) const {
  std::string list;
  for (const auto& u : uuids) {
    auto it = gpu.find(str(u));
    if (!list.empty()) list += ",";
    list += it == gpu.end() ? str(u) : std::to_string(it->second.second);
  }
  return list.empty() ? "-" : list;
}

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
        n.gpu[str(go.at("uuid"))] = {id,
                                     go.at("index").is_int64() ? go.at("index").as_int64() : -1};
      }
  }
  return n;
}

}  // namespace hwl::cli
