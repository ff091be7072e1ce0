// Graceful shutdown of the daemons: SIGINT and SIGTERM are blocked in every thread (call this
// before starting any) and taken synchronously by the main thread.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace hwl {

class TerminationSignals {
 public:
  TerminationSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  // Blocks until SIGINT or SIGTERM arrives; returns it.
  int wait() {
    int sig = 0;
    sigwait(&set_, &sig);
    return sig;
  }

 private:
  sigset_t set_;
};

}  // namespace hwl
