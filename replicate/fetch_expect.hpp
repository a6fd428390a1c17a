// What `replica fetch` knows of the vault it should get back, besides the key: --expect-uuid,
// B's records of the image (IMAGE_OUT.coffer/targets/*/ when the fetch goes to the path B's
// image had and that state survived), and the note of the interrupted fetch it resumes. Each is
// checked against C's manifest as soon as it arrives, before the key is tried: a replica of
// another vault, another replica of this vault, or an older generation than B committed is an
// integrity refusal (exit 13), not a "wrong key" (exit 12). Without any of them, a key that
// opens no slot cannot tell a wrong passphrase from another vault's replica (both are headers
// the key does not open), so that stays exit 12, naming the UUID C's replica claims.
// docs/disaster-recovery.md, "How a fetch tells".
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "coffer/replicate/manifest.hpp"

namespace coffer::replicate {

// Throws ErrorKind::integrity when one of B's records of `image` says C's manifest `m` (not yet
// authenticated) is not the replica B keeps, or an older generation than B committed. Returns a
// line for the log saying which record agreed, or nothing when there is no record.
std::optional<std::string> check_against_b_records(const std::filesystem::path& image,
                                                   const Manifest& m, const std::string& source);

// The note fetch() keeps beside its partial image (what the earlier run had authenticated).
struct PartialNote {
  std::string uuid, replica_id;
  std::uint64_t generation = 0;
  std::int64_t time = 0;
};
std::optional<PartialNote> read_partial_note(const std::filesystem::path& note);

// Throws ErrorKind::integrity when C now holds another vault, another replica, or an older
// generation than the interrupted fetch that left `note` at `partial` had authenticated.
void check_against_partial_note(const PartialNote& note, const std::filesystem::path& partial,
                                const Manifest& m, const std::string& source);

}  // namespace coffer::replicate
