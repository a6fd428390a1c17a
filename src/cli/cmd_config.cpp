// coffer config check
#include <fmt/format.h>

#include "coffer/config/config.hpp"
#include "context.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {

void register_config_commands(CLI::App& app, Context& ctx) {
  auto* config_cmd = app.add_subcommand("config", "Work with the configuration file");
  config_cmd->require_subcommand(1);
  auto* check =
      config_cmd->add_subcommand("check", "Validate the config; errors name line and key");
  check->callback([&ctx] {
    ctx.action = [&ctx] {
      std::filesystem::path path = config::default_config_path(ctx.global.config_path);
      config::ParseResult r = config::load_config(path);
      for (const auto& d : r.diagnostics) {
        std::fprintf(stderr, "%s\n", config::format_diagnostic(path, d).c_str());
        ctx.emit_json({{"type", "config_error"},
                       {"path", path.native()},
                       {"line", d.line},
                       {"column", d.column},
                       {"key", d.key},
                       {"message", d.message}});
      }
      if (!r.diagnostics.empty()) return int{kUsage};
      ctx.say(fmt::format("{}: ok ({} sources, {} targets)", path.native(), r.config.sources.size(),
                          r.config.targets.size()));
      ctx.emit_json({{"type", "config_ok"}, {"path", path.native()}});
      return int{kOk};
    };
  });
}

}  // namespace coffer::cli
