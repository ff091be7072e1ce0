// The coroutine side of AgentTransport, for code that runs on its I/O context (the collector).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "agent_transport.hpp"

namespace hwl::dispatch {

boost::asio::io_context& ioContext(AgentTransport& t);
boost::asio::awaitable<Result<AgentReply>> asyncCall(AgentTransport& t, AgentEndpoint to,
                                                     AgentCall c);

}  // namespace hwl::dispatch
