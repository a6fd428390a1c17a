#include "image_restore.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <memory>

#include "coffer/reader/fs.hpp"
#include "coffer/restore/restore.hpp"
#include "coffer/restore/source.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {

int restore_from_image(Context& ctx, const std::filesystem::path& image,
                       const config::Credentials& creds, const std::string& snapshot,
                       const std::string& name, const std::filesystem::path& target) {
  auto fs =
      std::make_shared<const reader::FileSystem>(std::make_shared<reader::Image>(image, creds));
  restore::RestoreRequest req;
  req.repo = image;
  req.source = restore::image_source(fs, image.native());
  auto [spec, path] = restore::split_snapshot_arg(snapshot);
  req.snapshot = spec;
  req.path = path;
  req.name = name;
  req.target = target;
  restore::RestoreCallbacks cb;
  cb.on_warning = [](std::string_view rel, std::string_view message) {
    log::warn("{}: {}", rel, message);
  };
  restore::RestoreResult r = restore::run_restore(req, cb);
  if (r.chown_skipped > 0)
    log::warn("not running as root: the owners of {} entries were not restored", r.chown_skipped);
  ctx.say(fmt::format("restored hosts/{}/{}{}{} into {}: {} entries, {} written", r.host,
                      r.snapshot, path.empty() ? "" : ":", path, target.native(), r.entries,
                      format_size(r.bytes)));
  ctx.emit_json({{"type", "restored"},
                 {"target", target.native()},
                 {"host", r.host},
                 {"snapshot", r.snapshot},
                 {"entries", r.entries},
                 {"restored", r.restored},
                 {"bytes", r.bytes},
                 {"warnings", r.warnings}});
  return static_cast<int>(r.warnings ? kWarnings : kOk);
}

}  // namespace coffer::cli
