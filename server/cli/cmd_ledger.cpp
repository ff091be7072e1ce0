// `hwledger ledger verify`: an offline check of a copy of ledger.db, for an auditor who does not
// trust the server: every hash recomputed, every checkpoint signature checked.
#include <filesystem>
#include <memory>
#include <string>

#include "commands.hpp"
#include "hwl/crypto.hpp"
#include "output.hpp"
#include "storage/sqlite.hpp"
#include "storage/sqlite_ledger.hpp"

namespace hwl::cli {

namespace {

struct LedgerVerifyOptions {
  std::string db;
  std::string checkpoints;
  std::string pubkey;
};

int ledgerVerify(const LedgerVerifyOptions& o, const Context& ctx) {
  std::filesystem::path db(o.db);
  auto dir = db.parent_path().empty() ? std::filesystem::path(".") : db.parent_path();
  std::string cp_path = o.checkpoints, pub_path = o.pubkey;
  storage::VerifyOptions vo;
  if (cp_path.empty() && std::filesystem::exists(dir / "checkpoints.log"))
    cp_path = (dir / "checkpoints.log").string();
  vo.checkpoint_log = cp_path;
  if (pub_path.empty() && std::filesystem::exists(dir / "checkpoint.pub"))
    pub_path = (dir / "checkpoint.pub").string();
  if (!pub_path.empty()) {
    auto k = crypto::loadPublicKeyPem(pub_path);
    if (!k) return fail(ctx.err, k.error());
    vo.public_key = std::shared_ptr<EVP_PKEY>(k->release(), crypto::PkeyFree{});
  } else {
    ctx.err << "warning: no checkpoint public key: signatures are not checked\n";
  }
  if (!std::filesystem::exists(db)) return fail(ctx.err, notFound("no database at " + o.db));
  auto conn = sqlite::Db::open(db, sqlite::Db::Mode::kReadOnly);
  if (!conn) return fail(ctx.err, conn.error());
  auto rep = storage::verifyDatabase(*conn, vo);
  if (ctx.json) {
    printJson(ctx.out, rep.toJson());
  } else {
    ctx.out << "events:       " << rep.events << "\n"
            << "head seq:     " << rep.head_seq << "\n"
            << "head hash:    " << crypto::hex(rep.head_hash) << "\n"
            << "checkpoints:  " << rep.checkpoints_checked << " checked, "
            << (rep.checkpoints_ok ? "ok" : "FAILED") << "\n";
    if (rep.first_bad_seq) ctx.out << "first bad seq: " << *rep.first_bad_seq << "\n";
    if (!rep.problem.empty()) ctx.out << "problem:      " << rep.problem << "\n";
    ctx.out << (rep.ok ? "ledger OK\n" : "ledger BROKEN\n");
  }
  return rep.ok ? 0 : 1;
}

}  // namespace

void registerLedger(CLI::App& app, Commands& commands) {
  auto* ledger = app.add_subcommand("ledger", "offline ledger checks");
  ledger->require_subcommand(1);
  auto* verify = ledger->add_subcommand("verify", "recompute every hash and check checkpoints");
  auto& o = commands.add(verify, ledgerVerify, [](const LedgerVerifyOptions&) { return true; });
  verify->add_option("--db", o.db, "ledger.db to check")->required();
  verify->add_option("--checkpoints", o.checkpoints,
                     "exported checkpoints.log (default: beside the database)");
  verify->add_option("--pubkey", o.pubkey,
                     "checkpoint public key PEM (default: checkpoint.pub beside the database)");
}

}  // namespace hwl::cli
