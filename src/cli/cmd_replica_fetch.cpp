// coffer replica fetch SOURCE IMAGE_OUT: disaster recovery from C (docs/disaster-recovery.md).
#include <fmt/format.h>
#include <ctime>
#include <optional>

#include "coffer/replicate/fetch.hpp"
#include "coffer/replicate/manifest.hpp"
#include "coffer/snapshot/retention.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "coffer/vault/vault.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "image_restore.hpp"
#include "progress.hpp"

namespace coffer::cli {
namespace {

namespace rep = coffer::replicate;

// A UTC date (util's parse_utc_date), or a calendar duration back from now as [retention]
// within takes it ("36h", "2d", "1m" = one month; util's parse_calendar_duration).
std::int64_t parse_not_older_than(const std::string& text, std::int64_t now) {
  if (text.find('-') != std::string::npos) return parse_utc_date(text, "--not-older-than");
  return snapshot::within_cutoff(static_cast<std::time_t>(now),
                                 parse_calendar_duration(text, "--not-older-than"));
}

nlohmann::json report_json(const rep::FetchResult& r, bool ok) {
  nlohmann::json bad = nlohmann::json::array();
  for (const auto& b : r.bad_blocks)
    bad.push_back({{"offset", b.offset}, {"length", b.length}, {"reason", b.reason}});
  return {{"type", ok ? "fetched" : "fetch_failed"},
          {"source", r.source},
          {"out", r.out.native()},
          {"verified", r.verified},
          {"generation", r.generation},
          {"time", r.time},
          {"image_size", r.image_size},
          {"uuid", r.uuid},
          {"blocks", r.blocks},
          {"blocks_kept", r.blocks_kept},
          {"bytes_kept", r.bytes_kept},
          {"blocks_fetched", r.blocks_fetched},
          {"bytes_fetched", r.bytes_fetched},
          {"bytes_received", r.bytes_received},
          {"resumed", r.resumed},
          {"b_record", r.b_record},
          {"bad_blocks", bad},
          {"seconds", r.seconds}};
}

}  // namespace

void add_replica_fetch(CLI::App& replica, Context& ctx) {
  auto* cmd = replica.add_subcommand(
      "fetch",
      "Download a replica from C into a new image, verifying every block (disaster recovery)");
  struct Args {
    std::string source;
    std::filesystem::path out;
    std::optional<std::uint64_t> expect_generation;
    std::string not_older_than, expect_uuid, rate, remote_command;
    std::optional<std::filesystem::path> ssh_config, ssh_identity;
    std::optional<int> ssh_port;
    unsigned threads = 0;
    std::vector<std::string> restore;  // SNAPSHOT[:PATH] TARGET
    std::string name;
  };
  auto a = std::make_shared<Args>();
  auto secrets = std::make_shared<SecretOptions>();
  cmd->add_option("SOURCE", a->source, "The replica: DIR or [user@]host:DIR")->required();
  cmd->add_option("IMAGE_OUT", a->out, "The image to create (must not exist)")->required();
  secrets->add_to(*cmd);
  cmd->add_option("--expect-generation", a->expect_generation,
                  "Refuse a replica older than this generation");
  cmd->add_option(
      "--not-older-than", a->not_older_than,
      "Refuse a replica committed before this UTC date or longer ago than this duration (36h, 2d)");
  cmd->add_option("--expect-uuid", a->expect_uuid,
                  "Refuse a replica of any other vault (LUKS UUID)");
  cmd->add_option("--limit-rate", a->rate, "Download at most this many bytes per second, e.g. 10M");
  cmd->add_option("--remote-command", a->remote_command,
                  "Program that starts coffer on C (default: coffer)");
  cmd->add_option("--ssh-config", a->ssh_config, "SSH client config instead of ~/.ssh/config");
  cmd->add_option("--ssh-identity", a->ssh_identity, "SSH identity file to try first");
  cmd->add_option("--ssh-port", a->ssh_port, "SSH port (wins over the config's)");
  cmd->add_option("--threads", a->threads, "Hashing threads (default: every core)");
  cmd->add_option("--restore", a->restore,
                  "Then restore SNAPSHOT[:PATH] of the fetched image into the new TARGET (as "
                  "`coffer image restore`: no dm-crypt, no mount)")
      ->expected(2)
      ->type_name("SNAPSHOT[:PATH] TARGET");
  cmd->add_option("--name", a->name,
                  "With --restore: the source (hosts/NAME) when the image holds several");
  cmd->callback([&ctx, a, secrets] {
    ctx.action = [&ctx, a, secrets] {
      rep::FetchOptions o;
      o.source = a->source;
      o.out = a->out;
      o.remote_command = a->remote_command;
      o.ssh.config_file = a->ssh_config;
      o.ssh.identity = a->ssh_identity;
      o.ssh.port = a->ssh_port;
      o.threads = a->threads;
      o.expect_generation = a->expect_generation;
      if (!a->not_older_than.empty())
        o.not_older_than =
            parse_not_older_than(a->not_older_than, static_cast<std::int64_t>(std::time(nullptr)));
      if (!a->expect_uuid.empty())
        o.expect_uuid = rep::format_uuid(rep::parse_uuid(a->expect_uuid));
      o.limit_rate = a->rate.empty() ? 0 : parse_size(a->rate, "--limit-rate");
      // A TARGET that cannot be restored into is refused before anything is downloaded.
      if (!a->restore.empty()) {
        std::error_code ec;
        if (std::filesystem::exists(std::filesystem::symlink_status(a->restore[1], ec)))
          fail(ErrorKind::usage, "restore into", a->restore[1], "it exists; TARGET must be new");
      }
      // Asked for before connecting, so a prompt never waits in the middle of a download.
      config::Credentials creds = secrets->load(ctx, a->out.native());
      std::filesystem::path runtime = ctx.runtime_dir();
      o.unlock = [&creds, runtime, source = a->source](const std::filesystem::path& partial) {
        vault::Location where{partial, runtime};
        std::string uuid = vault::status(where).uuid;
        try {
          return rep::UnlockedHeader{vault::volume_key(where, creds), uuid};
        } catch (const Error& e) {
          // Name the replica, not the hidden partial file the header was written to, and the
          // vault it claims to be: with nothing else known (no --expect-uuid, no record of B),
          // a wrong key and another vault's replica look the same (fetch_expect.hpp).
          if (e.kind() != ErrorKind::bad_key) throw;
          throw Error(e.kind(), "unlock the header of the replica at", source,
                      fmt::format("{} in the header of vault {} (a wrong key, or, if that is not "
                                  "your vault's UUID, another vault's replica)",
                                  e.reason().empty() ? std::string(e.what()) : e.reason(), uuid),
                      {});
        }
      };
      o.header_areas = [runtime](const std::filesystem::path& partial) {
        return vault::unlock_areas(vault::Location{partial, runtime});
      };
      std::optional<Progress> progress(std::in_place, ctx, Progress::Unit::bytes);
      o.on_progress = [&progress](std::uint64_t done, std::uint64_t total) {
        progress->update(done, total, done);
      };
      rep::FetchResult r;
      try {
        rep::fetch(o, r);
        progress.reset();  // ends the progress line before the summary
      } catch (const Error& e) {
        progress.reset();
        ctx.emit_json(report_json(r, false));
        for (const auto& b : r.bad_blocks)
          log::warn("bad block at offset {} ({} bytes): {}", b.offset, b.length, b.reason);
        if (!r.bad_blocks.empty() || e.kind() == ErrorKind::integrity)
          log::warn("nothing was written to {}", a->out.native());
        throw;
      }
      ctx.emit_json(report_json(r, true));
      ctx.say(fmt::format("fetched generation {} of {} from {} into {}: {} ({} blocks) verified",
                          r.generation, rep::format_time(r.time), r.source, r.out.native(),
                          format_size(r.image_size), r.blocks));
      if (r.resumed)
        ctx.say(fmt::format("resumed an interrupted fetch: {} kept after checking it again",
                            format_size(r.bytes_kept)));
      ctx.say(fmt::format("downloaded {} of data ({} received) in {:.2f} s",
                          format_size(r.bytes_fetched), format_size(r.bytes_received), r.seconds));
      if (a->restore.empty()) return int{kOk};
      return restore_from_image(ctx, a->out, creds, a->restore[0], a->name, a->restore[1]);
    };
  });
}

}  // namespace coffer::cli
