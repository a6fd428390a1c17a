#include "app.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <cstdio>

#include "coffer/util/log.hpp"
#include "coffer/util/signals.hpp"
#include "context.hpp"
#include "exit_codes.hpp"

#ifndef COFFER_VERSION
#define COFFER_VERSION "unknown"
#endif

namespace coffer::cli {

log::Sink terminal_log_sink(const GlobalOptions& g) {
  return [json = g.json, verbose = g.verbose, quiet = g.quiet](log::Level level,
                                                               std::string_view msg) {
    if (level == log::Level::debug && verbose < 1) return;
    if (level == log::Level::info && quiet) return;
    if (json) {
      const char* name = level == log::Level::warning ? "warning"
                         : level == log::Level::info  ? "info"
                                                      : "debug";
      nlohmann::json j = {{"type", "log"}, {"level", name}, {"message", msg}};
      std::fputs((j.dump() + "\n").c_str(), stderr);
      return;
    }
    const char* prefix = level == log::Level::warning ? "coffer: warning: " : "coffer: ";
    std::fprintf(stderr, "%s%.*s\n", prefix, static_cast<int>(msg.size()), msg.data());
  };
}

namespace {

int report_error(const Context& ctx, const Error& e) {
  int code = exit_code_for(e.kind());
  if (ctx.global.json) {
    nlohmann::json j = {
        {"type", "error"},        {"kind", kind_name(e.kind())}, {"operation", e.operation()},
        {"subject", e.subject()}, {"message", e.what()},         {"exit_code", code}};
    std::fputs((j.dump() + "\n").c_str(), stdout);
  }
  std::fprintf(stderr, "coffer: error: %s\n", e.what());
  return code;
}

}  // namespace

int run(int argc, char** argv) {
  // No core files: a crash must not write passphrases or volume keys to disk. (Secrets are
  // also in MADV_DONTDUMP memory; this covers what libraries copied elsewhere.)
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  install_interrupt_handlers();
  Context ctx;
  CLI::App app{"coffer: encrypted, hard-linked, off-site-replicated backups", "coffer"};
  app.set_version_flag("--version", std::string("coffer ") + COFFER_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand: `coffer vault status X --json`
  auto& g = ctx.global;
  app.add_option("-c,--config", g.config_path,
                 "Config file (default $COFFER_CONFIG or /etc/coffer/coffer.toml)");
  app.add_flag("-v,--verbose", g.verbose, "More output (repeat for debug)");
  app.add_flag("-q,--quiet", g.quiet, "Only warnings and errors: no summaries");
  app.add_flag("--json", g.json, "Machine-readable output, one JSON object per line");
  app.add_flag("-n,--dry-run", g.dry_run, "Show what would be done, change nothing");
  app.add_option("--runtime-dir", g.runtime_dir,
                 "Lock, state and mount directory (default $COFFER_RUNTIME_DIR or /run/coffer)");

  register_vault_commands(app, ctx);
  register_config_commands(app, ctx);
  register_backup_commands(app, ctx);
  register_agent_commands(app, ctx);
  register_snapshot_commands(app, ctx);
  register_replicate_commands(app, ctx);
  register_run_command(app, ctx);
  register_restore_commands(app, ctx);
  register_browse_commands(app, ctx);
  register_forget_command(app, ctx);
  register_image_commands(app, ctx);
  register_check_command(app, ctx);
  register_status_command(app, ctx);
  register_init_command(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    // CLI11 would quote the stray words; one of them may be a secret typed by mistake
    // (`--passphrase hunter2`), so name only the option-like ones.
    std::string names;
    for (const auto& extra : app.remaining())
      if (!extra.empty() && extra[0] == '-') names += " " + extra.substr(0, extra.find('='));
    std::fprintf(stderr, "coffer: usage error: unexpected arguments%s%s (see 'coffer --help')\n",
                 names.empty() ? "" : ":", names.c_str());
    return kUsage;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "coffer: usage error: %s (see 'coffer --help')\n", e.what());
    return kUsage;
  } catch (const Error& e) {
    return report_error(ctx, e);
  }
  log::set_sink(terminal_log_sink(g));
  try {
    if (!ctx.action) return kUsage;
    return ctx.action();
  } catch (const Error& e) {
    return report_error(ctx, e);
  } catch (const std::exception& e) {
    // Anything not translated at a library boundary is still one line, never a crash.
    std::fprintf(stderr, "coffer: error: %s\n", e.what());
    return kError;
  }
}

}  // namespace coffer::cli
