// `hwledger usage`: GPU-hours, energy and mean utilisation per host, GPU or job over a window.
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "client.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "parse.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct UsageOptions {
  std::string group_by = "host";
  std::string from;  // as typed; parseTime reads it once the command runs
  std::string to;
};

// Under 1 kWh in Wh, so a short window does not print as 0.000 kWh.
std::string energy(const bj::object& o) {
  auto it = o.find("energy_kwh");
  boost::system::error_code ec;
  double kwh = it != o.end() && it->value().is_number() ? it->value().to_number<double>(ec) : -1;
  char buf[32];
  if (kwh < 0)
    std::snprintf(buf, sizeof buf, "-");
  else if (kwh < 1.0)
    std::snprintf(buf, sizeof buf, "%.1f Wh", kwh * 1000);
  else
    std::snprintf(buf, sizeof buf, "%.3f kWh", kwh);
  return buf;
}

int usage(const UsageOptions& o, const Context& ctx) {
  auto window =
      windowQuery(o.group_by, o.from, o.to, static_cast<int64_t>(std::time(nullptr)) * 1000);
  if (!window) return usageError(ctx.err, window.error());
  Api api(ctx.conn);
  const std::string target = "/v1/usage" + *window;
  return show(ctx, api.call("GET", target), [&](const bj::value& v) {
    auto names = fleetNames(api);
    if (!names) return fail(ctx.err, names.error());
    std::vector<std::string> head;
    if (o.group_by == "job")
      head = {"JOB", "NAME", "HOST"};
    else if (o.group_by == "gpu")
      head = {"HOST", "GPU"};
    else
      head = {"HOST", "GPUS"};
    // The server counts a GPU in each 1-minute bucket it reported a sample in, whether or not a
    // job held it: the header says so.
    for (const char* h : {"GPU-HOURS PRESENT (1-min samples)", "ENERGY", "MEAN UTIL%"})
      head.emplace_back(h);
    Table t(head);
    for (const auto& e : v.as_object().at("usage").as_array()) {
      const auto& u = e.as_object();
      std::vector<std::string> row;
      const std::string host = names->hostName(str(u.at("host")));
      if (o.group_by == "job")
        row = {str(u.at("job")), str(u.at("name")), host};
      else if (o.group_by == "gpu")
        row = {host, str(u.at("gpu_uuid"))};
      else
        row = {host, numStr(u, "gpus", "%.0f")};
      row.push_back(numStr(u, "gpu_hours", "%.3f"));
      row.push_back(energy(u));
      row.push_back(numStr(u, "mean_util_pct", "%.1f"));
      t.add(row);
    }
    t.print(ctx.out);
    return 0;
  });
}

}  // namespace

void registerUsage(CLI::App& app, Commands& commands) {
  auto* usage_cmd = app.add_subcommand("usage", "GPU-hours, energy and utilisation");
  auto& o = commands.add(usage_cmd, usage);
  usage_cmd->add_option("--group-by", o.group_by, "host|gpu|job");
  usage_cmd->add_option("--from", o.from,
                        "start: 2026-12-02, 2026-12-02T10:00:00Z or -24h (default: 24 h ago)");
  usage_cmd->add_option("--to", o.to, "end, same forms (default: now)");
}

}  // namespace hwl::cli
