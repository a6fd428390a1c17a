// `coffer image restore`'s work, shared with `replica fetch --restore`: SNAPSHOT[:PATH] of a
// closed vault image restored into the new TARGET by the user-space reader (no dm-crypt, no
// mount, no root; docs/reader.md).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "coffer/config/credentials.hpp"
#include "coffer/reader/fs.hpp"
#include "context.hpp"

namespace coffer::cli {

// Opens `image` with `creds` and returns the path inside it that `snapshot` (SPEC[:PATH]) names;
// `name` picks the source when the image holds several.
std::string open_image_snapshot(const std::filesystem::path& image, const config::Credentials& creds,
                                const std::string& snapshot, const std::string& name,
                                std::unique_ptr<reader::FileSystem>& fs);

// Restores it into `target` (must not exist), reports, and returns the exit code.
int restore_from_image(Context& ctx, const std::filesystem::path& image,
                       const config::Credentials& creds, const std::string& snapshot,
                       const std::string& name, const std::filesystem::path& target);

}  // namespace coffer::cli
