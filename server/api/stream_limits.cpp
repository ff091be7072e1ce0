// Counting stream slots per principal, with an admins-only reserve.
#include "stream_limits.hpp"

namespace hwl::api {

// Shared with every slot, so a slot outliving the limits (a stream thread still unwinding at
// shutdown) releases into valid memory.
struct StreamLimits::Slot::State {
  std::mutex mu;
  size_t total = 0;      // all open slots
  size_t non_admin = 0;  // of which held by non-admins
  std::map<std::string, size_t> by_principal;
};

StreamLimits::Slot::Slot(std::shared_ptr<State> state, std::string principal, bool admin)
    : state_(std::move(state)), principal_(std::move(principal)), admin_(admin) {}

StreamLimits::Slot::~Slot() {
  std::lock_guard lk(state_->mu);
  --state_->total;
  if (!admin_) --state_->non_admin;
  auto it = state_->by_principal.find(principal_);
  if (it != state_->by_principal.end() && --it->second == 0) state_->by_principal.erase(it);
}

StreamLimits::StreamLimits(StreamLimitSettings settings)
    : settings_(settings), state_(std::make_shared<Slot::State>()) {}

Result<std::shared_ptr<StreamLimits::Slot>> StreamLimits::acquire(const std::string& principal,
                                                                  bool admin) {
  std::lock_guard lk(state_->mu);
  auto exhausted = [](std::string m) { return Error{Code::kResourceExhausted, std::move(m)}; };
  size_t mine = 0;
  if (auto it = state_->by_principal.find(principal); it != state_->by_principal.end())
    mine = it->second;
  if (mine >= settings_.per_principal)
    return exhausted("\"" + principal + "\" already holds " + std::to_string(mine) +
                     " open streams, the most one principal may hold "
                     "(max_streams_per_principal); close one first");
  if (state_->total >= settings_.total)
    return exhausted("all " + std::to_string(settings_.total) +
                     " stream slots of the server are in use (max_streams)");
  const size_t shared =
      settings_.total > settings_.admin_reserve ? settings_.total - settings_.admin_reserve : 0;
  if (!admin && state_->non_admin >= shared)
    return exhausted("all " + std::to_string(shared) +
                     " stream slots open to non-admin principals are in use (the other " +
                     std::to_string(settings_.total - shared) + " are kept for admins)");
  ++state_->total;
  if (!admin) ++state_->non_admin;
  ++state_->by_principal[principal];
  return std::shared_ptr<Slot>(new Slot(state_, principal, admin));
}

size_t StreamLimits::open() const {
  std::lock_guard lk(state_->mu);
  return state_->total;
}

size_t StreamLimits::openBy(const std::string& principal) const {
  std::lock_guard lk(state_->mu);
  auto it = state_->by_principal.find(principal);
  return it == state_->by_principal.end() ? 0 : it->second;
}

}  // namespace hwl::api
