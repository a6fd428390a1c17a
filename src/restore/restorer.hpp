// The restore engine: one pass over the plan in catalog order (a directory before its
// content), then --delete, then directory metadata deepest first, one syncfs, then --verify.
#pragma once

#include <sys/stat.h>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "coffer/restore/restore.hpp"
#include "coffer/restore/source.hpp"
#include "coffer/snapshot/catalog.hpp"
#include "coffer/transfer/filter.hpp"
#include "coffer/transfer/tree_ops.hpp"
#include "coffer/util/fd.hpp"
#include "dir_cache.hpp"
#include "plan.hpp"

namespace coffer::restore {

class Restorer {
 public:
  Restorer(const RestoreRequest& request, const RestoreCallbacks& callbacks);
  ~Restorer();
  Restorer(const Restorer&) = delete;
  RestoreResult run();

 private:
  void open_target();
  void process(std::size_t i);
  Action decide(const PlanEntry& p, bool exists, const struct stat& st, int parent_fd);
  bool same(const PlanEntry& p, const struct stat& st, int parent_fd);
  void write_entry(std::size_t i, bool exists, const struct stat& st, int parent_fd);
  // Creates entry i under a temporary name in the staging directory; false: not possible
  // (a device without privileges), already reported.
  bool build_in_staging(std::size_t i, const std::string& tmp);
  transfer::Xattrs snapshot_xattrs(const snapshot::CatalogEntry& e);
  void delete_extra();
  void finish_directories();
  void verify();
  void report(Action a, const PlanEntry& p);
  void warn(std::string_view rel, std::string_view message);
  std::filesystem::path shown(std::string_view rel) const;

  const RestoreRequest& req_;
  const RestoreCallbacks& cb_;
  snapshot::SnapshotInfo snap_;
  snapshot::Catalog catalog_;
  transfer::Filter filter_;
  Plan plan_;
  std::shared_ptr<TreeSource> src_;
  UniqueFd target_root_, staging_;
  std::optional<DirCache> tdirs_;
  transfer::MetadataApplier meta_;
  bool target_existed_ = false;
  std::string staging_name_;
  std::uint64_t tmp_counter_ = 0;
  std::unordered_set<std::string> new_dirs_;  // created by this run (or would be, dry-run)
  std::vector<ino_t> inodes_;                 // per plan entry: inode at its place
  std::vector<bool> placed_;                  // per plan entry: in place after this run
  std::vector<std::size_t> dirs_to_finish_;
  RestoreResult res_;
};

}  // namespace coffer::restore
