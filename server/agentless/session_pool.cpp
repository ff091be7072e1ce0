#include "agentless/session_pool.hpp"

#include "ssh/ssh_errors.hpp"

namespace hwl::agentless {

bool breaksSession(const Error& e) {
  return ssh::reason::is(e, ssh::reason::kTransport) || ssh::reason::is(e, ssh::reason::kConnect) ||
         e.code == Code::kUnavailable;
}

Result<std::unique_ptr<ssh::SshSession>> SessionPool::take(const std::string& host_id,
                                                           const SshTarget& target,
                                                           uint64_t& generation) {
  {
    std::lock_guard lk(mu_);
    generation = generation_[host_id];
  }
  for (;;) {
    std::unique_ptr<ssh::SshSession> s;
    {
      std::lock_guard lk(mu_);
      auto it = idle_.find(host_id);
      if (it == idle_.end() || it->second.empty()) break;
      s = std::move(it->second.back());
      it->second.pop_back();
    }
    if (s->isAlive()) return s;
  }
  auto key = keys_.pathFor(host_id);
  if (!key) return key.error();
  auto settings = settingsFor(target, *key);
  if (!settings) return settings.error();
  settings->connect_timeout = settings_.connect_timeout;
  settings->command_timeout = settings_.command_timeout;
  settings->keepalive_interval = settings_.keepalive_interval;
  return ssh::SshSession::connect(std::move(*settings));
}

Status SessionPool::with(const std::string& host_id, const SshTarget& target, const Use& use) {
  uint64_t generation = 0;
  auto s = take(host_id, target, generation);
  if (!s) return s.error();
  Status st = use(**s);
  if (!st && breaksSession(st.error())) return st;
  std::lock_guard lk(mu_);
  if (generation_[host_id] != generation) return st;  // dropped meanwhile: closed here
  auto& v = idle_[host_id];
  if (v.size() < kMaxIdlePerHost) v.push_back(std::move(*s));
  return st;
}

void SessionPool::drop(const std::string& host_id) {
  std::vector<std::unique_ptr<ssh::SshSession>> gone;
  {
    std::lock_guard lk(mu_);
    ++generation_[host_id];
    auto it = idle_.find(host_id);
    if (it == idle_.end()) return;
    gone = std::move(it->second);
    idle_.erase(it);
  }
}

void SessionPool::clear() {
  std::map<std::string, std::vector<std::unique_ptr<ssh::SshSession>>> gone;
  {
    std::lock_guard lk(mu_);
    gone.swap(idle_);
  }
}

}  // namespace hwl::agentless
