#include "forget_fixture.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <sstream>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/layout.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/units.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace coffer::test {

std::time_t utc_time(int y, int mo, int d, int h) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  return ::timegm(&tm);
}

std::string make_snapshot(const fs::path& src, const fs::path& repo, const std::string& host,
                          std::time_t t, int files) {
  std::string name = snapshot::format_timestamp(t);
  for (int i = 0; i < files; ++i)
    write_text(
        src / name.substr(0, 10) / fmt::format("d{}/f{}", i % 16, i),
        fmt::format("{} {} {}\n", name, i, std::string(static_cast<std::size_t>(i % 97), 'x')));
  auto r = run_coffer({"backup", src.native(), repo.native(), "--name", host});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  fs::path host_dir = repo / "hosts" / host;
  std::string made = fs::read_symlink(host_dir / "latest").filename();
  std::string marker = read_file(host_dir / made / "complete");
  auto pos = marker.find(made);
  if (pos != std::string::npos) marker.replace(pos, made.size(), name);
  write_text(host_dir / made / "complete", marker);
  fs::rename(host_dir / made, host_dir / name);
  fs::remove(host_dir / "latest");
  fs::create_directory_symlink(name, host_dir / "latest");
  return name;
}

std::vector<std::string> snapshot_dirs(const fs::path& repo, const std::string& host) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(repo / "hosts" / host))
    if (snapshot::parse_timestamp(e.path().filename().native()) && !e.is_symlink())
      out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, std::string> fingerprint(const fs::path& dir) {
  std::map<std::string, std::string> out;
  out["<catalog>"] = read_file(dir / "catalog");
  out["<complete>"] = read_file(dir / "complete");
  auto cat = snapshot::Catalog::load(dir / "catalog");
  for (const auto& e : cat.entries()) {
    fs::path p = e.path.empty() ? dir / "tree" : dir / "tree" / e.path;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      out[e.path] = "missing";
      continue;
    }
    std::string v = fmt::format("{:o} {} {} {} {}.{}", st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (S_ISREG(st.st_mode)) v += " " + hash_file(p);
    if (S_ISLNK(st.st_mode)) v += " -> " + fs::read_symlink(p).native();
    out[e.path] = v;
  }
  return out;
}

std::vector<std::string> tree_vs_catalog(const fs::path& dir) {
  std::vector<std::string> diffs;
  auto cat = snapshot::Catalog::load(dir / "catalog");
  for (const auto& e : cat.entries()) {
    fs::path p = e.path.empty() ? dir / "tree" : dir / "tree" / e.path;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      diffs.push_back(e.path + ": missing");
      continue;
    }
    if ((st.st_mode & S_IFMT) != snapshot::mode_type_bits(e.type))
      diffs.push_back(e.path + ": type");
    if ((st.st_mode & 07777) != e.mode) diffs.push_back(e.path + ": mode");
    if (e.type == snapshot::EntryType::regular) {
      if (static_cast<std::uint64_t>(st.st_size) != e.size) diffs.push_back(e.path + ": size");
      if (!e.hash || to_hex(e.hash->data(), e.hash->size()) != hash_file(p))
        diffs.push_back(e.path + ": content");
    }
    if (e.type != snapshot::EntryType::directory &&
        (st.st_mtim.tv_sec != e.mtime_sec || st.st_mtim.tv_nsec != e.mtime_nsec))
      diffs.push_back(e.path + ": mtime");
  }
  return diffs;
}

std::vector<nlohmann::json> json_lines(const RunResult& r, const std::string& type) {
  std::vector<nlohmann::json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == type) out.push_back(j);
  }
  return out;
}

}  // namespace coffer::test
