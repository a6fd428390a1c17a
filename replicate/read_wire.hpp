// READ (protocol 3), `coffer replica fetch`'s request: ranges of C's image, answered in order by
// READ_DATA and READ_ZEROS pieces that cover each range (clipped to C's image), then READ_END.
// A hole, or a manifest block of zeros, travels as READ_ZEROS without data. Layout:
// docs/formats/replica-protocol.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "protocol.hpp"

namespace coffer::replicate {

struct ReadRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t end() const { return offset + length; }
};

// At most this many ranges per READ frame (16 MiB of request).
constexpr std::size_t kMaxReadRanges = 1u << 20;
// At most this much data per READ_DATA frame.
constexpr std::uint64_t kReadPiece = 4ull << 20;

std::vector<std::byte> encode_read(std::span<const ReadRange> ranges);
// Checks that the ranges are ascending, do not overlap, and start and (unless they reach the end
// of C's image) end on multiples of `block`.
std::vector<ReadRange> decode_read(Decoder& d, std::uint32_t block);

// C's side: answers one READ from `image`.
void serve_read(const std::filesystem::path& image, Channel& ch, Decoder& request);

}  // namespace coffer::replicate
