// Parsing one HTTP/1.1 request from bytes into the Request a handler sees, exactly as a server
// connection does (same parser, limits and target decoding), without a socket: for fuzzing and
// for tests of the request grammar.
#pragma once

#include <cstddef>
#include <string_view>

#include "hwl/http.hpp"
#include "hwl/result.hpp"

namespace hwl::http {

// Parses the request at the start of `raw` (bytes after it are ignored). Headers over
// `header_limit` or a body over `body_limit` are kResourceExhausted; a malformed or incomplete
// request is kInvalidArgument. remote_addr and peer are left empty.
Result<Request> parseRequest(std::string_view raw, size_t header_limit, size_t body_limit);

}  // namespace hwl::http
