// Closed vault images made without dm-crypt for the reader's tests: a tree (or a repository made
// by `coffer backup`) goes into ext4 with `mkfs.ext4 -d`, `cryptsetup luksFormat` writes a real
// LUKS2 header (4 KiB sectors), and the file system is encrypted with the header's volume key
// (AES-XTS-plain64, IV = 512-byte sector number, as dm-crypt does for LUKS2). That this matches
// dm-crypt is shown inside UML by tests/uml/test_reader.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace coffer::test {

constexpr std::uint64_t kImageHeader = 16 << 20;
constexpr char kImageKey[] = "0123456789abcdef0123456789abcdef";

// The source tree: odd names, a hard link pair, a sparse file, a symlink, a fifo, modes, xattr.
void make_tree(const std::filesystem::path& t);
void set_mtime(const std::filesystem::path& p, long sec, long nsec);

// `plain` (an ext4 image of `fs_bytes` made from `content` with mkfs.ext4 -d, unless `content`
// is empty and `plain` exists) encrypted into `image` with the key file `key` (written, 0644).
void make_vault_image(const std::filesystem::path& content, const std::filesystem::path& plain,
                      std::uint64_t fs_bytes, const std::filesystem::path& image,
                      const std::filesystem::path& key);
// Re-encrypts `plain` into the data segment of `image` (after changing `plain`).
void encrypt_plain(const std::filesystem::path& plain, const std::filesystem::path& image);

// Runs coffer as nobody when this test runs as root (it does on CI), else as the current user.
std::vector<std::string> as_user_argv(const std::vector<std::string>& args);

}  // namespace coffer::test
