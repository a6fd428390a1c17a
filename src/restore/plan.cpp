#include "plan.hpp"

#include <unordered_map>

#include "coffer/util/error.hpp"

namespace coffer::restore {

using snapshot::EntryType;

std::string_view PlanEntry::name() const {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string_view(rel)
                                    : std::string_view(rel).substr(slash + 1);
}

std::string_view PlanEntry::parent() const {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string_view() : std::string_view(rel).substr(0, slash);
}

namespace {

bool valid_components(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  std::size_t pos = 0;
  for (;;) {
    auto slash = path.find('/', pos);
    std::string_view part = path.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos)
      return false;
    if (slash == std::string_view::npos) return true;
    pos = slash + 1;
  }
}

std::string_view parent_of(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

[[noreturn]] void refuse(const std::filesystem::path& shown, const std::string& path,
                         const std::string& why) {
  fail(ErrorKind::integrity, "check catalog", shown.native(),
       "entry " + snapshot::escape_path(path) + " " + why + "; nothing restored");
}

}  // namespace

void check_catalog(const snapshot::Catalog& catalog, const std::filesystem::path& shown) {
  const auto& all = catalog.entries();
  if (all.empty() || !all.front().path.empty() || all.front().type != EntryType::directory)
    fail(ErrorKind::integrity, "check catalog", shown.native(),
         "the first entry is not the root directory");
  std::unordered_map<std::string_view, EntryType> seen;
  seen.reserve(all.size());
  seen.emplace(std::string_view(), EntryType::directory);
  for (std::size_t i = 1; i < all.size(); ++i) {
    const auto& e = all[i];
    if (!valid_components(e.path)) refuse(shown, e.path, "is not a relative path below the tree");
    auto parent = seen.find(parent_of(e.path));
    if (parent == seen.end()) refuse(shown, e.path, "comes before its directory");
    if (parent->second != EntryType::directory) refuse(shown, e.path, "lies below a non-directory");
    if (!seen.emplace(e.path, e.type).second) refuse(shown, e.path, "is listed twice");
  }
}

Plan make_plan(const snapshot::Catalog& catalog, std::string_view path,
               const transfer::Filter& filter, const std::filesystem::path& shown) {
  Plan plan;
  const snapshot::CatalogEntry* top = catalog.find(path);
  if (!top)
    fail(ErrorKind::failed, "restore", snapshot::escape_path(path),
         "no such path in the snapshot (" + shown.native() + ")");
  plan.root_is_dir = top->type == EntryType::directory;
  std::unordered_set<std::string_view> selected_dirs;
  std::unordered_map<std::uint64_t, std::size_t> leaders;
  auto add = [&](const snapshot::CatalogEntry& e, std::string rel) {
    PlanEntry p{&e, std::move(rel)};
    if (e.link_group != 0 && e.type != EntryType::directory) {
      auto [it, first] = leaders.emplace(e.link_group, plan.entries.size());
      if (!first) p.leader = it->second;
    }
    plan.rels.insert(p.rel);
    plan.entries.push_back(std::move(p));
  };
  if (!plan.root_is_dir) {
    // A single entry goes into TARGET under its own name.
    auto slash = path.rfind('/');
    add(*top, std::string(slash == std::string_view::npos ? path : path.substr(slash + 1)));
    return plan;
  }
  plan.prefix = path.empty() ? std::string() : std::string(path) + "/";
  selected_dirs.insert(top->path);
  add(*top, "");
  for (const auto& e : catalog.entries()) {
    if (e.path.size() <= plan.prefix.size() ||
        e.path.compare(0, plan.prefix.size(), plan.prefix) != 0)
      continue;
    // Kept when its directory was kept (an excluded directory is not descended into) and the
    // first matching rule does not exclude it.
    if (!selected_dirs.count(parent_of(e.path))) continue;
    bool is_dir = e.type == EntryType::directory;
    if (filter.excluded(e.path, is_dir)) continue;
    if (is_dir) selected_dirs.insert(e.path);
    add(e, e.path.substr(plan.prefix.size()));
  }
  return plan;
}

}  // namespace coffer::restore
