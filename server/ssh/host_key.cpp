// Host key checks: fingerprints, pins and known_hosts (see host_key.hpp).
#include "ssh/host_key.hpp"

#include <fcntl.h>
#include <libssh2.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "hwl/crypto.hpp"
#include "hwl/files.hpp"
#include "ssh/libssh2_raii.hpp"
#include "ssh/ssh_errors.hpp"

namespace hwl::ssh {

namespace fs = std::filesystem;
using detail::KnownHostsPtr;

namespace {

std::string base64NoPad(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

// Decoded length of unpadded base64, or -1 when it is not base64.
int base64DecodedLength(std::string_view b64) {
  std::string padded(b64);
  while (padded.size() % 4 != 0) padded.push_back('=');
  std::string out(padded.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(padded.data()),
                          static_cast<int>(padded.size()));
  if (n < 0) return -1;
  // EVP_DecodeBlock counts padding as zero bytes.
  return n - static_cast<int>(padded.size() - b64.size());
}

int knownHostKeyType(int hostkey_type) {
  switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
      return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
      return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
      return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
      return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
      return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
      return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
      return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
  }
}

}  // namespace

std::string hostKeyAlgorithmName(int hostkey_type) {
  switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
      return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
      return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
      return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
      return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
      return "ssh-ed25519";
    default:
      return {};
  }
}

bool isHostKeyAlgorithm(std::string_view name) {
  return name == "ssh-rsa" || name == "ecdsa-sha2-nistp256" || name == "ecdsa-sha2-nistp384" ||
         name == "ecdsa-sha2-nistp521" || name == "ssh-ed25519";
}

