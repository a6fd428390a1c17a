// What a completed `vault open` leaves in the runtime directory, and what the next command
// reads to tell an open vault from the leftovers of a killed run. Format: docs/vault.md.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "coffer/vault/vault.hpp"

namespace coffer::vault {

struct OpenState {
  std::filesystem::path image;
  std::filesystem::path mount;
  std::string mapping;
  long pid = 0;
};

void write_open_state(const Location& where, const OpenState& state);
std::optional<OpenState> read_open_state(const Location& where);
void remove_open_state(const Location& where);

// What the kernel and the runtime directory say about a vault right now.
struct Observed {
  bool mapped = false;
  std::optional<std::filesystem::path> mounted_at;
  std::optional<OpenState> state;
  // Open: a completed `vault open` whose mapping and mount are both still there.
  bool is_open() const { return mapped && mounted_at && state && state->mount == *mounted_at; }
  bool is_stale() const { return (mapped || mounted_at) && !is_open(); }
};

Observed observe(const Location& where);
// Unmounts and unmaps whatever `observed` found; used on stale leftovers and by close().
void tear_down(const Location& where, const Observed& observed);

// The image's real path (symlinks, ./ and .. resolved): how the state file records it.
std::filesystem::path real_image_path(const std::filesystem::path& image);
// Fails naming the loop devices (not coffer's mapping) that have the image attached.
void refuse_foreign_loop_devices(const std::filesystem::path& image, std::string_view operation);

// Checks the file is there and starts like a LUKS2 header: missing (exit 10) vs damaged (13).
void check_image(const std::filesystem::path& image);

}  // namespace coffer::vault
