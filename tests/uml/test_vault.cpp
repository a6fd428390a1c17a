// The vault through the real binary, with real dm-crypt (inside UML where the host has none).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csignal>
#include <nlohmann/json.hpp>

#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "vault_fixture.hpp"

using namespace coffer;
using namespace coffer::test;

TEST(Vault, CreateWriteCloseReopenWithKeyAndPassphrase) {
  VaultFixture v;
  v.create();
  struct stat st {};
  ASSERT_EQ(::stat(v.key().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u) << "generated key file must be 0400";
  EXPECT_EQ(st.st_size, 64);

  nlohmann::json s = v.status();
  EXPECT_EQ(s["sector_size"], 4096);
  ASSERT_EQ(s["keyslots"].size(), 2u);
  EXPECT_EQ(s["keyslots"][0]["kdf"], "argon2id");
  EXPECT_EQ(s["keyslots"][0]["memory_kib"], 4096);  // recorded as given, not lowered
  EXPECT_EQ(s["open"], false);
  // Sparse: far less allocated than the nominal size.
  EXPECT_LT(s["allocated"].get<std::uint64_t>(), s["file_size"].get<std::uint64_t>());

  v.open_with_key();
  write_sample_tree(v.mount() / "data");
  auto before = tree_digest(v.mount());
  ASSERT_GT(before.size(), 5u);
  EXPECT_EQ(v.status()["open"], true);
  v.close();
  EXPECT_EQ(v.status()["open"], false);
  EXPECT_FALSE(std::filesystem::exists("/dev/mapper/" + v.mapping()));

  RunResult r = v.coffer(
      {"vault", "open", v.image(), "--passphrase-file", v.passphrase(), "--mount", v.mount()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(tree_digest(v.mount()), before);
  // Hard link and sparseness survive inside the vault.
  struct stat a {
  }, b{};
  ::stat((v.mount() / "data/plain.txt").c_str(), &a);
  ::stat((v.mount() / "data/hardlink.txt").c_str(), &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
  v.close();

  r = v.coffer({"vault", "open", v.image(), "--key-file", v.key(), "--mount", v.mount()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(tree_digest(v.mount()), before);
  v.close();
}

TEST(Vault, WrongSecretsExit12AndChangeNothing) {
  VaultFixture v;
  v.create();
  std::string hash = hash_file(v.image());
  write_text(v.dir() / "wrong-pass", "not the passphrase\n");
  write_text(v.dir() / "wrong-key", std::string(64, 'k'));

  for (auto args : std::vector<std::vector<std::string>>{
           {"vault", "open", v.image(), "--passphrase-file", v.dir() / "wrong-pass"},
           {"vault", "open", v.image(), "--key-file", v.dir() / "wrong-key"},
           {"vault", "open", v.image(), "--key-file", v.dir() / "wrong-key", "--passphrase-file",
            v.dir() / "wrong-pass"},
           {"vault", "grow", v.image(), "--size", "256M", "--passphrase-file",
            v.dir() / "wrong-pass"},
           {"vault", "add-key", v.image(), "--passphrase-file", v.dir() / "wrong-pass",
            "--new-passphrase-file", v.passphrase()}}) {
    RunResult r = v.coffer(args);
    EXPECT_EQ(r.exit_code, 12) << args[1] << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(v.image().native()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("no key slot opens"), std::string::npos) << r.err;
    EXPECT_EQ(hash_file(v.image()), hash) << "image changed after " << args[1];
    EXPECT_EQ(v.status()["mapped"], false);
  }
}

TEST(Vault, OpenTwiceCloseTwiceMissingAndForeignFiles) {
  VaultFixture v;
  v.create();
  v.open_with_key();
  RunResult r = v.coffer({"vault", "open", v.image(), "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already open"), std::string::npos) << r.err;
  v.close();
  std::string hash = hash_file(v.image());
  r = v.coffer({"vault", "close", v.image()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not open"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;

  r = v.coffer({"vault", "open", v.dir() / "nope.img", "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 10) << r.err;
  EXPECT_NE(r.err.find("nope.img"), std::string::npos);

  write_text(v.dir() / "plain.img", std::string(1 << 20, 'x'));
  std::string plain_hash = hash_file(v.dir() / "plain.img");
  r = v.coffer({"vault", "open", v.dir() / "plain.img", "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 10) << r.err;
  EXPECT_NE(r.err.find("not a coffer vault"), std::string::npos) << r.err;
  EXPECT_EQ(hash_file(v.dir() / "plain.img"), plain_hash);
  EXPECT_EQ(hash_file(v.image()), hash);
}

TEST(Vault, DamagedOrTruncatedHeaderIsAClearErrorAndNothingChanges) {
  VaultFixture v;
  v.create();
  // Corrupt both LUKS2 header copies' JSON areas (primary at 4 KiB, secondary at 16+4 KiB).
  std::filesystem::copy_file(v.image(), v.dir() / "damaged.img");
  {
    UniqueFd fd = open_fd(v.dir() / "damaged.img", O_WRONLY);
    std::string junk(64, '#');
    pwrite_all(fd.get(), std::as_bytes(std::span(junk)), 4096 + 16, v.dir() / "damaged.img");
    pwrite_all(fd.get(), std::as_bytes(std::span(junk)), 16384 + 4096 + 16,
               v.dir() / "damaged.img");
  }
  std::string hash = hash_file(v.dir() / "damaged.img");
  RunResult r = v.coffer({"vault", "open", v.dir() / "damaged.img", "--key-file", v.key()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 12) << "a damaged header is not a wrong key";
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("damaged.img"), std::string::npos) << r.err;
  EXPECT_EQ(hash_file(v.dir() / "damaged.img"), hash);

  // Truncated inside the header.
  std::filesystem::copy_file(v.image(), v.dir() / "short.img");
  std::filesystem::resize_file(v.dir() / "short.img", 8192);
  hash = hash_file(v.dir() / "short.img");
  r = v.coffer({"vault", "open", v.dir() / "short.img", "--key-file", v.key()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 12);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(hash_file(v.dir() / "short.img"), hash);
  EXPECT_EQ(v.status()["mapped"], false);
}

// No --kdf-* option at all: the production default (libcryptsetup's LUKS2 argon2id defaults,
// benchmarked here, memory capped by what the machine has) must work, and its costs are
// printed and recorded. One key slot, one open: the benchmark is slow inside UML.
TEST(Vault, CreateWithoutKdfOptionsUsesBenchmarkedDefaults) {
  VaultFixture v;
  RunResult r =
      v.coffer({"vault", "create", v.image(), "--size", "64M", "--generate-key-file", v.key()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("key slot 0:  argon2id memory"), std::string::npos) << r.out;
  nlohmann::json s = v.status();
  ASSERT_EQ(s["keyslots"].size(), 1u);
  const auto& slot = s["keyslots"][0];
  EXPECT_EQ(slot["kdf"], "argon2id");
  EXPECT_GE(slot["iterations"].get<unsigned>(), 4u);  // libcryptsetup's argon2 minimum
  EXPECT_GE(slot["parallel"].get<unsigned>(), 1u);
  EXPECT_LE(slot["parallel"].get<unsigned>(), 4u);
  EXPECT_GE(slot["memory_kib"].get<unsigned>(), 32u);
  EXPECT_LE(slot["memory_kib"].get<unsigned>(), 1024u * 1024u);
  // What was printed is what the header holds.
  std::string shown = "iterations " + std::to_string(slot["iterations"].get<unsigned>()) +
                      " threads " + std::to_string(slot["parallel"].get<unsigned>());
  EXPECT_NE(r.out.find(shown), std::string::npos) << r.out;
  v.open_with_key();
  write_text(v.mount() / "f", "default costs\n");
  v.close();
}
