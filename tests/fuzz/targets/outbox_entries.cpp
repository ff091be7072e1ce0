// An agent's GET /v1/outbox answer as the server drains it: {"entries":[…]}, each entry turned
// into a ledger event and appended to a real ledger with the server's projections (hosts, jobs,
// GPUs). Invariants: the event always carries the verified host id, never the agent's claim; it
// goes to the host's stream or a job stream; it is appended or refused cleanly; re-draining the
// same entry changes nothing (idempotent by event id); the ledger's hash chain still verifies.
#include <boost/json.hpp>

#include "app/server_app.hpp"
#include "collect/collector.hpp"
#include "fuzz_support.hpp"
#include "hwl/json.hpp"
#include "storage/sqlite_ledger.hpp"

using namespace hwl;
namespace bj = boost::json;

namespace {

struct World {
  fuzz::ScratchDir dir{"outbox-entries"};
  ManualClock clock{1'700'000'000'000};
  std::unique_ptr<storage::SqliteLedger> ledger;
  World() {
    storage::LedgerOptions o;
    o.db_path = dir.path() / "ledger.db";
    o.create = true;
    o.clock = &clock;
    server::addProjections(o);  // the server's own projections
    auto l = storage::SqliteLedger::open(std::move(o));
    HWL_FUZZ_CHECK(l.has_value(), l ? "" : l.error().message);
    ledger = std::move(*l);
  }
};

World& world() {
  static World* w = new World();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = fuzz::text(data, size);
  auto body = json::parseObject(in);
  if (!body || !body->contains("entries") || !body->at("entries").is_array()) return 0;
  auto& w = world();
  const std::string host = "host-f0f0f0";
  size_t n = 0;
  for (const auto& e : body->at("entries").get_array()) {
    if (!e.is_object() || ++n > 64) continue;
    auto req = collect::outboxEntryToEvent(host, e.get_object());
    std::string what = bj::serialize(e).substr(0, 1000);
    HWL_FUZZ_CHECK(req.actor == "host:" + host, what);
    HWL_FUZZ_CHECK(req.parts.size() == 1 && req.parts[0].events.size() == 1, what);
    const auto& part = req.parts[0];
    const auto& ev = part.events[0];
    HWL_FUZZ_CHECK(ev.data.is_object(), what);
    const auto& d = ev.data.as_object();
    HWL_FUZZ_CHECK(d.contains("host_id") && d.at("host_id") == bj::value(host), what);
    HWL_FUZZ_CHECK(d.contains("agent_seq") && d.at("agent_seq").is_int64(), what);
    HWL_FUZZ_CHECK(part.stream == "host/" + host || part.stream.rfind("job/", 0) == 0, what);
    HWL_FUZZ_CHECK(ev.id.rfind(host + ":", 0) == 0, what);

    int64_t before = w.ledger->headSeq();
    auto again = req;
    auto r = w.ledger->append(std::move(req));
    if (!r) {
      HWL_FUZZ_CHECK(w.ledger->headSeq() == before, "a refused append wrote: " + what);
      continue;
    }
    int64_t after = w.ledger->headSeq();
    auto dup = w.ledger->append(std::move(again));
    HWL_FUZZ_CHECK(w.ledger->headSeq() == after, "re-draining appended again: " + what);
    HWL_FUZZ_CHECK(!dup || dup->duplicate, what);
  }
  // The hash chain over everything appended so far, now and then (it reads the whole ledger).
  static uint64_t runs = 0;
  if (++runs % 512 == 1) {
    auto v = w.ledger->verify();
    HWL_FUZZ_CHECK(v.ok, bj::serialize(v.toJson()));
  }
  return 0;
}