namespace {

std::string lastError(LIBSSH2_SESSION* s) {
  char* msg = nullptr;
  int len = 0;
  libssh2_session_last_error(s, &msg, &len, 0);
  return msg != nullptr ? std::string(msg, static_cast<size_t>(len)) : std::string("unknown");
}

struct LoadedKnownHosts {
  KnownHostsPtr hosts;
  std::vector<std::string> revoked;  // base64 key blobs under @revoked
  std::string content;               // the file as read (for an append)
};

// Reads the file line by line into libssh2 so that an unparsable line is reported with its
// number and fails the check (libssh2_knownhost_readfile would stop silently at it with a
// generic error). Marker lines (@revoked, @cert-authority) are not understood by libssh2 1.10,
// which would file them as a host named "@revoked": @revoked keys are collected here and
// refused; @cert-authority lines are skipped (host certificates are not supported).
Result<LoadedKnownHosts> loadKnownHosts(LIBSSH2_SESSION* session, const fs::path& path) {
  LoadedKnownHosts out;
  out.hosts.reset(libssh2_knownhost_init(session));
  if (!out.hosts) return internal("libssh2_knownhost_init: " + lastError(session));
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  auto text = files::readFile(path, 16u << 20);
  if (!text)
    return Error{Code::kFailedPrecondition,
                 "known_hosts " + path.string() + " cannot be read: " + text.error().message};
  out.content = std::move(*text);
  size_t pos = 0;
  int lineno = 0;
  while (pos < out.content.size()) {
    size_t end = out.content.find('\n', pos);
    if (end == std::string::npos) end = out.content.size();
    std::string line = out.content.substr(pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    if (line[first] == '@') {
      // @marker hostpatterns keytype base64 [comment]
      std::vector<std::string> fields;
      size_t p = first;
      while (p < line.size() && fields.size() < 4) {
        size_t q = line.find_first_of(" \t", p);
        if (q == std::string::npos) q = line.size();
        fields.push_back(line.substr(p, q - p));
        p = line.find_first_not_of(" \t", q);
        if (p == std::string::npos) break;
      }
      if (fields[0] == "@revoked" && fields.size() >= 4) out.revoked.push_back(fields[3]);
      continue;
    }
    if (libssh2_knownhost_readline(out.hosts.get(), line.c_str(), line.size(),
                                   LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
      return Error{Code::kFailedPrecondition, "known_hosts " + path.string() + ":" +
                                                  std::to_string(lineno) +
                                                  " cannot be parsed: " + lastError(session)};
  }
  return out;
}

// libssh2_knownhost_checkp with port >= 0 tries "[host]:port" and then falls back to the plain
// "host" entry, so a key recorded for port 22 would vouch for any other port on that host (often
// another sshd: a container, a jump target). OpenSSH does not fall back, nor do we: the name is
// formatted here and the port passed as -1, which makes checkp compare that exact name.
int checkName(LIBSSH2_KNOWNHOSTS* hosts, const std::string& name, std::string_view blob,
              int key_type) {
  return libssh2_knownhost_checkp(
      hosts, name.c_str(), -1, blob.data(), blob.size(),
      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_type, nullptr);
}

Result<KnownHostsVerdict> verdictOf(LIBSSH2_SESSION* session, const LoadedKnownHosts& kh,
                                    const std::string& name, std::string_view blob,
                                    int hostkey_type) {
  const std::string b64 = base64NoPad(blob);
  for (const auto& r : kh.revoked) {
    std::string rb = r;
    while (!rb.empty() && rb.back() == '=') rb.pop_back();
    if (rb == b64) return KnownHostsVerdict::kRevoked;
  }
  const int key_type = knownHostKeyType(hostkey_type);
  if (key_type == LIBSSH2_KNOWNHOST_KEY_UNKNOWN)
    return Error{Code::kFailedPrecondition, "host key of an unsupported type"};
  switch (checkName(kh.hosts.get(), name, blob, key_type)) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
      return KnownHostsVerdict::kMatch;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
      return KnownHostsVerdict::kMismatch;
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
      break;
    default:
      return internal("known_hosts check failed: " + lastError(session));
  }
  // Key type 0 matches entries of any type: a mismatch now means the host is known with keys
  // of other types only. Accepting a new type then would let an attacker who cannot present
  // the recorded key pick another algorithm and be trusted on first use.
  const int any = libssh2_knownhost_checkp(
      kh.hosts.get(), name.c_str(), -1, blob.data(), blob.size(),
      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW, nullptr);
  if (any == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) return KnownHostsVerdict::kOtherType;
  return KnownHostsVerdict::kNotFound;
}

// An exclusive flock on "<known_hosts>.lock" (the file itself is replaced by rename, so it cannot
// carry the lock), waited for at most a few seconds.
class FileLock {
 public:
  static Result<FileLock> acquire(const fs::path& path) {
    fs::path lock = path;
    lock += ".lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return internal("cannot open " + lock.string() + ": " + std::strerror(errno));
    FileLock l(fd);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR)
        return internal("cannot lock " + lock.string() + ": " + std::strerror(errno));
      if (std::chrono::steady_clock::now() > until)
        return unavailable("known_hosts is locked by another writer: " + lock.string());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return l;
  }
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

Error mismatchError(std::string_view what, const std::string& fp) {
  return Error{Code::kPermissionDenied,
               std::string(what) + " (server presented " + fp +
                   "); refusing to connect: the key may have been replaced by an attacker, or the "
                   "host reinstalled. Check the host and update known_hosts or the pin.",
               std::string(reason::kHostKeyMismatch),
               R"({"presented_fingerprint":")" + fp + R"("})"};
}

}  // namespace

std::string fingerprintSha256(std::string_view key_blob) {
  const auto d = crypto::sha256(key_blob);
  return "SHA256:" +
         base64NoPad(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

Result<std::string> parsePinnedFingerprint(std::string_view text) {
  constexpr std::string_view kPrefix = "SHA256:";
  if (text.substr(0, kPrefix.size()) != kPrefix)
    return invalidArgument("pinned fingerprint must look like SHA256:<base64> (ssh-keygen -l)");
  std::string b64(text.substr(kPrefix.size()));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  if (b64.size() != 43 || base64DecodedLength(b64) != 32)
    return invalidArgument("pinned fingerprint is not the base64 of a SHA-256 digest");
  return std::string(kPrefix) + b64;
}

std::string knownHostsName(std::string_view host, uint16_t port) {
  if (port == 22) return std::string(host);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

Result<KnownHostsVerdict> checkKnownHosts(LIBSSH2_SESSION* session, const fs::path& path,
                                          const std::string& name, std::string_view key_blob,
                                          int hostkey_type) {
  auto kh = loadKnownHosts(session, path);
  if (!kh) return kh.error();
  return verdictOf(session, *kh, name, key_blob, hostkey_type);
}

Status appendKnownHost(LIBSSH2_SESSION* session, const fs::path& path, const std::string& name,
                       std::string_view key_blob, int hostkey_type) {
  auto lock = FileLock::acquire(path);
  if (!lock) return lock.error();
  auto kh = loadKnownHosts(session, path);
  if (!kh) return kh.error();
  auto verdict = verdictOf(session, *kh, name, key_blob, hostkey_type);
  if (!verdict) return verdict.error();
  const std::string fp = fingerprintSha256(key_blob);
  switch (*verdict) {
    case KnownHostsVerdict::kMatch:
      return {};  // recorded meanwhile by another connection
    case KnownHostsVerdict::kNotFound:
      break;
    case KnownHostsVerdict::kRevoked:
      return mismatchError("host key is revoked in known_hosts", fp);
    default:
      return mismatchError("known_hosts now holds another key for " + name, fp);
  }
  libssh2_knownhost* entry = nullptr;
  if (libssh2_knownhost_addc(kh->hosts.get(), name.c_str(), nullptr, key_blob.data(),
                             key_blob.size(), nullptr, 0,
                             LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
                                 knownHostKeyType(hostkey_type),
                             &entry) != 0)
    return internal("libssh2_knownhost_addc: " + lastError(session));
  std::string line(4096, '\0');
  size_t len = 0;
  if (libssh2_knownhost_writeline(kh->hosts.get(), entry, line.data(), line.size(), &len,
                                  LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
    return internal("libssh2_knownhost_writeline: " + lastError(session));
  line.resize(len);
  std::string content = std::move(kh->content);
  if (!content.empty() && content.back() != '\n') content.push_back('\n');
  content += line;
  if (content.back() != '\n') content.push_back('\n');
  std::error_code ec;
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path(), ec);
  return files::writeFileAtomic(path, content, 0600);
}

std::string hostKeyAlgorithmPreference(LIBSSH2_SESSION* session, const fs::path& path,
                                       const std::string& name) {
  // ssh-dss is left out (DSA: 1024-bit, removed from OpenSSH). ssh-rsa stays last: libssh2 1.10
  // has no rsa-sha2-256/512, so it is the only way to check an RSA-only host, whose modern sshd
  // will not offer it anyway.
  struct Alg {
    int key_type;
    const char* name;
  };
  static constexpr Alg kAlgs[] = {
      {LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519"},
      {LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256"},
      {LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384"},
      {LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521"},
      {LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa"},
  };
  std::string known, rest;
  auto kh = path.empty() ? Result<LoadedKnownHosts>(notFound("")) : loadKnownHosts(session, path);
  for (const auto& a : kAlgs) {
    // A probe key that can match nothing: MISMATCH means an entry of this type exists.
    bool has = kh.has_value() && checkName(kh->hosts.get(), name, "hwl-probe", a.key_type) ==
                                     LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
    std::string& to = has ? known : rest;
    if (!to.empty()) to.push_back(',');
    to += a.name;
  }
  if (known.empty()) return rest;
  return rest.empty() ? known : known + "," + rest;
}

Result<std::string> verifyHostKey(LIBSSH2_SESSION* session, std::string_view host, uint16_t port,
                                  const HostKeyPolicy& policy) {
  size_t len = 0;
  int type = LIBSSH2_HOSTKEY_TYPE_UNKNOWN;
  const char* key = libssh2_session_hostkey(session, &len, &type);
  if (key == nullptr || len == 0)
    return Error{Code::kUnavailable,
                 "no host key after the key exchange: " + lastError(session),
                 std::string(reason::kTransport),
                 {}};
  const std::string_view blob(key, len);
  const std::string fp = fingerprintSha256(blob);
  const std::string name = knownHostsName(host, port);

  if (!policy.pinned_fingerprint.empty()) {
    if (fp == policy.pinned_fingerprint) return fp;
    return mismatchError("host key of " + name + " does not match the pinned fingerprint " +
                             policy.pinned_fingerprint,
                         fp);
  }
  if (policy.known_hosts.empty())
    return invalidArgument("neither a pinned fingerprint nor a known_hosts file is configured");

  auto verdict = checkKnownHosts(session, policy.known_hosts, name, blob, type);
  if (!verdict) return verdict.error();
  switch (*verdict) {
    case KnownHostsVerdict::kMatch:
      return fp;
    case KnownHostsVerdict::kMismatch:
      return mismatchError(
          "host key of " + name + " differs from the one in " + policy.known_hosts.string(), fp);
    case KnownHostsVerdict::kOtherType:
      return mismatchError(policy.known_hosts.string() + " holds a key of another type for " + name,
                           fp);
    case KnownHostsVerdict::kRevoked:
      return mismatchError(
          "host key of " + name + " is marked @revoked in " + policy.known_hosts.string(), fp);
    case KnownHostsVerdict::kNotFound:
      break;
  }
  if (!policy.trust_on_first_use)
    return Error{Code::kFailedPrecondition,
                 "host key of " + name + " is not in " + policy.known_hosts.string() +
                     " and trust on first use is off; its fingerprint is " + fp +
                     " (compare with `ssh-keygen -lf` on the host, then pin it or add it)",
                 std::string(reason::kHostKeyUnknown), R"({"fingerprint":")" + fp + R"("})"};
  auto appended = appendKnownHost(session, policy.known_hosts, name, blob, type);
  if (!appended) return appended.error();
  return fp;
}

}  // namespace hwl::ssh
