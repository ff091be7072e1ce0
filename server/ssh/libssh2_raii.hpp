// Owning handles for libssh2 objects (internal to hwl_ssh). A handle is adopted as soon as
// libssh2 returns it, so every path out of a function frees it.
#pragma once

#include <libssh2.h>

#include <memory>

namespace hwl::ssh::detail {

struct KnownHostsFree {
  void operator()(LIBSSH2_KNOWNHOSTS* k) const { libssh2_knownhost_free(k); }
};
using KnownHostsPtr = std::unique_ptr<LIBSSH2_KNOWNHOSTS, KnownHostsFree>;

struct AgentFree {
  void operator()(LIBSSH2_AGENT* a) const {
    libssh2_agent_disconnect(a);
    libssh2_agent_free(a);
  }
};
using AgentPtr = std::unique_ptr<LIBSSH2_AGENT, AgentFree>;

// A channel still open when its handle goes (an error path) is closed by libssh2_channel_free.
// In non-blocking mode that may return EAGAIN; the channel then stays on the session's list and
// libssh2_session_free releases it, so nothing leaks.
struct ChannelFree {
  void operator()(LIBSSH2_CHANNEL* c) const { libssh2_channel_free(c); }
};
using ChannelPtr = std::unique_ptr<LIBSSH2_CHANNEL, ChannelFree>;

// Frees a session in blocking mode bounded by a short libssh2 timeout: teardown must end even
// when the peer is gone. An orderly disconnect, when the connection is healthy, is the owner's.
struct SessionFree {
  void operator()(LIBSSH2_SESSION* s) const {
    libssh2_session_set_timeout(s, 1000);
    libssh2_session_set_blocking(s, 1);
    libssh2_session_free(s);
  }
};
using SessionPtr = std::unique_ptr<LIBSSH2_SESSION, SessionFree>;

// libssh2_init once per process, before the first session (it is not thread-safe itself).
void ensureLibssh2Init();

}  // namespace hwl::ssh::detail
