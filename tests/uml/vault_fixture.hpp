// A vault made by the real binary in a fresh directory, for the tests that need dm-crypt
// (run inside User-Mode Linux by tests/uml/uml-run where the kernel has no device-mapper).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coffer/util/process.hpp"
#include "temp_dir.hpp"

namespace coffer::test {

// Low argon2id cost so UML (slow, little memory) unlocks in a second. Users see these options
// too; production keeps the benchmarked defaults.
inline const std::vector<std::string> kFastKdf = {"--kdf-memory",   "4M", "--kdf-iterations", "4",
                                                  "--kdf-parallel", "1"};

class VaultFixture {
 public:
  VaultFixture();
  const std::filesystem::path& dir() const { return tmp_.path(); }
  std::filesystem::path image() const { return tmp_ / "vault.img"; }
  std::filesystem::path key() const { return tmp_ / "vault.key"; }
  std::filesystem::path passphrase() const { return tmp_ / "passphrase"; }
  std::filesystem::path runtime() const { return tmp_ / "run"; }
  std::filesystem::path mount() const { return tmp_ / "mnt"; }

  // Runs coffer with COFFER_RUNTIME_DIR pointing into this fixture.
  RunResult coffer(const std::vector<std::string>& args) const;
  // create with a generated key file and a passphrase; asserts success.
  void create(const std::string& size = "64M") const;
  void open_with_key() const;
  void close() const;
  // `coffer vault status --json`, parsed; asserts success.
  nlohmann::json status() const;
  std::string mapping() const { return status()["mapping"]; }

 private:
  TempDir tmp_;
};

// Writes a small tree with odd names, a hard link and a sparse file under `root`.
void write_sample_tree(const std::filesystem::path& root);
// Content hash of every file under root, keyed by relative path (names as raw bytes).
std::vector<std::pair<std::string, std::string>> tree_digest(const std::filesystem::path& root);

}  // namespace coffer::test
