// Hashes for asserting that bytes are unchanged (BLAKE2b via libsodium).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace coffer::test {

std::string hash_file(const std::filesystem::path& path);
// The catalog's block form of BLAKE2b-256 (docs/formats/catalog.md), computed from every byte
// of the file as read (an independent implementation, for small files).
std::string hash_file_blocks(const std::filesystem::path& path);
// One hash per `block` bytes, to say *which* blocks of an image changed.
std::vector<std::string> hash_blocks(const std::filesystem::path& path, std::size_t block);

}  // namespace coffer::test
