// Time through an interface, so that tests can move it (Envoy's TimeSource).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace hwl {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time in milliseconds: the unit of every time stored in the ledger.
  [[nodiscard]] virtual int64_t nowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] int64_t nowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock& instance() {
    static SystemClock c;
    return c;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms) : now_(start_ms) {}
  [[nodiscard]] int64_t nowMs() const override { return now_.load(); }
  void advanceMs(int64_t ms) { now_ += ms; }
  void setMs(int64_t ms) { now_ = ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace hwl
