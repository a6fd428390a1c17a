// coffer agent: the far end of `coffer backup`, started over SSH or a local pipe. Its argv is
// fixed by whoever starts it (an authorized_keys forced command may add restrictions); what to
// do comes from the client's HELLO message (docs/formats/protocol.md).
#include "coffer/transfer/backup.hpp"
#include "coffer/util/log.hpp"
#include "context.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {

void register_agent_commands(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<transfer::AgentOptions>();
  auto allow = std::make_shared<std::vector<std::string>>();
  auto* cmd =
      app.add_subcommand("agent", "Serve one backup over stdin/stdout (run by coffer backup)");
  cmd->add_flag("--send-only", opts->send_only,
                "Refuse to receive (for a forced command on a source)");
  cmd->add_flag("--receive-only", opts->receive_only, "Refuse to send (for a forced command on B)");
  cmd->add_option("--allow", *allow, "Only source roots or repositories below PATH (repeatable)");
  cmd->callback([&ctx, opts, allow] {
    ctx.action = [opts, allow]() -> int {
      for (const auto& a : *allow) opts->allow.emplace_back(a);
      // Source-side warnings travel to the client, which reports them; not twice.
      auto warn = [](std::string_view path, std::string_view message) {
        log::debug("{}: {}", path, message);
      };
      transfer::AgentOutcome out = transfer::run_agent(0, 1, *opts, warn);
      if (out.failed) {
        log::debug("{}", out.message);  // the client has it and prints it: once
        return exit_code_for(*out.failed);
      }
      return out.warnings > 0 ? int{kWarnings} : int{kOk};
    };
  });
}

}  // namespace coffer::cli
