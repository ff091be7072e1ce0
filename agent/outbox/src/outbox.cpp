// The durable outbox journal (format, durability and bound policy: see outbox.hpp).
#include "hwl/outbox/outbox.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace hwl::outbox {
namespace {

constexpr std::array<char, 4> kMagic = {'H', 'W', 'O', '1'};
constexpr size_t kHeaderBytes = 12;

std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) ? (0x82F63B78U ^ (c >> 1)) : (c >> 1);
    table[i] = c;
  }
  return table;
}

// CRC-32C (Castagnoli), the checksum of ext4/iSCSI journals.
uint32_t crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = makeCrcTable();
  uint32_t c = 0xFFFFFFFFU;
  for (const char ch : data) {
    c = table[(c ^ static_cast<uint8_t>(ch)) & 0xFFU] ^ (c >> 8);
  }
  return c ^ 0xFFFFFFFFU;
}

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}

uint32_t getU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// Parses an entry payload; kDataLoss when the JSON is not an entry.
Result<Entry> parseEntry(const boost::json::object& o) {
  const auto* seq = o.if_contains("seq");
  const auto* id = o.if_contains("id");
  const auto* type = o.if_contains("type");
  const auto* time = o.if_contains("time_ms");
  const auto* data = o.if_contains("data");
  if (!seq || !id || !id->is_string() || !type || !type->is_string() || !time || !data ||
      !data->is_object()) {
    return dataLoss("record is not an outbox entry");
  }
  boost::system::error_code ec1;
  boost::system::error_code ec2;
  Entry e;
  e.seq = seq->to_number<uint64_t>(ec1);
  e.time_ms = time->to_number<int64_t>(ec2);
  if (ec1 || ec2 || e.seq == 0) return dataLoss("record has a bad seq or time");
  e.id = std::string(id->as_string());
  e.type = std::string(type->as_string());
  e.data = data->as_object();
  return e;
}

}  // namespace

boost::json::object Entry::toJson() const {
  return {{"seq", seq}, {"id", id}, {"type", type}, {"time_ms", time_ms}, {"data", data}};
}

std::string encodeRecord(std::string_view payload) {
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  out.append(kMagic.data(), kMagic.size());
  putU32(out, static_cast<uint32_t>(payload.size()));
  putU32(out, crc32c(payload));
  out.append(payload);
  return out;
}

Outbox::Outbox(Settings settings)
    : settings_(std::move(settings)),
      clock_(settings_.clock ? settings_.clock : &SystemClock::instance()),
      path_(settings_.dir / kJournalFile) {}

Result<std::unique_ptr<Outbox>> Outbox::open(Settings settings) {
  if (settings.host_id.empty()) return invalidArgument("outbox: host_id must not be empty");
  if (settings.max_entries == 0) return invalidArgument("outbox: max_entries must be positive");
  if (settings.dir.empty()) return invalidArgument("outbox: dir must be set");
  std::error_code ec;
  std::filesystem::create_directories(settings.dir, ec);
  if (ec) return internal("outbox: create " + settings.dir.string() + ": " + ec.message());
  std::unique_ptr<Outbox> box(new Outbox(std::move(settings)));
  std::lock_guard lock(box->mu_);
  // A compaction cut short by a crash leaves a journal-sized temporary file: not ours to keep.
  if (auto removed = files::removeTemporaries(box->path_); !removed) return removed.error();
  if (auto st = box->load(); !st) return st.error();
  return box;
}

Status Outbox::load() {
  entries_.clear();
  fd_.reset();
  files::UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return internal(files::errnoMessage("open " + path_.string()));
  // No size bound: max_entries bounds the journal, and refusing to read it would strand every
  // undrained entry.
  auto content = files::readFile(path_, SIZE_MAX);
  if (!content) return content.error();
  const std::string& buf = *content;

  size_t off = 0;
  uint64_t last = 0;
  uint64_t compacted_through = 0;
  while (off < buf.size()) {
    if (buf.size() - off < kHeaderBytes) break;
    if (std::memcmp(buf.data() + off, kMagic.data(), kMagic.size()) != 0) break;
    const uint32_t len = getU32(buf.data() + off + 4);
    const uint32_t crc = getU32(buf.data() + off + 8);
    if (len > kMaxEntryBytes + 1024 || buf.size() - off - kHeaderBytes < len) break;
    const std::string_view payload(buf.data() + off + kHeaderBytes, len);
    if (crc32c(payload) != crc) break;
    boost::system::error_code jec;
    const boost::json::value v = boost::json::parse(payload, jec);
    if (jec || !v.is_object()) break;
    const auto& o = v.as_object();
    if (const auto* ct = o.if_contains("compacted_through")) {
      if (off != 0 || !ct->is_number()) break;  // the marker is only ever the first record
      boost::system::error_code nec;
      compacted_through = ct->to_number<uint64_t>(nec);
      if (nec) break;
      last = compacted_through;
    } else {
      auto e = parseEntry(o);
      if (!e || e->seq <= last) break;
      last = e->seq;
      entries_.push_back(std::move(*e));
    }
    off += kHeaderBytes + len;
  }
  discarded_ = buf.size() - off;
  if (discarded_ > 0) {
    if (::ftruncate(fd.get(), static_cast<off_t>(off)) != 0 || ::fsync(fd.get()) != 0) {
      return internal(files::errnoMessage("truncate torn tail of " + path_.string()));
    }
  }
  if (::lseek(fd.get(), static_cast<off_t>(off), SEEK_SET) < 0) {
    return internal(files::errnoMessage("seek " + path_.string()));
  }
  if (auto st = files::fsyncDir(settings_.dir); !st) return st;
  file_bytes_ = off;
  next_seq_ = std::max(next_seq_, last + 1);
  acked_ = std::max(acked_, compacted_through);
  fd_ = std::move(fd);
  broken_ = false;
  return {};
}

