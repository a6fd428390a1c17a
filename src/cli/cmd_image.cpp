// coffer image ls|restore IMAGE SNAPSHOT[:PATH] ...: a closed vault image read in user space
// (no dm-crypt, no mount, no root; docs/reader.md).
#include <fmt/format.h>
#include <sys/stat.h>

#include <ctime>
#include <memory>

#include "coffer/reader/fs.hpp"
#include "coffer/reader/walk.hpp"
#include "coffer/restore/restore.hpp"
#include "coffer/restore/source.hpp"
#include "coffer/snapshot/catalog.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "sources.hpp"

namespace coffer::cli {
namespace {

struct ImageArgs {
  std::filesystem::path image;
  std::string snapshot, name;
  SecretOptions secrets;

  void add_to(CLI::App& cmd) {
    cmd.add_option("IMAGE", image, "Closed vault image file")->required();
    cmd.add_option("SNAPSHOT", snapshot,
                   "latest, a snapshot time, NAME/latest or NAME/TIME; :PATH for a path in it")
        ->required();
    cmd.add_option("--name", name, "The source (hosts/NAME) when the image holds several");
    secrets.add_to(cmd);
  }

  // Opens the image and its file system; returns the snapshot path to work on.
  std::string open(Context& ctx, std::shared_ptr<const reader::FileSystem>& fs) {
    config::Credentials creds = secrets.load(ctx, image.native());
    fs = std::make_shared<const reader::FileSystem>(std::make_shared<reader::Image>(image, creds));
    auto [spec, path] = restore::split_snapshot_arg(snapshot);
    snapshot::SnapshotInfo snap =
        restore::resolve_snapshot(*restore::image_source(fs, image.native()), spec, name);
    std::string rel = restore::normalize_snapshot_path(path);
    std::string full = snap.tree().native();
    if (!rel.empty()) full += "/" + rel;
    if (!fs->exists(full))
      fail(ErrorKind::missing, "find", snap.host + "/" + snap.name + ":" + path,
           "no such path in the snapshot");
    return full;
  }
};

std::string mode_string(mode_t m) {
  char type = S_ISDIR(m)    ? 'd'
              : S_ISLNK(m)  ? 'l'
              : S_ISCHR(m)  ? 'c'
              : S_ISBLK(m)  ? 'b'
              : S_ISFIFO(m) ? 'p'
              : S_ISSOCK(m) ? 's'
                            : '-';
  std::string s(1, type);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (m & (0400 >> i)) ? rwx[i] : '-';
  if (m & S_ISUID) s[3] = (m & S_IXUSR) ? 's' : 'S';
  if (m & S_ISGID) s[6] = (m & S_IXGRP) ? 's' : 'S';
  if (m & S_ISVTX) s[9] = (m & S_IXOTH) ? 't' : 'T';
  return s;
}

std::string time_string(const timespec& t) {
  std::tm tm{};
  gmtime_r(&t.tv_sec, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

void add_ls(CLI::App& parent, Context& ctx) {
  auto* cmd = parent.add_subcommand("ls", "List a snapshot's entries inside a closed vault image");
  auto args = std::make_shared<ImageArgs>();
  auto lng = std::make_shared<bool>(false);
  auto rec = std::make_shared<bool>(false);
  args->add_to(*cmd);
  cmd->add_flag("-l,--long", *lng, "Mode, owner, size and modification time (UTC)");
  cmd->add_flag("-R,--recursive", *rec, "List everything below PATH");
  cmd->callback([&ctx, args, lng, rec] {
    ctx.action = [&ctx, args, lng, rec] {
      std::shared_ptr<const reader::FileSystem> fs;
      std::string path = args->open(ctx, fs);
      reader::walk(*fs, path, *rec, [&](const std::string& rel, const reader::Stat& st) {
        std::string name = snapshot::escape_path(
            rel.empty() ? std::filesystem::path(path).filename().native() : rel);
        if (S_ISDIR(st.mode)) name += "/";
        if (S_ISLNK(st.mode)) name += " -> " + snapshot::escape_path(fs->readlink(st.ino));
        if (*lng)
          ctx.say(fmt::format("{} {:>3} {:>5} {:>5} {:>12} {} {}", mode_string(st.mode), st.nlink,
                              st.uid, st.gid, st.size, time_string(st.mtime), name));
        else
          ctx.say(name);
        ctx.emit_json({{"type", "entry"},
                       {"path", rel},
                       {"mode", st.mode},
                       {"uid", st.uid},
                       {"gid", st.gid},
                       {"size", st.size},
                       {"nlink", st.nlink},
                       {"mtime", st.mtime.tv_sec},
                       {"mtime_ns", st.mtime.tv_nsec}});
      });
      return static_cast<int>(kOk);
    };
  });
}

}  // namespace

void register_image_commands(CLI::App& app, Context& ctx) {
  auto* image = app.add_subcommand("image", "Read a closed vault image without dm-crypt or root");
  image->require_subcommand(1);
  add_ls(*image, ctx);
  // The same command as `coffer restore` (which takes an image as REPO too): one restorer.
  add_restore_command(*image, ctx, "Restore from a closed vault image into TARGET");
}

}  // namespace coffer::cli
