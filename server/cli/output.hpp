// How hwledger prints: server values as table cells, and the common end of a command that asks
// the server (JSON as it came, or a table, and the exit code).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "commands.hpp"
#include "hwl/result.hpp"

namespace hwl::cli {

namespace bj = boost::json;

// A JSON value as a table cell: strings without quotes, null as "-".
std::string str(const bj::value& v);
// Unix milliseconds as RFC 3339 UTC; 0 (not yet) as "".
std::string fmtTime(int64_t ms);
// "42s", "3m07s", "2h05m"; negative (unknown) as "-".
std::string fmtDuration(int64_t ms);
// Bytes as "12.3 GiB"; not a number as "-".
std::string gib(const bj::value& v);
// Number `key` of `o` through printf format `fmt`; absent or not a number as "-".
std::string numStr(const bj::object& o, const char* key, const char* fmt);

void printJson(std::ostream& out, const bj::value& v);

// "error: ..." and exit code 1: the request failed, or the server refused it.
int fail(std::ostream& err, const Error& e);
// "error: ..." and exit code 2: what was typed is wrong.
int usageError(std::ostream& err, const Error& e);

// A failed call fails; an answer is printed as it came under -o json, else by `human`, whose
// return is the exit code.
int show(const Context& ctx, const Result<bj::value>& answer,
         const std::function<int(const bj::value&)>& human);

}  // namespace hwl::cli
