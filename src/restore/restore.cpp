// run_restore() and --delete: what TARGET has and the restored set does not.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/error.hpp"
#include "restorer.hpp"

namespace coffer::restore {

void Restorer::delete_extra() {
  for (std::size_t i = 0; i < plan_.entries.size(); ++i) {
    const PlanEntry& p = plan_.entries[i];
    if (p.entry->type != snapshot::EntryType::directory) continue;
    if (!target_root_ || new_dirs_.count(p.rel)) continue;  // nothing else can be in it
    int fd = tdirs_->get(p.rel);
    if (fd < 0) continue;
    int dup_fd = ::dup(fd);
    DIR* d = dup_fd < 0 ? nullptr : ::fdopendir(dup_fd);
    if (!d) throw_errno("read directory", shown(p.rel), errno);
    std::vector<std::pair<std::string, bool>> extra;
    while (dirent* de = ::readdir(d)) {
      std::string name = de->d_name;
      if (name == "." || name == "..") continue;
      if (p.rel.empty() && name == staging_name_) continue;
      std::string rel = p.rel.empty() ? name : p.rel + "/" + name;
      if (plan_.rels.count(rel)) continue;
      struct stat st;
      bool is_dir =
          ::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
      // As rsync's --delete: what the filter excludes is not ours to remove.
      if (filter_.excluded(plan_.prefix + rel, is_dir)) continue;
      extra.emplace_back(std::move(name), is_dir);
    }
    ::closedir(d);
    for (const auto& [name, is_dir] : extra) {
      std::string rel = p.rel.empty() ? name : p.rel + "/" + name;
      if (!req_.dry_run) {
        if (int err = remove_beneath(fd, name)) throw_errno("remove", shown(rel), err);
        if (is_dir) tdirs_->forget(rel);
      }
      ++res_.deleted;
      if (cb_.on_action) cb_.on_action(Action::deleted, rel);
    }
  }
}

RestoreResult run_restore(const RestoreRequest& request, const RestoreCallbacks& callbacks) {
  Restorer r(request, callbacks);
  return r.run();
}

}  // namespace coffer::restore
