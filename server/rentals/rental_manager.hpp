// The rental side of the fleet: launching an offer for an operator (budget caps checked first,
// rental.requested recorded before the provider is called, so a crash can never lose a billing
// instance), following it to running or failure, enrolling its host over SSH, terminating it and
// confirming the end with the provider, reconciling every provider's instances against the
// ledger (orphans), accruing its cost hourly and at the end, and comparing that with what the
// provider reports billed. Provider calls run on the manager's own threads (one per provider) or
// on the HTTP worker that asked, never on an Asio I/O thread.
#pragma once

#include <atomic>
#include <boost/json/object.hpp>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hwl/clock.hpp"
#include "hwl/result.hpp"
#include "ledger/store.hpp"
#include "rentals/provider.hpp"
#include "rentals/rental_book.hpp"
#include "rentals/rentals_config.hpp"

namespace hwl::rentals {

// POST /v1/rentals, checked.
struct LaunchOrder {
  std::string offer;  // "<provider>:<offer id>"
  std::string name;
  std::string ssh_key;  // an OpenSSH public key line, or empty
  bool spot = false;
  std::optional<double> bid_hour_usd;
};
[[nodiscard]] Result<LaunchOrder> parseLaunchOrder(const boost::json::object& body);
// "ssh-ed25519 AAAA… comment": a known key type, its base64 blob naming the same type, a
// printable comment; nothing a provider's field or an authorized_keys file could misread.
[[nodiscard]] Status checkPublicKey(std::string_view line);

struct ManagerDeps {
  ledger::Ledger* ledger = nullptr;
  const Clock* clock = nullptr;
  std::vector<std::shared_ptr<Provider>> providers;
  RentalsConfig config;
  // The offer as listed now (the offer catalogue), kNotFound when it is gone.
  std::function<Result<Offer>(std::string_view id)> find_offer;
  // Where the per-rental SSH keys live (DATA/ssh/keys); empty: no key is made and no host is
  // enrolled.
  std::string key_dir;
  // Enrolls the host of a running rental over SSH with its key file; returns the host id.
  std::function<Result<std::string>(const Rental& rental, const std::string& key_file)> enroll;
  // Retires the host of a terminated rental (it will not come back).
  std::function<void(const std::string& host_id, const std::string& why)> retire_host;
  // GPU-milliseconds of each job on `host_id` within [from_ms, to_ms).
  std::function<std::map<std::string, int64_t>(const std::string& host_id, int64_t from_ms,
                                               int64_t to_ms)>
      job_gpu_ms;
  std::chrono::milliseconds poll_interval{2000};
  // A terminate the provider acknowledged is asked again this often while it is still listed.
  std::chrono::milliseconds terminate_retry{10'000};
};

class RentalManager {
 public:
  // Replays the rental and budget streams of the ledger.
  static Result<std::unique_ptr<RentalManager>> open(ManagerDeps deps);
  ~RentalManager();
  RentalManager(const RentalManager&) = delete;
  RentalManager& operator=(const RentalManager&) = delete;

  // Starts one thread per provider: reconcile first (launches on it are refused until then),
  // then follow its rentals.
  void start();
  void stop();

  // POST /v1/rentals. 201 with the rental; 409 over a budget cap (the numbers in details); 503
  // while the provider is not reconciled; 502 when the provider refused (rental.failed).
  Result<boost::json::object> launch(const LaunchOrder& order, const std::string& actor);
  // DELETE /v1/rentals/{id}: records the request and asks the provider (202); confirmation
  // follows on the manager's thread.
  Result<boost::json::object> terminate(const std::string& id, const std::string& actor);
  [[nodiscard]] boost::json::array list() const;
  // The budget caps and where spending stands against them: the hourly rate of the rentals that
  // bill now and the cost so far (as the launch check computes them), each with its cap or null.
  [[nodiscard]] boost::json::object budget() const;
  [[nodiscard]] Result<boost::json::object> get(const std::string& id) const;
  // GET /v1/costs: the cost rows within [from_ms, to_ms) (pro rata for rows crossing an edge),
  // grouped by provider, rental, host or job.
  [[nodiscard]] Result<boost::json::object> costs(int64_t from_ms, int64_t to_ms,
                                                  const std::string& group_by) const;
  [[nodiscard]] bool reconciled(const std::string& provider) const;
  [[nodiscard]] std::vector<std::string> providers() const;

  // One pass of a provider's work (reconcile when due, follow, accrue, budget); for tests and
  // the threads.
  void tick(const std::string& provider, bool reconcile_now);

 private:
  explicit RentalManager(ManagerDeps deps);
  Status replay(ledger::EventQuery q);  // folds the matching events into the book
  struct ProviderRun;
  Status appendTo(const std::string& rental_id, std::vector<ledger::NewEvent> events,
                  const std::string& actor);
  Status appendBudget(ledger::NewEvent event);
  Status applyCommitted(const std::string& stream, const ledger::AppendResult& res);
  [[nodiscard]] std::optional<Rental> snapshot(const std::string& id) const;
  std::vector<Rental> rentalsOf(const std::string& provider) const;
  Provider* providerNamed(const std::string& name) const;
  Status reconcile(Provider& p);
  void follow(Provider& p, const Rental& r);
  void confirmTerminated(Provider& p, const Rental& r);
  void requestTerminate(Provider& p, const Rental& r, const std::string& reason,
                        const std::string& actor);
  void accrue(const Rental& r, int64_t now);
  void checkBudget(int64_t now);
  void enrollHost(const Rental& r);
  [[nodiscard]] double hourlyRate() const;
  [[nodiscard]] double totalCost(int64_t now) const;
  std::string keyFileOf(const std::string& rental_id) const;

  ManagerDeps deps_;
  mutable std::mutex mu_;  // book_, the sets below
  RentalBook book_;
  std::set<std::string> launching_;  // rentals whose launch call is in flight
  std::set<std::string> reconciled_;
  std::map<std::string, int64_t> last_terminate_ms_;
  std::map<std::string, int64_t> enroll_after_ms_;
  std::map<std::string, bool> over_cap_;
  std::mutex launch_mu_;  // one launch at a time: the budget check and the record agree
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hwl::rentals
