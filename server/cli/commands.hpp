// What every hwledger command shares: the context it runs in, and the registry that binds each
// command's options (filled by CLI11) to the function doing its work. Each cmd_*.cpp registers
// the commands of one domain.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>

#include "client.hpp"
#include "parse.hpp"

namespace hwl::cli {

struct Context {
  std::ostream& out;
  std::ostream& err;
  Connection conn;
  bool json = false;  // -o json or --json (-o csv is Table's, process-wide)
};

// The options struct of a command without flags.
struct NoOptions {};

class Commands {
 public:
  template <class Options>
  using Run = int (*)(const Options&, const Context&);
  template <class Options>
  using Offline = bool (*)(const Options&);

  // A command bound to its options: run once parsing is over and the context is complete.
  struct Bound {
    std::function<int(const Context&)> run;
    std::function<bool()> offline;  // needs no server, so no config file either
  };

  // The options of subcommand `sub`, for its flags to be bound to. The options live as long as
  // this registry, since CLI11 writes into them while parsing.
  template <class Options>
  Options& add(CLI::App* sub, Run<Options> run,
               std::type_identity_t<Offline<Options>> offline = nullptr) {
    auto options = std::make_shared<Options>();
    bound_[sub] = Bound{[options, run](const Context& ctx) { return run(*options, ctx); },
                        [options, offline] { return offline != nullptr && offline(*options); }};
    return *options;
  }

  // The command the parsed command line names (the deepest subcommand given), or null.
  [[nodiscard]] const Bound* parsed(const CLI::App& app) const {
    const CLI::App* leaf = &app;
    while (!leaf->get_subcommands().empty()) leaf = leaf->get_subcommands().front();
    auto it = bound_.find(leaf);
    return it == bound_.end() ? nullptr : &it->second;
  }

 private:
  std::map<const CLI::App*, Bound> bound_;
};

// A flag holding a count from 1 to `max` (--context, --batch, --tp), checked as typed: a negative
// or zero value is refused by name instead of wrapping around in an unsigned conversion.
template <class T>
CLI::Option* addCount(CLI::App* sub, const std::string& flag, T& target,
                      const std::string& description, uint64_t max) {
  return sub->add_option(flag, target, description)
      ->check(CLI::Validator(
          [max](std::string& text) {
            auto n = parseCount(text, max);
            return n ? std::string() : n.error().message;
          },
          "1.." + std::to_string(max), "count"));
}

// Limits of the planner's counts, as hwledger plan, placements and rent take them.
constexpr uint64_t kMaxContextTokens = 1ULL << 32;
constexpr uint64_t kMaxBatch = 1ULL << 24;
constexpr uint64_t kMaxTp = 1024;

// In the order `hwledger --help` lists them; runCli registers them in this order.
void registerEvents(CLI::App& app, Commands& commands);   // events
void registerTokens(CLI::App& app, Commands& commands);   // tokens create|list|revoke
void registerLedger(CLI::App& app, Commands& commands);   // ledger verify (offline)
void registerFleet(CLI::App& app, Commands& commands);    // hosts [revoke], gpus
void registerJobs(CLI::App& app, Commands& commands);     // jobs submit|list|logs|cancel
void registerUsage(CLI::App& app, Commands& commands);    // usage
void registerEnroll(CLI::App& app, Commands& commands);   // enroll-token create
void registerPlan(CLI::App& app, Commands& commands);     // plan, placements
void registerOffers(CLI::App& app, Commands& commands);   // offers, rent
void registerRentals(CLI::App& app, Commands& commands);  // rentals [show|terminate], costs
void registerReport(CLI::App& app, Commands& commands);   // report (offline with --db)

}  // namespace hwl::cli
