// Shared pieces of the replication integration tests: real LUKS2 images made with cryptsetup
// (no device-mapper needed), random content at fixed seeds, the real coffer binary run as a
// child, and watching C's directory to kill the helper at chosen moments.
#pragma once

#include <gtest/gtest.h>
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coffer/util/process.hpp"
#include "temp_dir.hpp"

namespace coffer::test {

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kLuksHeader = 16 * kMiB;

struct VaultImage {
  std::filesystem::path image, key;
};

// A sparse `size` file with a LUKS2 header (cheap KDF) and `data` bytes of random content after
// the header, standing for an ext4 file system written through dm-crypt.
VaultImage make_vault(const std::filesystem::path& dir, const std::string& name, std::uint64_t size,
                      std::uint64_t data, unsigned seed);
void write_random(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length,
                  unsigned seed);
void write_zeros(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length);
void copy_range(const std::filesystem::path& from, const std::filesystem::path& to,
                std::uint64_t offset, std::uint64_t length);
std::uint64_t allocated_bytes(const std::filesystem::path& path);
// The last line of `out` that parses as a JSON object (of "type" `type`, if given).
nlohmann::json last_json(const std::string& out, const std::string& type = "");
// pid held in C's lock file (the running helper), or 0.
pid_t helper_pid(const std::filesystem::path& replica_dir);
bool process_alive(pid_t pid);
void wait_gone(pid_t pid);

// inotify on one directory.
class DirWatch {
 public:
  DirWatch(const std::filesystem::path& dir, std::uint32_t mask);
  ~DirWatch();
  // Waits for an event with `mask` on `name`; false on timeout.
  bool wait_for(const std::string& name, std::uint32_t mask, std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::vector<std::pair<std::string, std::uint32_t>> pending_;  // read but not yet looked at
};

// A coffer child still running, for tests that kill it or its helper mid-run.
class Background {
 public:
  explicit Background(const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {});
  pid_t pid() const { return proc_->pid(); }
  void kill(int sig) { proc_->kill(sig); }
  // Collects output and the exit code (128+signal when killed).
  RunResult finish();

 private:
  std::unique_ptr<Process> proc_;
};

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // Writes the config naming C as target "far" and sets `env` for the paths in use.
  void use_paths();

  TempDir tmp;
  VaultImage vault;
  std::filesystem::path C;  // the replica directory
  std::vector<std::string> env;

  std::vector<std::string> args(std::vector<std::string> a) const;
  // `coffer replicate --json IMAGE C --key-file K extra...`, expecting exit 0; returns its report.
  nlohmann::json replicate(const std::vector<std::string>& extra = {});
  RunResult run(const std::vector<std::string>& a) const;
  RunResult verify() const;
  nlohmann::json status() const;
};

}  // namespace coffer::test
