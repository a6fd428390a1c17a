#include "coffer/restore/browse.hpp"

#include "coffer/restore/source.hpp"

#include <map>

#include "coffer/transfer/filter.hpp"
#include "coffer/util/error.hpp"

namespace coffer::restore {

using snapshot::CatalogEntry;
using snapshot::EntryType;

std::vector<const CatalogEntry*> list_entries(const snapshot::Catalog& catalog,
                                              std::string_view path, bool recursive,
                                              const std::filesystem::path& shown) {
  std::vector<const CatalogEntry*> out;
  const CatalogEntry* top = catalog.find(path);
  if (!top)
    fail(ErrorKind::failed, "list", snapshot::escape_path(path),
         "no such path in the snapshot (" + shown.native() + ")");
  if (top->type != EntryType::directory) {
    out.push_back(top);
    return out;
  }
  std::string prefix = path.empty() ? std::string() : std::string(path) + "/";
  for (const auto& e : catalog.entries()) {
    if (e.path.size() <= prefix.size() || e.path.compare(0, prefix.size(), prefix) != 0) continue;
    if (!recursive && e.path.find('/', prefix.size()) != std::string::npos) continue;
    out.push_back(&e);
  }
  return out;
}

std::vector<FindHit> find_entries(const std::filesystem::path& repo, std::string_view pattern,
                                  std::string_view name) {
  if (!std::filesystem::is_directory(repo))
    fail(ErrorKind::missing, "open repository", repo.native(), "no such directory");
  return find_entries(*repository_source(repo), pattern, name);
}

std::vector<FindHit> find_entries(const TreeSource& source, std::string_view pattern,
                                  std::string_view name) {
  // One exclude rule: "excluded" is "matches", with the backup's pattern semantics.
  transfer::Filter filter;
  filter.add_exclude(pattern);
  std::vector<std::string> hosts =
      name.empty() ? source.hosts() : std::vector<std::string>{std::string(name)};
  std::vector<FindHit> hits;
  for (const auto& h : hosts) {
    for (const auto& s : source.complete(h)) {
      auto cat = source.catalog(s);
      for (const auto& e : cat.entries())
        if (filter.excluded(e.path, e.type == EntryType::directory)) hits.push_back({s, e});
    }
  }
  return hits;
}

const char* change_name(Change c) {
  switch (c) {
    case Change::added:
      return "added";
    case Change::removed:
      return "removed";
    case Change::content:
      return "content";
    case Change::metadata:
      return "metadata";
  }
  return "metadata";
}

namespace {

std::vector<std::string> differing(const CatalogEntry& a, const CatalogEntry& b, bool& content) {
  std::vector<std::string> f;
  content = false;
  if (a.type != b.type) {
    content = true;
    f.push_back("type");
    return f;
  }
  if (a.size != b.size) f.push_back("size");
  if (a.hash != b.hash) f.push_back("content");
  if (a.link_target != b.link_target) f.push_back("target");
  if (a.rdev != b.rdev) f.push_back("rdev");
  content = !f.empty();
  if (a.mode != b.mode) f.push_back("mode");
  if (a.uid != b.uid || a.gid != b.gid) f.push_back("owner");
  if (a.mtime_sec != b.mtime_sec || a.mtime_nsec != b.mtime_nsec) f.push_back("mtime");
  if (a.xattr_digest != b.xattr_digest) f.push_back("xattrs");
  if ((a.link_group != 0) != (b.link_group != 0)) f.push_back("links");
  return f;
}

}  // namespace

std::vector<DiffEntry> diff_catalogs(const snapshot::Catalog& before,
                                     const snapshot::Catalog& after) {
  // Both catalogs are in walk order; merge by path in byte order so the output is stable.
  std::map<std::string_view, std::pair<const CatalogEntry*, const CatalogEntry*>> all;
  for (const auto& e : before.entries()) all[e.path].first = &e;
  for (const auto& e : after.entries()) all[e.path].second = &e;
  std::vector<DiffEntry> out;
  for (const auto& [path, pair] : all) {
    auto [a, b] = pair;
    if (!a) {
      out.push_back({Change::added, std::string(path), {}});
    } else if (!b) {
      out.push_back({Change::removed, std::string(path), {}});
    } else {
      bool content = false;
      auto fields = differing(*a, *b, content);
      // A directory's mtime changes with its content; shown, but as metadata.
      if (!fields.empty())
        out.push_back(
            {content ? Change::content : Change::metadata, std::string(path), std::move(fields)});
    }
  }
  return out;
}

}  // namespace coffer::restore
