// REPO as restore, ls, find, diff and check take it: a mounted repository (a directory with
// hosts/), a closed vault image file (LUKS2 magic), or a replica on C (a local replica DIR or
// [user@]host:DIR), read block by block (docs/reader.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "coffer/restore/source.hpp"
#include "context.hpp"

namespace coffer::cli {

// Bytes read from C for a replica source; 0 for the others.
struct FetchStats {
  std::uint64_t blocks = 0, bytes = 0, received = 0;
};

struct SourceOptions {
  SecretOptions secrets;
  std::string remote_command;
  std::optional<std::filesystem::path> ssh_config, ssh_identity;
  std::optional<int> ssh_port;

  // The key options and, for a replica on C, the SSH options.
  void add_to(CLI::App& cmd);
  // Null when REPO is a repository directory (the caller reads it as before); else the image
  // or replica, unlocked with the key options.
  std::shared_ptr<restore::TreeSource> open(Context& ctx, const std::string& repo);
  // As open(), with a repository directory as a source too (missing: exit 10).
  std::shared_ptr<restore::TreeSource> open_any(Context& ctx, const std::string& repo);
  // What was fetched from C so far (for the summary).
  std::optional<FetchStats> fetched() const;

 private:
  std::function<FetchStats()> stats_;
};

// `restore REPO SNAPSHOT[:PATH] TARGET` under `parent` (the top level, and `coffer image`).
void add_restore_command(CLI::App& parent, Context& ctx, const std::string& help);

// A regular file starting with the LUKS2 magic.
bool is_luks2_image(const std::filesystem::path& path);

}  // namespace coffer::cli
