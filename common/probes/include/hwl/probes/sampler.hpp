// Background sampling: one thread calls the probe every interval (1 s by default), keeps the
// latest Sample and a short ring of readings per GPU. Probes fork/exec and read files, so they
// run here and never on an Asio I/O thread; readers take snapshots under a mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hwl/probes/probe.hpp"
#include "hwl/probes/sample.hpp"

namespace hwl::probes {

struct SamplerSettings {
  std::chrono::milliseconds interval{1000};
  std::size_t ring_size = 300;                        // readings kept per GPU (5 minutes at 1 s)
  std::function<std::int64_t()> now_ms = &unixNowMs;  // stamps Sample::time_ms
};

struct GpuReading {
  std::int64_t time_ms = 0;
  GpuSample gpu;
};

struct SamplerStats {
  std::uint64_t samples_total = 0;
  std::uint64_t sample_errors_total = 0;
  std::optional<Error> last_error;
};

class Sampler {
 public:
  Sampler(std::unique_ptr<Probe> probe, SamplerSettings settings = {});
  ~Sampler();  // stops and joins
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  void start();  // starts the thread; the first sample is taken at once
  void stop();   // idempotent; returns after the thread has exited

  // Takes one sample on the calling thread (for tests and one-shot tools).
  void sampleOnce();

  // The latest successful sample, or nullptr before the first one.
  [[nodiscard]] std::shared_ptr<const Sample> latest() const;
  // Oldest first, at most ring_size readings of the GPU with this uuid.
  [[nodiscard]] std::vector<GpuReading> history(const std::string& uuid) const;
  [[nodiscard]] std::vector<std::string> gpuUuids() const;
  [[nodiscard]] SamplerStats stats() const;
  [[nodiscard]] std::string probeName() const { return probe_name_; }

 private:
  void run();

  std::unique_ptr<Probe> probe_;
  SamplerSettings settings_;
  std::string probe_name_;
  std::mutex probe_mutex_;  // serialises sampleOnce() against the thread

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::shared_ptr<const Sample> latest_;
  std::map<std::string, std::deque<GpuReading>> rings_;
  SamplerStats stats_;
  std::thread thread_;
};

}  // namespace hwl::probes
