#include "link_groups.hpp"

#include <sys/stat.h>
#include <cerrno>
#include <string>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::transfer {

bool LinkGroups::link(TreeWriter& tw, const std::vector<FileEntry>& entries, std::uint32_t leader,
                      std::uint32_t id) {
  auto it = groups_.try_emplace(leader, Group{leader, {leader}}).first;
  Group& g = it->second;
  const FileEntry& target = entries[g.target];
  int err = tw.link_within(target, entries[id]);
  if (err == 0) {
    g.members.push_back(id);
    return false;
  }
  if (err != EMLINK) throw_errno("link", tw.shown(entries[id].path), err);
  // The inode is full. Its links are ours alone when its count is what this tree linked:
  // then the group outgrew B's limit and the remaining names need another inode (a split
  // the file system forces). Otherwise older snapshots hold most of them: the whole group
  // moves to a fresh copy.
  int fd = open_in(tw.dir(target.parent()).tree.get(), target);
  if (fd < 0) throw_errno("open", tw.shown(target.path), -fd);
  UniqueFd src(fd);
  struct stat st;
  if (::fstat(src.get(), &st) != 0) throw_errno("stat", tw.shown(target.path), errno);
  bool ours = st.st_nlink <= g.members.size();
  tw.copy_into(src.get(), entries[id], id);
  std::vector<std::uint32_t> members{id};
  if (!ours) {
    for (auto m : g.members) {
      if (int e = tw.replace_with_link(entries[id], entries[m]); e != 0)
        throw_errno("link", tw.shown(entries[m].path), e);
      members.push_back(m);
    }
  }
  g.target = id;
  g.members = std::move(members);
  return true;
}

}  // namespace coffer::transfer
