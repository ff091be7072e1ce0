// Ledger events: what an appender supplies, what the ledger stores, and the hash chain formula.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "hwl/crypto.hpp"

namespace hwl::ledger {

// A stream must be new (version 0) or at exactly this version; kAnyVersion skips the check.
inline constexpr int64_t kAnyVersion = -1;
inline constexpr int64_t kNoStream = 0;

struct NewEvent {
  std::string id;  // empty: the ledger assigns a random id
  std::string type;
  boost::json::value data;
};

// Events for one stream, appended with an optimistic concurrency check.
struct StreamAppend {
  std::string stream;
  int64_t expected_version = kAnyVersion;
  std::vector<NewEvent> events;
};

// One atomic append: every part commits, or none does.
struct AppendRequest {
  std::string actor;
  std::vector<StreamAppend> parts;
};

struct AppendResult {
  std::vector<int64_t> seqs;  // in request order, across parts
  bool duplicate = false;     // every event id existed with the same content: nothing written
};

struct Event {
  int64_t seq = 0;
  std::string id;
  std::string stream;
  int64_t version = 0;
  std::string type;
  int64_t time_ms = 0;
  std::string actor;
  std::string data;  // canonical JSON
  crypto::Digest prev_hash{};
  crypto::Digest hash{};
};

// hash = SHA-256(prev_hash ‖ lp(seq) ‖ lp(id) ‖ lp(stream) ‖ lp(version) ‖ lp(type) ‖ lp(time_ms)
//                ‖ lp(actor) ‖ lp(data)), where lp(x) is the 8-byte big-endian length of x
// followed by x, and integers are written in decimal ASCII. Genesis prev_hash is 32 zero bytes.
// Feeds the 8-byte big-endian length of `s`, then `s`, into `h` (the lp() of the formula).
void hashLengthPrefixed(crypto::Sha256& h, std::string_view s);

crypto::Digest eventHash(crypto::Sha256& h, const crypto::Digest& prev, int64_t seq,
                         std::string_view id, std::string_view stream, int64_t version,
                         std::string_view type, int64_t time_ms, std::string_view actor,
                         std::string_view data);

boost::json::object eventToJson(const Event& e);

}  // namespace hwl::ledger
