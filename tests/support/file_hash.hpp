// Hashes for asserting that bytes are unchanged (BLAKE2b via libsodium).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace coffer::test {

std::string hash_file(const std::filesystem::path& path);
// One hash per `block` bytes, to say *which* blocks of an image changed.
std::vector<std::string> hash_blocks(const std::filesystem::path& path, std::size_t block);

}  // namespace coffer::test
