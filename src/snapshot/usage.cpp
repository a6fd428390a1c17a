#include "coffer/snapshot/usage.hpp"

#include <sys/stat.h>
#include <set>
#include <utility>

#include "coffer/util/error.hpp"

namespace coffer::snapshot {
namespace fs = std::filesystem;

std::vector<std::uint64_t> added_bytes(const std::vector<SnapshotInfo>& snaps) {
  std::vector<std::uint64_t> out;
  std::set<std::pair<dev_t, ino_t>> prev;
  for (const auto& s : snaps) {
    std::set<std::pair<dev_t, ino_t>> cur;
    std::uint64_t added = 0;
    auto visit = [&](const fs::path& p) {
      struct stat st;
      if (::lstat(p.c_str(), &st) != 0) return;
      std::pair<dev_t, ino_t> id{st.st_dev, st.st_ino};
      // Hard links inside one snapshot count once; an inode of the previous one is shared.
      if (!cur.insert(id).second || prev.count(id)) return;
      added += static_cast<std::uint64_t>(st.st_blocks) * 512;
    };
    visit(s.tree());
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(s.tree(), ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      visit(it->path());
    if (ec) throw_errno("walk", s.tree(), ec.value());
    out.push_back(added);
    prev = std::move(cur);
  }
  return out;
}

}  // namespace coffer::snapshot
