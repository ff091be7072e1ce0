// Slots for long-lived responses (the live event stream, followed job logs): each principal may
// hold a few at a time, and a share of all slots is kept for admins, so that no token, and no
// group of non-admin tokens, can take every slot and lock the operators out.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "hwl/result.hpp"

namespace hwl::api {

struct StreamLimitSettings {
  size_t total = 64;         // open streams of all principals together
  size_t per_principal = 8;  // open streams of one principal (token, admin certificate)
  size_t admin_reserve = 8;  // slots of `total` that only admins may take
};

class StreamLimits {
 public:
  explicit StreamLimits(StreamLimitSettings settings = {});

  // Held for as long as the stream runs; the slot is released when the last copy is destroyed.
  class Slot {
   public:
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    friend class StreamLimits;
    struct State;
    Slot(std::shared_ptr<State> state, std::string principal, bool admin);
    std::shared_ptr<State> state_;
    std::string principal_;
    bool admin_;
  };

  // A slot for `principal`, or ResourceExhausted (HTTP 429) naming the limit that was reached.
  Result<std::shared_ptr<Slot>> acquire(const std::string& principal, bool admin);

  [[nodiscard]] size_t open() const;
  [[nodiscard]] size_t openBy(const std::string& principal) const;
  [[nodiscard]] const StreamLimitSettings& settings() const { return settings_; }

 private:
  StreamLimitSettings settings_;
  std::shared_ptr<Slot::State> state_;
};

}  // namespace hwl::api
