// Steps shared by the single-purpose commands (backup, replicate) and by `coffer run`, which
// chains them: building requests from options or config, and reporting each step's result.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "coffer/replicate/replicate.hpp"
#include "coffer/snapshot/retention.hpp"
#include "coffer/transfer/backup.hpp"
#include "coffer/vault/vault.hpp"
#include "context.hpp"

namespace coffer::cli {

// A backup of a configured source into `repo`.
transfer::BackupRequest backup_request(const config::Source& source, const std::filesystem::path& repo);

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

}  // namespace coffer::cli
