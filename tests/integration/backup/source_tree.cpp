#include "source_tree.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <fstream>
#include <random>

#include "coffer/snapshot/layout.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;

namespace coffer::test {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("test setup: " + what + ": " + std::strerror(errno));
}

void set_time(const fs::path& p, std::int64_t sec, long nsec) {
  timespec t[2] = {{sec, nsec}, {sec, nsec}};
  check(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW) == 0, "utimensat " + p.native());
}

// A POSIX ACL in its xattr form: version 2, then (tag u16, perm u16, id u32) entries.
std::string acl(
    std::initializer_list<std::tuple<std::uint16_t, std::uint16_t, std::uint32_t>> entries) {
  std::string out;
  auto put = [&out](std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(2, 4);
  for (auto [tag, perm, id] : entries) {
    put(tag, 2);
    put(perm, 2);
    put(id, 4);
  }
  return out;
}

void set_xattr(const fs::path& p, const std::string& name, const std::string& value) {
  check(::lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0) == 0,
        "setxattr " + name);
}

}  // namespace

void write_random(const fs::path& p, std::size_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    std::uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  write_text(p, data);
}

void make_fidelity_tree(const fs::path& r) {
  fs::create_directories(r / "dir/sub");
  fs::create_directories(r / "empty-dir");
  write_text(r / "plain.txt", "plain\n");
  write_text(r / "empty", "");
  write_random(r / "dir/random.bin", 300000, 1);
  write_text(r / std::string("new\nline"), "newline in the name");
  write_text(r / std::string("invalid-\xff\xfe-utf8"), "bytes");
  write_text(r / "sp ace and \\backslash", "x");
  write_text(r / "-leading-dash", "x");
  write_text(r / std::string(255, 'L'), "longest name");
  write_text(r / "dir/setuid", "#!/bin/sh\n", 0755);
  check(::chmod((r / "dir/setuid").c_str(), 04755) == 0, "chmod setuid");
  write_text(r / "dir/setgid", "x", 0755);
  check(::chmod((r / "dir/setgid").c_str(), 02711) == 0, "chmod setgid");
  fs::create_directories(r / "sticky");
  check(::chmod((r / "sticky").c_str(), 01777) == 0, "chmod sticky");
  check(::chmod((r / "dir/sub").c_str(), 02750) == 0, "chmod setgid dir");
  write_text(r / "owned", "owned by someone else", 0640);
  check(::chown((r / "owned").c_str(), 1234, 5678) == 0, "chown");
  check(::chown((r / "dir/sub").c_str(), 4321, 8765) == 0, "chown dir");
  // Symlinks: relative, absolute, dangling, and one with its own owner.
  fs::create_symlink("../plain.txt", r / "dir/rel-link");
  fs::create_symlink("/etc/passwd", r / "abs-link");
  fs::create_symlink("does/not/exist", r / "dangling");
  check(::lchown((r / "dangling").c_str(), 111, 222) == 0, "lchown");
  // Special files.
  check(::mkfifo((r / "fifo").c_str(), 0620) == 0, "mkfifo");
  check(::mknod((r / "socket").c_str(), S_IFSOCK | 0755, 0) == 0, "mknod socket");
  check(::mknod((r / "null-dev").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0, "mknod chr");
  check(::mknod((r / "loop-dev").c_str(), S_IFBLK | 0660, makedev(7, 0)) == 0, "mknod blk");
  // Hard links across directories.
  write_text(r / "hard-a", "shared inode");
  fs::create_hard_link(r / "hard-a", r / "dir/hard-b");
  fs::create_hard_link(r / "hard-a", r / "dir/sub/hard-c");
  // xattrs and ACLs (system.posix_acl_*: ACL_USER_OBJ 1, USER 2, GROUP_OBJ 4, MASK 0x10, OTHER
  // 0x20).
  set_xattr(r / "plain.txt", "user.comment", "hello");
  set_xattr(r / "plain.txt", "trusted.secret", std::string("\0\x01\xff", 3));
  set_xattr(r / "dir", "user.on-a-dir", "d");
  write_text(r / "acl-file", "acl", 0640);
  set_xattr(r / "acl-file", "system.posix_acl_access",
            acl({{0x01, 6, 0xffffffff},
                 {0x02, 4, 1234},
                 {0x04, 4, 0xffffffff},
                 {0x10, 4, 0xffffffff},
                 {0x20, 0, 0xffffffff}}));
  set_xattr(r / "dir/sub", "system.posix_acl_default",
            acl({{0x01, 7, 0xffffffff},
                 {0x04, 5, 0xffffffff},
                 {0x08, 5, 42},
                 {0x10, 5, 0xffffffff},
                 {0x20, 0, 0xffffffff}}));
  // Sparse files: holes at the start, middle and end.
  {
    int fd = ::open((r / "sparse").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check(fd >= 0, "create sparse");
    check(::ftruncate(fd, 12 << 20) == 0, "truncate sparse");
    std::string block(8192, 'S');
    check(::pwrite(fd, block.data(), block.size(), 1 << 20) == static_cast<ssize_t>(block.size()),
          "pwrite");
    check(::pwrite(fd, block.data(), block.size(), 9 << 20) == static_cast<ssize_t>(block.size()),
          "pwrite");
    ::close(fd);
    fd = ::open((r / "sparse-tail-data").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check(fd >= 0, "create sparse");
    check(::pwrite(fd, block.data(), block.size(), 6 << 20) == static_cast<ssize_t>(block.size()),
          "pwrite");
    ::close(fd);
  }
  // Nanosecond times, children before their directories (creating a child changes them).
  std::int64_t t = 1600000000;
  long ns = 1;
  for (const auto& p : list_tree(r)) {
    set_time(r / p, t++, ns);
    ns = (ns * 7919 + 123457) % 1000000000;
  }
  auto all = list_tree(r);
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (fs::is_directory(fs::symlink_status(r / *it))) set_time(r / *it, t++, 999999999);
  set_time(r, 1500000000, 5);
}

std::uint64_t make_bulk_tree(const fs::path& root, int count, std::size_t size, unsigned seed) {
  for (int i = 0; i < count; ++i)
    write_random(root / ("d" + std::to_string(i % 7)) / ("file" + std::to_string(i)), size,
                 seed + static_cast<unsigned>(i));
  return static_cast<std::uint64_t>(count) * size;
}

nlohmann::json backup_json(const RunResult& r) {
  std::string_view rest = r.out;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == "backup") return j;
  }
  return {};
}

fs::path latest_tree(const fs::path& repo, const std::string& host) {
  auto all = snapshot::list_complete(repo, host);
  return all.empty() ? fs::path() : all.back().tree();
}

fs::path previous_tree(const fs::path& repo, const std::string& host) {
  auto all = snapshot::list_complete(repo, host);
  return all.size() < 2 ? fs::path() : all[all.size() - 2].tree();
}

std::vector<std::string> regular_files(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& p : list_tree(root))
    if (fs::is_regular_file(fs::symlink_status(root / p))) out.push_back(p);
  return out;
}

int count_regular(const fs::path& root) {
  int n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) ++n;
  return n;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace coffer::test
