// The hwledger command line: global options, the commands of every domain (cmd_*.cpp), parsing,
// and how the outcome maps to an exit code.
#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "client.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "parse.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

// The connection settings start from the environment; a flag given overrides them.
void addGlobalOptions(CLI::App& app, Context& ctx, std::string& output) {
  ctx.conn = {envOr("HWLEDGER_SERVER"), envOr("HWLEDGER_TOKEN"), envOr("HWLEDGER_CA")};
  app.add_option("--server", ctx.conn.server,
                 "server URL, https://HOST:PORT (env HWLEDGER_SERVER, else the config file "
                 "~/.config/hwledger/config.json or $HWLEDGER_CONFIG)");
  app.add_option("--token", ctx.conn.token,
                 "API token ID.SECRET (env HWLEDGER_TOKEN, else the config's token_file)");
  app.add_option("--ca", ctx.conn.ca,
                 "CA certificate to verify the server (env HWLEDGER_CA, else the config's ca)");
  app.add_flag("--json", ctx.json, "print JSON instead of tables (same as -o json)");
  app.add_option("-o,--output", output, "output format: table|json|csv");
}

// An unknown first word is named, with the nearest command, rather than CLI11's "A subcommand is
// required". Returns whether it printed that refusal.
bool refusedUnknownCommand(const CLI::App& app, int argc, char** argv, std::ostream& err) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a[0] == '-') {
      if (a == "--server" || a == "--token" || a == "--ca" || a == "-o" || a == "--output") ++i;
      continue;
    }
    std::vector<std::string> names;
    for (const auto* sc : app.get_subcommands({})) names.push_back(sc->get_name());
    if (std::find(names.begin(), names.end(), a) != names.end()) return false;
    err << "error: unknown command \"" << a << "\"";
    auto near = nearest(a, names);
    if (!near.empty()) err << "; did you mean \"" << near << "\"?";
    err << "\nRun 'hwledger --help' for the commands.\n";
    return true;
  }
  return false;
}

// CLI11's outcome of parsing as an exit code; nullopt when the command is to run.
std::optional<int> parse(CLI::App& app, int argc, char** argv, std::ostream& out,
                         std::ostream& err) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err) == 0 ? 0 : 2;
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err) == 0 ? 0 : 2;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e, out, err);
    return 0;
  } catch (const CLI::ParseError& e) {
    app.exit(e, out, err);
    return 2;
  }
  return std::nullopt;
}

}  // namespace

int runCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"hwledger: operate and audit an hwLedger fleet"};
  app.require_subcommand(1);
  // Global options are accepted after a subcommand too (`hwledger jobs list --json`).
  app.fallthrough();
  app.set_version_flag("--version", "hwledger " HWL_VERSION);
  Context ctx{.out = out, .err = err};
  std::string output = "table";
  addGlobalOptions(app, ctx, output);

  Commands commands;
  for (auto* add :
       {registerEvents, registerTokens, registerLedger, registerFleet, registerJobs, registerUsage,
        registerEnroll, registerPlan, registerOffers, registerRentals, registerReport})
    add(app, commands);

  if (refusedUnknownCommand(app, argc, argv, err)) return 2;
  if (auto code = parse(app, argc, argv, out, err)) return *code;
  if (auto o = parseOutput(output); !o) return usageError(err, o.error());
  if (ctx.json) output = "json";
  ctx.json = output == "json";
  Table::setFormat(output == "csv");

  const Commands::Bound* command = commands.parsed(app);
  // Offline commands (ledger verify, plan without --host) need no server, and no config file.
  const bool offline = command != nullptr && command->offline();
  if (auto st = offline ? Status{} : applyConfigFile(ctx.conn); !st) return fail(err, st.error());
  return command != nullptr ? command->run(ctx) : 0;
}

}  // namespace hwl::cli
