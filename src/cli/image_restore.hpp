// `replica fetch --restore`'s last step: SNAPSHOT[:PATH] of the fetched (closed) vault image
// restored into the new TARGET by the user-space reader (no dm-crypt, no mount, no root;
// docs/reader.md), through the same restorer as `coffer restore`.
#pragma once

#include <filesystem>
#include <string>

#include "coffer/config/credentials.hpp"
#include "context.hpp"

namespace coffer::cli {

// Restores into `target` (must not exist or be empty), reports, and returns the exit code.
int restore_from_image(Context& ctx, const std::filesystem::path& image,
                       const config::Credentials& creds, const std::string& snapshot,
                       const std::string& name, const std::filesystem::path& target);

}  // namespace coffer::cli
