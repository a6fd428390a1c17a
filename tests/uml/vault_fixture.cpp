#include "vault_fixture.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <algorithm>

#include "coffer/util/fd.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"

namespace coffer::test {

VaultFixture::VaultFixture() {
  write_text(passphrase(), "correct horse battery staple\n", 0600);
}

RunResult VaultFixture::coffer(const std::vector<std::string>& args) const {
  return run_coffer(args, {}, {"COFFER_RUNTIME_DIR=" + runtime().native()});
}

void VaultFixture::create(const std::string& size) const {
  std::vector<std::string> args{"vault",     "create",
                                image(),     "--size",
                                size,        "--generate-key-file",
                                key(),       "--passphrase-file",
                                passphrase()};
  args.insert(args.end(), kFastKdf.begin(), kFastKdf.end());
  RunResult r = coffer(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

void VaultFixture::open_with_key() const {
  RunResult r = coffer({"vault", "open", image(), "--key-file", key(), "--mount", mount()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

void VaultFixture::close() const {
  RunResult r = coffer({"vault", "close", image()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

nlohmann::json VaultFixture::status() const {
  RunResult r = coffer({"vault", "status", image(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

void write_sample_tree(const std::filesystem::path& root) {
  std::filesystem::create_directories(root / "dir with space");
  write_text(root / "plain.txt", "plain\n");
  write_text(root / "dir with space" / "new\nline", "a name with a newline\n");
  write_text(root / std::string("latin1-\xe9\xff"), "invalid UTF-8 name\n");
  std::string big(3 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  write_text(root / "big.bin", big);
  std::filesystem::create_hard_link(root / "plain.txt", root / "hardlink.txt");
  std::filesystem::create_symlink("plain.txt", root / "symlink");
  // Sparse: 1 MiB hole then data.
  UniqueFd fd = open_fd(root / "sparse", O_WRONLY | O_CREAT, 0644);
  std::string tail = "after the hole";
  pwrite_all(fd.get(), std::as_bytes(std::span(tail)), 1 << 20, root / "sparse");
}

std::vector<std::pair<std::string, std::string>> tree_digest(const std::filesystem::path& root) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = std::filesystem::recursive_directory_iterator(root);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    std::string rel = std::filesystem::relative(it->path(), root).native();
    if (rel == "lost+found" || rel.rfind("lost+found/", 0) == 0) continue;
    if (it->is_symlink())
      out.emplace_back(rel, "symlink:" + std::filesystem::read_symlink(it->path()).native());
    else if (it->is_regular_file())
      out.emplace_back(rel, hash_file(it->path()));
    else if (it->is_directory())
      out.emplace_back(rel, "dir");
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace coffer::test
