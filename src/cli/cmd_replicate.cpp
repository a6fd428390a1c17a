// coffer replicate IMAGE DEST | replica-serve DIR | replica status IMAGE DEST | replica verify
// IMAGE DEST
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <chrono>
#include <future>
#include <optional>

#include "coffer/replicate/manifest.hpp"
#include "coffer/replicate/replicate.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/lock.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "coffer/vault/vault.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "steps.hpp"

namespace coffer::cli {
namespace {

namespace rep = coffer::replicate;

// IMAGE DEST plus the options that say how to reach DEST.
struct TargetArgs {
  std::filesystem::path image;
  std::string dest;
  std::string block_size;
  std::string remote_command;
  std::optional<std::filesystem::path> ssh_config, ssh_identity;
  std::optional<int> ssh_port;
  unsigned threads = 0;

  void add_to(CLI::App& cmd, bool with_block_size) {
    cmd.add_option("IMAGE", image, "Vault image file")->required();
    cmd.add_option("DEST", dest,
                   "Replica: DIR, [user@]host:DIR, or a [[target]] name from the config")
        ->required();
    if (with_block_size)
      cmd.add_option(
          "--block-size", block_size,
          "Change-detection block, a power of two from 4K to 64M (default 64K or the target's)");
    cmd.add_option("--remote-command", remote_command,
                   "Program that starts coffer on C (default: coffer; locally: this binary)");
    cmd.add_option("--ssh-config", ssh_config, "SSH client config instead of ~/.ssh/config");
    cmd.add_option("--ssh-identity", ssh_identity, "SSH identity file to try first");
    cmd.add_option("--ssh-port", ssh_port, "SSH port (wins over the config's)");
    // Bounded: each thread holds 4 MiB buffers, and 50000 of them used to end in std::terminate.
    cmd.add_option("--threads", threads, "Hashing threads, 1 to 256 (default: every core)")
        ->check(CLI::Range(0u, rep::kMaxThreads));
  }

  rep::TargetSpec target(Context& ctx) const {
    const config::Config* cfg = ctx.config();
    std::optional<std::uint64_t> bs;
    if (!block_size.empty()) bs = parse_size(block_size, "--block-size");
    rep::TargetSpec t =
        rep::resolve_target(dest, cfg ? cfg->targets : std::vector<config::Target>{}, bs);
    if (!remote_command.empty()) t.remote_command = remote_command;
    t.ssh.config_file = ssh_config;
    t.ssh.identity = ssh_identity;
    t.ssh.port = ssh_port;
    return t;
  }