uint64_t Outbox::pendingLocked() const {
  uint64_t n = 0;
  for (auto it = entries_.rbegin(); it != entries_.rend() && it->seq > acked_; ++it) ++n;
  return n;
}

Result<Entry> Outbox::append(std::string_view type, boost::json::object data) {
  if (type.empty()) return invalidArgument("outbox: type must not be empty");
  std::lock_guard lock(mu_);
  if (broken_) {
    if (auto st = load(); !st) return st.error();
  }
  if (pendingLocked() >= settings_.max_entries) {
    return Error{Code::kResourceExhausted,
                 "outbox full: " + std::to_string(settings_.max_entries) +
                     " entries not yet drained by the server (drained through seq " +
                     std::to_string(acked_) + ")"};
  }
  if (entries_.size() >= settings_.max_entries) {
    if (auto st = compactLocked(); !st) return st.error();
  }
  Entry e;
  e.seq = next_seq_;
  e.id = settings_.host_id + ":" + std::to_string(e.seq);
  e.type = std::string(type);
  e.time_ms = clock_->nowMs();
  e.data = std::move(data);
  const std::string payload = boost::json::serialize(e.toJson());
  if (payload.size() > kMaxEntryBytes) {
    return invalidArgument("outbox: entry of " + std::to_string(payload.size()) +
                           " bytes exceeds " + std::to_string(kMaxEntryBytes));
  }
  const std::string record = encodeRecord(payload);
  auto st = files::writeAll(fd_.get(), record);
  if (st && ::fdatasync(fd_.get()) != 0) st = internal(files::errnoMessage("fdatasync outbox"));
  if (!st) {
    // Roll back a partial record so the next append does not follow garbage; if even that
    // fails, reload (which discards the torn tail) before the next append.
    if (::ftruncate(fd_.get(), static_cast<off_t>(file_bytes_)) != 0 ||
        ::lseek(fd_.get(), static_cast<off_t>(file_bytes_), SEEK_SET) < 0) {
      broken_ = true;
    }
    return st.error();
  }
  file_bytes_ += record.size();
  ++next_seq_;
  entries_.push_back(e);
  return e;
}

std::vector<Entry> Outbox::read(uint64_t after_seq, size_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  auto it = std::upper_bound(entries_.begin(), entries_.end(), after_seq,
                             [](uint64_t s, const Entry& e) { return s < e.seq; });
  for (; it != entries_.end() && out.size() < limit; ++it) out.push_back(*it);
  return out;
}

Status Outbox::acknowledge(uint64_t through_seq) {
  std::lock_guard lock(mu_);
  const uint64_t clamped = std::min(through_seq, next_seq_ - 1);
  if (clamped <= acked_) return {};
  acked_ = clamped;
  const uint64_t drained_stored = entries_.size() - pendingLocked();
  if (drained_stored >= std::max<uint64_t>(1, settings_.max_entries / 4)) return compactLocked();
  return {};
}

Status Outbox::compactLocked() {
  // The marker records the drained prefix; acked_ is at least every dropped seq, so a reopen
  // computes the same next seq and never hands out a used one.
  std::string content =
      encodeRecord(boost::json::serialize(boost::json::object{{"compacted_through", acked_}}));
  std::deque<Entry> kept;
  for (const auto& e : entries_) {
    if (e.seq <= acked_) continue;
    content += encodeRecord(boost::json::serialize(e.toJson()));
    kept.push_back(e);
  }
  if (auto st = files::writeFileAtomic(path_, content); !st) return st;
  files::UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    broken_ = true;
    return internal(files::errnoMessage("reopen " + path_.string()));
  }
  if (::lseek(fd.get(), 0, SEEK_END) < 0) {
    broken_ = true;
    return internal(files::errnoMessage("seek " + path_.string()));
  }
  fd_ = std::move(fd);
  entries_ = std::move(kept);
  file_bytes_ = content.size();
  return {};
}

Stats Outbox::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.entries = pendingLocked();
  s.capacity = settings_.max_entries;
  s.near_full = static_cast<double>(s.entries) >=
                settings_.near_full_ratio * static_cast<double>(settings_.max_entries);
  s.stored = entries_.size();
  s.last_seq = next_seq_ - 1;
  s.acknowledged_seq = acked_;
  s.file_bytes = file_bytes_;
  s.discarded_tail_bytes = discarded_;
  return s;
}

uint64_t Outbox::lastSeq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

}  // namespace hwl::outbox
