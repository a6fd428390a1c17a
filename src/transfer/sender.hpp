// The sender role (A): walks the source, streams the file list, then answers the receiver's
// requests with file data (holes skipped) or librsync deltas. Reads only; never writes on A.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "walker.hpp"
#include "wire.hpp"

namespace coffer::transfer {

struct SenderOptions {
  std::filesystem::path root;
  WalkOptions walk;
};

struct SenderStats {
  std::uint64_t entries = 0;
  std::uint64_t files_read = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t warnings = 0;
};

// Runs the whole sender side over `ch` (after the handshake). Source problems found on A
// (vanished files, unreadable directories) go to the receiver as WARNING messages and to
// `on_warning`. Returns when the receiver has sent FINISH and DONE went out.
SenderStats run_sender(Channel& ch, const SenderOptions& options,
                       const std::function<void(std::string_view, std::string_view)>& on_warning);

}  // namespace coffer::transfer
