// What every command sees: the global options, the output channel, and (lazily) the config.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "coffer/config/config.hpp"
#include "coffer/config/credentials.hpp"

namespace coffer::cli {

struct GlobalOptions {
  std::optional<std::filesystem::path> config_path;
  int verbose = 0;
  bool quiet = false;
  bool json = false;
  bool dry_run = false;
  std::optional<std::filesystem::path> runtime_dir;
};

class Context {
 public:
  GlobalOptions global;
  // Set by the chosen subcommand's callback; run after parsing. Returns the exit code.
  std::function<int()> action;

  // The config if one is in force: -c/COFFER_CONFIG must exist; the default path is optional.
  const config::Config* config();
  // The config, required (for `coffer run` and commands that take no explicit paths).
  const config::Config& require_config();
  std::filesystem::path runtime_dir();

  // Human output (stdout); suppressed by --json.
  void say(const std::string& line) const;
  // What a step did (backup, replication, dry-run counts): say() unless -q.
  void summary(const std::string& line) const;
  // Machine output: one JSON object per line on stdout, only with --json.
  void emit_json(const nlohmann::json& j) const;

 private:
  bool config_loaded_ = false;
  std::optional<config::Config> config_;
};

// Key options shared by every command that unlocks or creates a vault.
struct SecretOptions {
  config::SecretPaths paths;
  void add_to(CLI::App& cmd, bool for_new_key = false);
  // Resolves the precedence of config/credentials.hpp, then prompts on a terminal if nothing
  // was given. `confirm` asks twice (for a new passphrase).
  config::Credentials load(Context& ctx, const std::string& what, bool confirm = false) const;
};

// Reads a passphrase from the controlling terminal without echo; error if there is none.
Secret prompt_passphrase(const std::string& prompt, bool confirm);

void register_vault_commands(CLI::App& app, Context& ctx);
void register_config_commands(CLI::App& app, Context& ctx);
void register_backup_commands(CLI::App& app, Context& ctx);
void register_agent_commands(CLI::App& app, Context& ctx);
void register_snapshot_commands(CLI::App& app, Context& ctx);
void register_replicate_commands(CLI::App& app, Context& ctx);
void register_run_command(CLI::App& app, Context& ctx);
void register_restore_commands(CLI::App& app, Context& ctx);
void register_browse_commands(CLI::App& app, Context& ctx);
void register_forget_command(CLI::App& app, Context& ctx);
void register_image_commands(CLI::App& app, Context& ctx);
void register_check_command(CLI::App& app, Context& ctx);
void register_status_command(CLI::App& app, Context& ctx);
void register_init_command(CLI::App& app, Context& ctx);

}  // namespace coffer::cli
