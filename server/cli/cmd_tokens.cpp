// `hwledger tokens`: API tokens for people and scripts; the secret is printed once, at creation.
#include <string>

#include "client.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "table.hpp"

namespace hwl::cli {

namespace {

struct TokenCreateOptions {
  std::string role;
  int64_t ttl = 0;
  std::string note;
};

struct TokenRevokeOptions {
  std::string id;
};

int tokensCreate(const TokenCreateOptions& o, const Context& ctx) {
  bj::object body{{"role", o.role}, {"note", o.note}};
  if (o.ttl > 0) body["ttl_s"] = o.ttl;
  Api api(ctx.conn);
  return show(ctx, api.call("POST", "/v1/tokens", bj::serialize(body)), [&](const bj::value& v) {
    const auto& t = v.as_object();
    ctx.out << "id:      " << str(t.at("id")) << "\nrole:    " << str(t.at("role")) << "\nexpires: "
            << (t.at("expires_ms").is_null() ? "never" : fmtTime(t.at("expires_ms").as_int64()))
            << "\ntoken:   " << str(t.at("token")) << "\n(the token is shown only once)\n";
    return 0;
  });
}

int tokensList(const NoOptions&, const Context& ctx) {
  Api api(ctx.conn);
  return show(ctx, api.call("GET", "/v1/tokens"), [&](const bj::value& v) {
    Table t({"ID", "ROLE", "CREATED", "EXPIRES", "REVOKED", "NOTE"});
    for (const auto& e : v.as_object().at("tokens").as_array()) {
      const auto& tok = e.as_object();
      auto tm = [&](const char* k) {
        return tok.at(k).is_null() ? std::string("-") : fmtTime(tok.at(k).as_int64());
      };
      t.add({str(tok.at("id")), str(tok.at("role")), tm("created_ms"), tm("expires_ms"),
             tm("revoked_ms"), str(tok.at("note"))});
    }
    t.print(ctx.out);
    return 0;
  });
}

int tokensRevoke(const TokenRevokeOptions& o, const Context& ctx) {
  Api api(ctx.conn);
  return show(ctx, api.call("DELETE", "/v1/tokens/" + o.id), [&](const bj::value&) {
    ctx.out << "revoked " << o.id << "\n";
    return 0;
  });
}

}  // namespace

void registerTokens(CLI::App& app, Commands& commands) {
  auto* tokens = app.add_subcommand("tokens", "API tokens");
  tokens->require_subcommand(1);

  auto* create = tokens->add_subcommand("create", "create a token (the secret is shown once)");
  auto& c = commands.add(create, tokensCreate);
  create->add_option("--role", c.role, "viewer|operator|admin")->required();
  create->add_option("--ttl", c.ttl, "lifetime in seconds");
  create->add_option("--note", c.note, "what the token is for");

  commands.add(tokens->add_subcommand("list", "list tokens (no secrets)"), tokensList);

  auto* revoke = tokens->add_subcommand("revoke", "revoke a token");
  auto& r = commands.add(revoke, tokensRevoke);
  revoke->add_option("id", r.id, "token id")->required();
}

}  // namespace hwl::cli
