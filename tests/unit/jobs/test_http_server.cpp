// A stand-in inference server for tests: prints its identity and GPU placement, then answers
// every HTTP request on 127.0.0.1:PORT with 200 until signalled. Usage: hwl_test_http_server PORT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* cuda = std::getenv("CUDA_VISIBLE_DEVICES");
  const char* rocr = std::getenv("ROCR_VISIBLE_DEVICES");
  std::printf("uid=%u gid=%u pgid=%d sid=%d\n", ::getuid(), ::getgid(), ::getpgrp(), ::getsid(0));
  std::printf("CUDA_VISIBLE_DEVICES=%s\nROCR_VISIBLE_DEVICES=%s\n", cuda ? cuda : "(unset)",
              rocr ? rocr : "(unset)");
  char cwd[4096];
  std::printf("cwd=%s\n", ::getcwd(cwd, sizeof cwd) ? cwd : "?");
  std::printf("stdin_is_devnull=%d\n", [] {
    char link[64];
    const ssize_t n = ::readlink("/proc/self/fd/0", link, sizeof link - 1);
    return n == 9 && std::memcmp(link, "/dev/null", 9) == 0 ? 1 : 0;
  }());
  std::fflush(stdout);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Start slowly, like a model loading, so the job is seen running before it is ready.
  ::usleep(300 * 1000);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    std::perror("bind");
    return 1;
  }
  std::printf("listening\n");
  std::fflush(stdout);
  for (;;) {
    const int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) continue;
    char buf[1024];
    (void)!::read(c, buf, sizeof buf);
    static const char kReply[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    (void)!::write(c, kReply, sizeof kReply - 1);
    ::close(c);
  }
}
