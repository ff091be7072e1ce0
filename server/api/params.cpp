// Typed reading of query parameters and of agents' telemetry answers, shared by the handlers.
#include "params.hpp"

#include <boost/json.hpp>

#include "hwl/proto/job_spec.hpp"

namespace hwl::api {

namespace bj = boost::json;

// Query parameters are parsed into their type before anything uses them; a route names the
// parameters it reads and refuses any other.
Status onlyParams(const http::Request& req, std::initializer_list<std::string_view> names) {
  for (const auto& [k, v] : req.query)
    if (std::find(names.begin(), names.end(), k) == names.end())
      return invalidArgument("unknown query parameter \"" + k.substr(0, 64) + "\"");
  return {};
}

// Host and job ids: the grammar of job ids ([A-Za-z0-9._-], 1-128, not starting with '.'), which
// host ids ("host-<hex>") follow too.
bool validId(std::string_view id) { return proto::validJobId(id); }

// An id-valued query parameter; "" when absent.
Result<std::string> queryId(const http::Request& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::string();
  if (!validId(it->second))
    return invalidArgument("query parameter \"" + name + "\" is not a valid id");
  return it->second;
}

// A GPU uuid as the probes report them ("GPU-…", "MIG-…/1/0", "0x…"); "" when absent.
Result<std::string> queryUuid(const http::Request& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::string();
  const auto& v = it->second;
  bool ok = v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == ':' || c == '/';
            });
  if (!ok) return invalidArgument("query parameter \"" + name + "\" is not a GPU uuid");
  return v;
}

// "1"/"true" or "0"/"false"; nullopt when absent.
Result<std::optional<bool>> queryBool(const http::Request& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return std::optional<bool>();
  const auto& v = it->second;
  if (v == "1" || v == "true" || v.empty()) return std::optional<bool>(true);
  if (v == "0" || v == "false") return std::optional<bool>(false);
  return invalidArgument("query parameter \"" + name + "\" must be 1, 0, true or false");
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// The latest sample of one GPU in an agent's telemetry answer.
std::optional<bj::object> sampleOf(const std::shared_ptr<const bj::object>& t,
                                   const std::string& uuid) {
  if (!t || !t->contains("gpus") || !t->at("gpus").is_array()) return std::nullopt;
  for (const auto& g : t->at("gpus").get_array())
    if (g.is_object() && g.get_object().contains("uuid") && g.get_object().at("uuid").is_string() &&
        g.get_object().at("uuid").get_string() == uuid)
      return g.get_object();
  return std::nullopt;
}

std::optional<int64_t> num(const bj::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it == o.end() || !it->value().is_number()) return std::nullopt;
  boost::system::error_code ec;
  auto v = it->value().to_number<double>(ec);
  return ec ? std::nullopt : std::optional<int64_t>(static_cast<int64_t>(v));
}

Result<QueryWindow> queryWindow(const http::Request& req) {
  constexpr int64_t kYear2100Ms = 4'102'444'800'000;
  auto from = http::queryInt(req, "from", 0, kYear2100Ms);
  if (!from) return from.error();
  auto to = http::queryInt(req, "to", 0, kYear2100Ms);
  if (!to) return to.error();
  return QueryWindow{*from, *to};
}

}  // namespace hwl::api
