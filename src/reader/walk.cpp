// Walking a directory inside the image's file system (coffer image ls).
#include <sys/stat.h>

#include "coffer/reader/walk.hpp"

namespace coffer::reader {

void walk(const FileSystem& fs, const std::string& path, bool recursive,
          const std::function<void(const std::string&, const Stat&)>& visit) {
  Stat top = fs.stat(fs.lookup(path));
  if (!S_ISDIR(top.mode)) {
    visit("", top);
    return;
  }
  std::function<void(std::uint32_t, const std::string&)> go = [&](std::uint32_t dir,
                                                                  const std::string& rel) {
    for (const auto& e : fs.list(dir)) {
      std::string child = rel.empty() ? e.name : rel + "/" + e.name;
      Stat st = fs.stat(e.ino);
      visit(child, st);
      if (recursive && S_ISDIR(st.mode)) go(e.ino, child);
    }
  };
  go(top.ino, "");
}

}  // namespace coffer::reader
