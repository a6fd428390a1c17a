// Sizes as users write them: "512M", "4G", "64K", "1.5T", "4096".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coffer {

// Binary multiples (K = 1024). Throws Error(kind usage) naming `what` on a bad value.
std::uint64_t parse_size(std::string_view text, std::string_view what);
std::string format_size(std::uint64_t bytes);

std::string to_hex(const void* data, std::size_t size);

}  // namespace coffer
