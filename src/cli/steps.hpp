// Steps shared by the single-purpose commands (backup, replicate) and by `coffer run`, which
// chains them: building requests from options or config, and reporting each step's result.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "coffer/replicate/replicate.hpp"
#include "coffer/snapshot/retention.hpp"
#include "coffer/transfer/backup.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/units.hpp"
#include "coffer/vault/vault.hpp"
#include "context.hpp"

namespace coffer::cli {

// A backup of a configured source into `repo`.
transfer::BackupRequest backup_request(const config::Source& source,
                                       const std::filesystem::path& repo);

// Runs one backup and reports it (human line, JSON object, warnings as they come).
transfer::BackupResult run_reported_backup(Context& ctx, const transfer::BackupRequest& req);

// What replicate needs to know about the vault; missing image: kind missing.
replicate::VaultFacts vault_facts(const vault::Location& where);

// Replicates and reports one target (the caller holds the vault lock and the volume key).
replicate::ReplicateResult run_reported_replication(Context& ctx, const vault::Location& where,
                                                    const replicate::ReplicateOptions& options);

// Reports a verification; a failed one throws Error(kind integrity) naming the replica.
void report_verify(Context& ctx, const replicate::VerifyReport& report);

// Retention (cmd_forget.cpp): the config's [retention] as a policy, and one host's forget under
// its lock, reporting every snapshot kept (with its rules) and removed.
struct ForgetReport {
  std::size_t kept = 0, removed = 0;
};
snapshot::RetentionPolicy policy_from_config(const config::Retention& r);
ForgetReport run_reported_forget(Context& ctx, const std::filesystem::path& repo,
                                 const std::string& host, const snapshot::RetentionPolicy& policy,
                                 bool dry_run);

// The argon2id options of `vault create`, `vault add-key` and `init`.
struct KdfOptions {
  std::string memory;  // "64M"
  std::uint32_t iterations = 0;
  std::uint32_t parallel = 0;
  std::uint32_t time_ms = 2000;

  void add_to(CLI::App& cmd) {
    cmd.add_option("--kdf-memory", memory,
                   "argon2id memory cost, e.g. 1G (default: benchmarked, up to 1 GiB, less on a "
                   "small machine)");
    cmd.add_option("--kdf-iterations", iterations, "argon2id iterations (default: benchmarked)");
    cmd.add_option("--kdf-parallel", parallel, "argon2id threads (default: benchmarked)");
    cmd.add_option("--kdf-time", time_ms, "Target unlock time in ms when benchmarking")
        ->capture_default_str();
  }

  vault::KdfParams params() const {
    vault::KdfParams p;
    if (!memory.empty())
      p.memory_kib = static_cast<std::uint32_t>(parse_size(memory, "--kdf-memory") / 1024);
    p.iterations = iterations;
    p.parallel = parallel;
    p.time_ms = time_ms;
    bool any = p.memory_kib || p.iterations || p.parallel;
    bool all = p.memory_kib && p.iterations && p.parallel;
    if (any && !all)
      fail(ErrorKind::usage, "set key derivation", "",
           "give --kdf-memory, --kdf-iterations and --kdf-parallel together");
    return p;
  }
};

// `vault create` (cmd_vault.cpp), also run by `init --vault`: a new vault, a generated key file
// if `generate` is not empty, reported as `vault create` reports it.
int create_vault(Context& ctx, const vault::Location& where, const std::string& size,
                 const SecretOptions& secrets, const vault::KdfParams& kdf,
                 const std::filesystem::path& generate);

}  // namespace coffer::cli