  vault::Location location(Context& ctx) const { return {image, ctx.runtime_dir()}; }
};

std::string when(std::int64_t t) {
  return t ? rep::format_time(t) : std::string("never");
}

void add_replicate(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("replicate",
                                 "Send the changed blocks of a closed vault to a replica on C");
  auto args = std::make_shared<TargetArgs>();
  auto secrets = std::make_shared<SecretOptions>();
  auto rate = std::make_shared<std::string>();
  auto reseed = std::make_shared<bool>(false);
  auto then_verify = std::make_shared<bool>(false);
  args->add_to(*cmd, true);
  secrets->add_to(*cmd);
  cmd->add_option("--limit-rate", *rate, "Upload at most this many bytes per second, e.g. 10M");
  cmd->add_flag("--reseed", *reseed, "C lost its replica: upload a new one instead of failing");
  cmd->add_flag("--verify", *then_verify,
                "Then have C hash its copy and compare (as `replica verify`)");
  cmd->callback([&ctx, args, secrets, rate, reseed, then_verify] {
    ctx.action = [&ctx, args, secrets, rate, reseed, then_verify] {
      rep::ReplicateOptions o;
      o.target = args->target(ctx);
      o.limit_rate = rate->empty() ? 0 : parse_size(*rate, "--limit-rate");
      o.threads = args->threads;
      o.reseed = *reseed;
      vault::Location where = args->location(ctx);
      if (ctx.global.dry_run) {
        o.vault = vault_facts(where);
        rep::ReplicateResult r = rep::preview(o);
        ctx.say(fmt::format(
            "would replicate {} to {} as generation {}: {} of {} blocks of {} changed, "
            "{} of data (if C holds generation {} as recorded)",
            where.image.native(), r.dest, r.generation, r.blocks_changed, r.blocks,
            format_size(r.block_size), format_size(r.bytes_changed), r.base_generation));
        ctx.emit_json({{"type", "replicate_preview"},
                       {"target", r.target},
                       {"dest", r.dest},
                       {"base_generation", r.base_generation},
                       {"blocks", r.blocks},
                       {"blocks_changed", r.blocks_changed},
                       {"bytes_changed", r.bytes_changed},
                       {"bytes_zeroed", r.bytes_zeroed},
                       {"full_compare", r.full_compare}});
        return int{kOk};
      }
      std::filesystem::create_directories(where.runtime_dir);
      // The vault lock keeps `vault open` away while the image is read.
      FileLock lock(where.lock_path());
      o.vault = vault_facts(where);
      rep::refuse_open_vault(o.vault);
      config::Credentials creds = secrets->load(ctx, where.image.native());
      // The key derivation (slow by design) runs while replicate() connects to C and uploads;
      // replicate() waits for it only to MAC the manifest, so a wrong key never commits.
      std::future<Secret> unlocking = std::async(
          std::launch::async, [&where, &creds] { return vault::volume_key(where, creds); });
      std::optional<Secret> key;
      o.unlock = [&]() -> const Secret& {
        if (!key) key = unlocking.get();
        return *key;
      };
      o.unlock_ready = [&] {
        return key || unlocking.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      };
      try {
        run_reported_replication(ctx, where, o);
      } catch (...) {
        if (unlocking.valid()) unlocking.wait();  // never leave the derivation running
        throw;
      }
      if (*then_verify)
        report_verify(ctx, rep::verify(o.vault, o.target, &o.unlock(), args->threads));
      return int{kOk};
    };
  });
}

void add_serve(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "replica-serve",
      "Serve one replica directory to `coffer replicate` over stdin/stdout (runs on C; usable as "
      "an authorized_keys forced command; never touches anything outside DIR)");
  auto dir = std::make_shared<std::filesystem::path>();
  cmd->add_option("DIR", *dir, "The replica directory")->required();
  cmd->callback([&ctx, dir] {
    ctx.action = [dir] {
      // A larger pipe from sshd lets it hand over whole megabytes instead of 64 KiB pieces
      // (OpenSSH compacts its channel buffer after every write). Not a pipe, or not allowed:
      // nothing lost.
      (void)::fcntl(STDIN_FILENO, F_SETPIPE_SZ, 1 << 20);
      FdStream io(STDIN_FILENO, STDOUT_FILENO, "B");
      try {
        rep::serve(std::filesystem::absolute(*dir), io);
      } catch (const Error& e) {
        // Already sent to B, which reports it; only -v shows it here.
        log::debug("{}", e.what());
        return exit_code_for(e.kind());
      }
      return int{kOk};
    };
  });
}

void add_status(CLI::App& replica, Context& ctx) {
  auto* cmd =
      replica.add_subcommand("status", "Show what B committed to a replica and what C holds");
  auto args = std::make_shared<TargetArgs>();
  args->add_to(*cmd, false);
  cmd->callback([&ctx, args] {
    ctx.action = [&ctx, args] {
      rep::TargetSpec t = args->target(ctx);
      rep::VaultFacts facts = vault_facts(args->location(ctx));
      rep::StatusReport r = rep::replica_status(facts, t);
      auto gen_json = [](const rep::GenerationInfo& g) {
        return nlohmann::json{
            {"generation", g.generation}, {"time", g.time}, {"image_size", g.image_size}};
      };
      nlohmann::json j = {
          {"type", "replica_status"},
          {"target", r.target},
          {"dest", r.dest},
          {"state_dir", r.state_dir.native()},
          {"recorded", r.recorded},
          {"b_record", gen_json(r.b_record)},
          {"block_size", r.block_size},
          {"blocks", r.blocks},
          {"last_result", r.last_result},
          {"last_run_time", r.last_run_time},
          {"last_bytes_sent", r.last_bytes_sent},
          {"last_verify", r.last_verify},
          {"replica_present", r.replica_present},
          {"c_manifest", r.c_manifest ? gen_json(*r.c_manifest) : nlohmann::json()},
          {"c_image_size", r.c_image_size ? nlohmann::json(*r.c_image_size) : nlohmann::json()},
          {"matches", r.matches},
          {"mismatch", r.mismatch},
          {"partial_bytes", r.partial_bytes},
          {"recovered_generation",
           r.recovered_generation ? nlohmann::json(*r.recovered_generation) : nlohmann::json()}};
      ctx.emit_json(j);
      ctx.say(fmt::format("target:       {} ({})", r.target, r.dest));
      ctx.say(fmt::format("state on B:   {}", r.state_dir.native()));
      if (r.recorded)
        ctx.say(fmt::format("B committed:  generation {} of {}, {}, {} blocks of {}",
                            r.b_record.generation, when(r.b_record.time),
                            format_size(r.b_record.image_size), r.blocks,
                            format_size(r.block_size)));
      else
        ctx.say("B committed:  nothing yet");
      if (!r.last_result.empty())
        ctx.say(fmt::format("last run:     {} at {}, sent {}", r.last_result, when(r.last_run_time),
                            format_size(r.last_bytes_sent)));
      if (!r.last_verify.empty()) ctx.say(fmt::format("last verify:  {}", r.last_verify));
      if (r.c_manifest)
        ctx.say(
            fmt::format("on C:         generation {} of {}, image {}", r.c_manifest->generation,
                        when(r.c_manifest->time),
                        r.c_image_size ? format_size(*r.c_image_size) : std::string("missing")));
      else
        ctx.say(r.replica_present ? "on C:         an empty replica" : "on C:         no replica");
      if (r.recovered_generation)
        ctx.say(fmt::format(
            "recovered:    C finished applying generation {} left by an interrupted run",
            *r.recovered_generation));
      if (r.partial_bytes)
        ctx.say(fmt::format("pending:      an interrupted upload ({}) the next run resumes",
                            format_size(r.partial_bytes)));
      if (!r.replica_present)
        fail(ErrorKind::missing, "replica status", r.dest,
             r.mismatch.empty() ? "there is no replica there" : r.mismatch);
      if (!r.mismatch.empty()) fail(ErrorKind::integrity, "replica status", r.dest, r.mismatch);
      ctx.say(r.recorded ? "C holds what B committed" : "B has no record of this replica");
      return int{kOk};
    };
  });
}

void add_verify(CLI::App& replica, Context& ctx) {
  auto* cmd = replica.add_subcommand(
      "verify", "Have C hash its copy and compare with B's record, without downloading it");
  auto args = std::make_shared<TargetArgs>();
  auto secrets = std::make_shared<SecretOptions>();
  args->add_to(*cmd, false);
  secrets->add_to(*cmd);
  cmd->callback([&ctx, args, secrets] {
    ctx.action = [&ctx, args, secrets] {
      rep::TargetSpec t = args->target(ctx);
      vault::Location where = args->location(ctx);
      // B's image lost but its record kept (IMAGE.coffer/): C is checked against the record
      // alone, which is what tells a rollback of C from the generation B last committed.
      std::error_code ec;
      if (!std::filesystem::exists(where.image, ec) &&
          std::filesystem::exists(rep::target_state_dir(where.image, t.name) / "state.json", ec)) {
        log::info("{} does not exist: checking {} against B's record of it alone",
                  where.image.native(), t.dest);
        report_verify(ctx, rep::verify(rep::VaultFacts{where.image, "", false, std::nullopt}, t,
                                       nullptr, args->threads));
        return int{kOk};
      }
      rep::VaultFacts facts = vault_facts(where);
      // The key is only needed when B has no record of the target; never prompt for it here.
      const config::Config* cfg = ctx.config();
      config::Credentials creds = config::load_credentials(
          config::resolve_secret_paths(secrets->paths, cfg ? &cfg->vault.secrets : nullptr));
      std::optional<Secret> key;
      if (creds.any()) key = vault::volume_key(where, creds);
      report_verify(ctx, rep::verify(facts, t, key ? &*key : nullptr, args->threads));
      return int{kOk};
    };
  });
}

}  // namespace

void add_replica_fetch(CLI::App& replica, Context& ctx);  // cmd_replica_fetch.cpp

void register_replicate_commands(CLI::App& app, Context& ctx) {
  add_replicate(app, ctx);
  add_serve(app, ctx);
  auto* replica = app.add_subcommand("replica", "Inspect and verify replicas on C");
  replica->require_subcommand(1);
  add_status(*replica, ctx);
  add_verify(*replica, ctx);
  add_replica_fetch(*replica, ctx);
}

}  // namespace coffer::cli
