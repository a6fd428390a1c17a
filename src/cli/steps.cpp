#include "steps.hpp"

#include <fmt/format.h>
#include <cerrno>

#include "coffer/replicate/manifest.hpp"
#include "coffer/snapshot/catalog.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"

namespace coffer::cli {

namespace rep = coffer::replicate;

transfer::BackupRequest backup_request(const config::Source& source,
                                       const std::filesystem::path& repo) {
  transfer::BackupRequest req;
  req.source = source.path;
  req.repo = repo.native();
  req.name = source.name;
  for (const auto& pattern : source.exclude) req.filter_rules.push_back("- " + pattern);
  if (source.exclude_from)
    for (auto& rule : transfer::read_filter_file(*source.exclude_from))
      req.filter_rules.push_back(std::move(rule));
  req.one_file_system = source.one_file_system;
  if (!source.remote_command.empty()) req.remote_command = source.remote_command;
  return req;
}

namespace {

// What `backup -n` found: a real run would transfer the new and changed files, copy the
// metadata-only ones on B and link the rest.
void report_dry_run(const Context& ctx, const transfer::BackupRequest& req,
                    const transfer::BackupResult& r) {
  ctx.summary(fmt::format(
      "dry run: nothing written; a snapshot of {} as hosts/{} would have {} entries ({})",
      req.source, r.host, r.entries, format_size(r.bytes_total)));
  ctx.summary(
      fmt::format("  new files:       {} ({}), sent whole", r.new_files, format_size(r.new_bytes)));
  ctx.summary(fmt::format("  changed files:   {} ({}), sent as deltas or whole", r.changed_files,
                          format_size(r.changed_bytes)));
  ctx.summary(fmt::format("  metadata only:   {} ({}), copied on B", r.metadata_files,
                          format_size(r.metadata_bytes)));
  ctx.summary(fmt::format("  unchanged files: {} ({}), hard-linked", r.unchanged_files,
                          format_size(r.unchanged_bytes)));
  if (r.warnings > 0) ctx.summary(fmt::format("{} warnings (see above)", r.warnings));
  ctx.emit_json({{"type", "backup_dry_run"},
                 {"host", r.host},
                 {"entries", r.entries},
                 {"bytes_total", r.bytes_total},
                 {"new_files", r.new_files},
                 {"new_bytes", r.new_bytes},
                 {"changed_files", r.changed_files},
                 {"changed_bytes", r.changed_bytes},
                 {"metadata_files", r.metadata_files},
                 {"metadata_bytes", r.metadata_bytes},
                 {"unchanged_files", r.unchanged_files},
                 {"unchanged_bytes", r.unchanged_bytes},
                 {"warnings", r.warnings}});
}

}  // namespace

transfer::BackupResult run_reported_backup(Context& ctx, const transfer::BackupRequest& req) {
  auto warn = [&ctx](std::string_view path, std::string_view message) {
    log::warn("{}: {}", path.empty() ? "." : snapshot::escape_path(path), message);
    ctx.emit_json(
        {{"type", "warning"}, {"path", snapshot::escape_path(path)}, {"message", message}});
  };
  transfer::BackupResult r = transfer::run_backup(req, warn);
  if (r.dry_run) {
    report_dry_run(ctx, req, r);
    return r;
  }
  ctx.summary(
      fmt::format("snapshot hosts/{}/{} complete: {} entries ({}), {} linked, {} copied on B, "
                  "{} deltas, {} sent whole, {} resumed",
                  r.host, r.snapshot, r.entries, format_size(r.bytes_total), r.linked, r.copied,
                  r.delta_files, r.data_files, r.resumed));
  ctx.summary(fmt::format("protocol bytes: {} to the receiver, {} to the sender",
                          r.bytes_to_receiver, r.bytes_to_sender));
  if (r.warnings > 0) ctx.summary(fmt::format("{} warnings (see above)", r.warnings));
  ctx.emit_json({{"type", "backup"},
                 {"host", r.host},
                 {"snapshot", r.snapshot},
                 {"entries", r.entries},
                 {"linked", r.linked},
                 {"resumed", r.resumed},
                 {"copied", r.copied},
                 {"delta_files", r.delta_files},
                 {"data_files", r.data_files},
                 {"bytes_total", r.bytes_total},
                 {"bytes_to_receiver", r.bytes_to_receiver},
                 {"bytes_to_sender", r.bytes_to_sender},
                 {"warnings", r.warnings}});
  return r;
}

rep::VaultFacts vault_facts(const vault::Location& where) {
  vault::Status s = vault::status(where);
  if (!s.exists) throw_errno("open vault", where.image, ENOENT, ErrorKind::missing);
  return {where.image, s.uuid, s.mapped, s.mounted_at};
}

rep::ReplicateResult run_reported_replication(Context& ctx, const vault::Location& where,
                                              const rep::ReplicateOptions& o) {
  rep::ReplicateResult r = rep::replicate(o);
  ctx.summary(
      fmt::format("replicated {} to {}: generation {} ({} of {} blocks of {} changed, {} of data)",
                  where.image.native(), r.dest, r.generation, r.blocks_changed, r.blocks,
                  format_size(r.block_size), format_size(r.bytes_changed)));
  if (r.records_resumed)
    ctx.summary(fmt::format("resumed an interrupted upload: {} already on C",
                            format_size(r.bytes_resumed)));
  ctx.summary(fmt::format("sent {} ({} bytes), received {}, in {:.2f} s", format_size(r.bytes_sent),
                          r.bytes_sent, format_size(r.bytes_received), r.seconds));
  ctx.emit_json(
      {{"type", "replicated"},
       {"image", where.image.native()},
       {"target", r.target},
       {"dest", r.dest},
       {"base_generation", r.base_generation},
       {"generation", r.generation},
       {"time", r.time},
       {"image_size", r.image_size},
       {"block_size", r.block_size},
       {"blocks", r.blocks},
       {"blocks_changed", r.blocks_changed},
       {"bytes_changed", r.bytes_changed},
       {"bytes_zeroed", r.bytes_zeroed},
       {"records_resumed", r.records_resumed},
       {"bytes_resumed", r.bytes_resumed},
       {"bytes_sent", r.bytes_sent},
       {"bytes_received", r.bytes_received},
       {"full_compare", r.full_compare},
       {"recovered_generation",
        r.recovered_generation ? nlohmann::json(*r.recovered_generation) : nlohmann::json()},
       {"seconds", r.seconds}});
  return r;
}

void report_verify(Context& ctx, const rep::VerifyReport& r) {
  auto when = [](std::int64_t t) { return t ? rep::format_time(t) : std::string("never"); };
  nlohmann::json bad = nlohmann::json::array();
  for (const auto& b : r.bad_blocks)
    bad.push_back({{"offset", b.offset}, {"length", b.length}, {"reason", b.reason}});
  ctx.emit_json({{"type", "replica_verify"},
                 {"target", r.target},
                 {"dest", r.dest},
                 {"generation", r.generation},
                 {"time", r.time},
                 {"ok", r.ok()},
                 {"blocks_checked", r.blocks_checked},
                 {"blocks_challenged", r.blocks_challenged},
                 {"problems", r.problems},
                 {"bad_blocks", bad}});
  for (const auto& p : r.problems) log::warn("{}", p);
  constexpr std::size_t kShown = 200;
  for (std::size_t i = 0; i < r.bad_blocks.size() && i < kShown; ++i) {
    const auto& b = r.bad_blocks[i];
    log::warn("bad block at offset {} ({} bytes): {}", b.offset, b.length, b.reason);
  }
  if (r.bad_blocks.size() > kShown)
    log::warn("... and {} more bad blocks (--json lists them all)", r.bad_blocks.size() - kShown);
  if (!r.ok())
    fail(ErrorKind::integrity, "verify replica at", r.dest,
         fmt::format("{} problem(s), {} bad block(s) against generation {} of {}",
                     r.problems.size(), r.bad_blocks.size(), r.generation, when(r.time)));
  ctx.summary(
      fmt::format("{}: generation {} of {} verified, {} blocks match ({} also proven held "
                  "with a fresh challenge)",
                  r.dest, r.generation, when(r.time), r.blocks_checked, r.blocks_challenged));
}

}  // namespace coffer::cli
