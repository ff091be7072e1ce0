#include "agentless/key_store.hpp"

#include <sys/stat.h>

#include "hwl/files.hpp"

namespace hwl::agentless {

Result<std::filesystem::path> KeyStore::pathFor(std::string_view host_id) const {
  if (host_id.empty() || host_id.size() > 64) return invalidArgument("bad host id");
  for (char c : host_id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return invalidArgument("bad host id");
  return dir_ / (std::string(host_id) + ".key");
}

Status KeyStore::put(std::string_view host_id, const ssh::Secret& pem) const {
  auto path = pathFor(host_id);
  if (!path) return path.error();
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return internal("cannot create " + dir_.string() + ": " + ec.message());
  if (::chmod(dir_.c_str(), 0700) != 0)
    return internal(files::errnoMessage("chmod " + dir_.string()));
  return files::writeFileAtomic(*path, pem.reveal(), 0600);
}

void KeyStore::remove(std::string_view host_id) const {
  auto path = pathFor(host_id);
  if (!path) return;
  std::error_code ec;
  std::filesystem::remove(*path, ec);
}

}  // namespace hwl::agentless
