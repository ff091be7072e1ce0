// The sampling thread and its ring buffers.
#include "hwl/probes/sampler.hpp"

namespace hwl::probes {

Sampler::Sampler(std::unique_ptr<Probe> probe, SamplerSettings settings)
    : probe_(std::move(probe)), settings_(std::move(settings)), probe_name_(probe_->name()) {
  if (settings_.ring_size == 0) settings_.ring_size = 1;
  if (settings_.interval.count() <= 0) settings_.interval = std::chrono::milliseconds(1000);
  if (!settings_.now_ms) settings_.now_ms = &unixNowMs;
}

Sampler::~Sampler() { stop(); }

void Sampler::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Sampler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Sampler::sampleOnce() {
  Result<Sample> s = [this] {
    std::lock_guard probeLock(probe_mutex_);
    return probe_->sample();
  }();
  std::lock_guard lock(mutex_);
  if (!s) {
    ++stats_.sample_errors_total;
    stats_.last_error = s.error();
    return;
  }
  ++stats_.samples_total;
  s->time_ms = settings_.now_ms();
  for (const auto& g : s->gpus) {
    auto& ring = rings_[g.uuid];
    ring.push_back({s->time_ms, g});
    while (ring.size() > settings_.ring_size) ring.pop_front();
  }
  latest_ = std::make_shared<const Sample>(std::move(*s));
}

void Sampler::run() {
  auto next = std::chrono::steady_clock::now();
  while (true) {
    sampleOnce();
    next += settings_.interval;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // a slow probe delays the schedule instead of bursting
    std::unique_lock lock(mutex_);
    if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
  }
}

std::shared_ptr<const Sample> Sampler::latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

std::vector<GpuReading> Sampler::history(const std::string& uuid) const {
  std::lock_guard lock(mutex_);
  const auto it = rings_.find(uuid);
  if (it == rings_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> Sampler::gpuUuids() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  out.reserve(rings_.size());
  for (const auto& [uuid, ring] : rings_) out.push_back(uuid);
  return out;
}

SamplerStats Sampler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace hwl::probes
