// A job that ignores SIGTERM (so only SIGKILL ends it), for cancel-with-grace tests.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

int main() {
  ::signal(SIGTERM, SIG_IGN);
  std::printf("ignoring SIGTERM\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
