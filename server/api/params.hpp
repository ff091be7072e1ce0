// Typed reading of query parameters (a route names the parameters it reads and refuses any other)
// and of agents' telemetry answers, shared by the handlers.
#pragma once

#include <boost/json/object.hpp>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "hwl/http.hpp"
#include "hwl/result.hpp"

namespace hwl::api {

// Query parameters are parsed into their type before anything uses them; a route names the
// parameters it reads and refuses any other.
Status onlyParams(const http::Request& req, std::initializer_list<std::string_view> names);

// Host and job ids: the grammar of job ids ([A-Za-z0-9._-], 1-128, not starting with '.'), which
// host ids ("host-<hex>") follow too.
bool validId(std::string_view id);

// An id-valued query parameter; "" when absent.
Result<std::string> queryId(const http::Request& req, const std::string& name);

// A GPU uuid as the probes report them ("GPU-…", "MIG-…/1/0", "0x…"); "" when absent.
Result<std::string> queryUuid(const http::Request& req, const std::string& name);

// "1"/"true" or "0"/"false"; nullopt when absent.
Result<std::optional<bool>> queryBool(const http::Request& req, const std::string& name);

// "from" and "to" of a report over a window, Unix milliseconds up to 2100; absent: nullopt.
struct QueryWindow {
  std::optional<int64_t> from, to;
};
Result<QueryWindow> queryWindow(const http::Request& req);

bool hasControl(std::string_view s);

// The latest sample of one GPU in an agent's telemetry answer.
std::optional<boost::json::object> sampleOf(const std::shared_ptr<const boost::json::object>& t,
                                            const std::string& uuid);

std::optional<int64_t> num(const boost::json::object& o, std::string_view k);

}  // namespace hwl::api
