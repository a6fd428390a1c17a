// coffer replica fetch SOURCE IMAGE_OUT: disaster recovery from C (docs/disaster-recovery.md).
#include <fmt/format.h>
#include <charconv>
#include <ctime>

#include "coffer/replicate/fetch.hpp"
#include "coffer/replicate/manifest.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "coffer/vault/vault.hpp"
#include "context.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {
namespace {

namespace rep = coffer::replicate;

// "2026-05-01", "2026-05-01T03:00[:00][Z]" or "2026-05-01 03:00:00" (UTC), or a duration back
// from now: "36h", "2d", "1w", "90m", "600s".
std::int64_t parse_not_older_than(const std::string& text, std::int64_t now) {
  auto bad = [&]() -> std::int64_t {
    fail(ErrorKind::usage, "parse --not-older-than", text,
         "expected a UTC date (2026-05-01, 2026-05-01T03:00:00Z) or a duration (36h, 2d, 1w, 90m)");
  };
  if (text.empty()) return bad();
  if (text.find('-') == std::string::npos) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || p == text.data() || p + 1 != text.data() + text.size()) return bad();
    std::uint64_t unit = 0;
    switch (*p) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = 7 * 86400;
        break;
      default:
        return bad();
    }
    if (n > (1ull << 40) / unit) return bad();
    return now - static_cast<std::int64_t>(n * unit);
  }
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, used = 0;
  std::string t = text;
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) t.pop_back();
  int fields = std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used);
  if (fields != 3) return bad();
  if (static_cast<std::size_t>(used) < t.size()) {
    int rest = 0;
    char sep = t[static_cast<std::size_t>(used)];
    if (sep != 'T' && sep != ' ') return bad();
    const char* tail = t.c_str() + used + 1;
    int n = std::sscanf(tail, "%2d:%2d%n:%2d%n", &h, &mi, &rest, &s, &rest);
    if (n < 2 || tail[rest] != '\0') return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return bad();
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(::timegm(&tm));
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
      // Asked for before connecting, so a prompt never waits in the middle of a download.
      config::Credentials creds = secrets->load(ctx, a->out.native());
      std::filesystem::path runtime = ctx.runtime_dir();
      o.unlock = [&creds, runtime](const std::filesystem::path& partial) {
        vault::Location where{partial, runtime};
        rep::UnlockedHeader u{vault::volume_key(where, creds), vault::status(where).uuid};
        return u;
      };
      rep::FetchResult r;
      try {
        rep::fetch(o, r);
      } catch (const Error& e) {
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
      return int{kOk};
    };
  });
}

}  // namespace coffer::cli
