// `hwledger enroll-token create`: a one-time enrollment token, printed as the lines an operator
// pastes on a new GPU host.
#include <sstream>
#include <string>
#include <string_view>

#include "client.hpp"
#include "commands.hpp"
#include "output.hpp"

namespace hwl::cli {

namespace {

struct EnrollTokenOptions {
  int64_t ttl = 0;
  std::string name;
  int agent_port = 9443;
};

// Only characters that mean nothing to a shell, so the printed lines paste as they are.
bool shellSafe(std::string_view s, std::string_view extra) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    extra.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// The lines an operator pastes on a new GPU host, from a POST /v1/enroll-tokens answer: the
// server's public URL (or the one this CLI used), the token, the CA pin and the name; the agent
// finds its own advertise address on the route to the server.
Result<std::string> enrollCommand(const bj::object& o, const std::string& cli_server, int port) {
  const std::string server = o.contains("server_url") ? str(o.at("server_url")) : cli_server;
  const std::string token = str(o.at("token")), pin = str(o.at("ca_pin"));
  const std::string name = o.contains("host_hint") ? str(o.at("host_hint")) : "";
  if (!shellSafe(server, ":/.-[]") || server.rfind("https://", 0) != 0)
    return invalidArgument("the server URL " + server + " cannot be printed as a command");
  // An IPv6 literal's brackets are a glob to the shell.
  const std::string server_arg =
      server.find('[') == std::string::npos ? server : "'" + server + "'";
  if (!shellSafe(token, "._-") || !shellSafe(pin, ":") ||
      (!name.empty() && !shellSafe(name, "._-")))
    return internal("the server's answer holds characters a shell would interpret");
  std::string args = " --server " + server_arg + " --token " + token + " --ca-pin " + pin;
  if (!name.empty()) args += " --name " + name;
  if (port != 9443) args += " --advertise-port " + std::to_string(port);
  std::ostringstream out;
  out << "On the GPU host, with the agent installed as a service (deploy/install-agent.sh or the "
         "hwledger-agent package):\n\n"
      << "  sudo -u hwledger-agent hwledger-agent enroll" << args
      << " --state-dir /var/lib/hwledger-agent\n"
      << "  sudo systemctl enable --now hwledger-agent\n\n"
      << "Or by hand, as any user:\n\n"
      << "  hwledger-agent enroll" << args << " --state-dir ~/.hwledger-agent\n"
      << "  hwledger-agent run --state-dir ~/.hwledger-agent --listen 0.0.0.0:" << port << "\n";
  return out.str();
}

int enrollTokenCreate(const EnrollTokenOptions& o, const Context& ctx) {
  bj::object body;
  if (o.ttl > 0) body["ttl_s"] = o.ttl;
  if (!o.name.empty()) body["host_hint"] = o.name;
  Api api(ctx.conn);
  auto answer = api.call("POST", "/v1/enroll-tokens", bj::serialize(body));
  return show(ctx, answer, [&](const bj::value& v) {
    const auto& t = v.as_object();
    auto cmd = enrollCommand(t, ctx.conn.server, o.agent_port);
    if (!cmd) return fail(ctx.err, cmd.error());
    if (!t.contains("server_url"))
      ctx.err << "note: the server has no public_url set; the command names " << ctx.conn.server
              << ", which the GPU host must be able to reach (hwledger-server run --public-url)\n";
    ctx.out << "enrollment token " << str(t.at("id")) << " (single use, expires "
            << fmtTime(t.at("expires_ms").as_int64()) << ")\n\n"
            << *cmd;
    return 0;
  });
}

}  // namespace

void registerEnroll(CLI::App& app, Commands& commands) {
  auto* etok = app.add_subcommand("enroll-token", "one-time tokens that enroll agents");
  etok->require_subcommand(1);
  auto* create = etok->add_subcommand("create", "create a token and print the agent command");
  auto& o = commands.add(create, enrollTokenCreate);
  create->add_option("--ttl", o.ttl, "lifetime in seconds (default 900, max 86400)");
  create->add_option("--name,--host-hint", o.name,
                     "name the host will get (letters, digits, '.', '_', '-')");
  create->add_option("--agent-port", o.agent_port, "port the agent listens on (9443)")
      ->check(CLI::Range(1, 65535));
}

}  // namespace hwl::cli
