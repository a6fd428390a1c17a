#include "fetch_expect.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <vector>

#include "coffer/replicate/replicate.hpp"
#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "target_state.hpp"

namespace coffer::replicate {
namespace {

std::string hex16(const Id16& id) {
  return to_hex(id.data(), id.size());
}

[[noreturn]] void refuse(const std::string& source, const std::string& why) {
  fail(ErrorKind::integrity, "fetch replica from", source, why);
}

// Every target of `image` that B committed a generation to; a record B cannot read is skipped
// with a warning (it may not stop a recovery, and it proves nothing either way).
std::vector<TargetState> load_records(const std::filesystem::path& image) {
  std::vector<TargetState> out;
  std::filesystem::path targets = target_state_dir(image, "x").parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(targets, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(targets, ec)) {
    if (!e.is_directory(ec)) continue;
    TargetState ts(image, e.path().filename());
    try {
      if (ts.load() && ts.record.generation > 0) out.push_back(std::move(ts));
    } catch (const Error& err) {
      log::warn("ignoring B's record {}: {}", ts.dir().native(), err.what());
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> check_against_b_records(const std::filesystem::path& image,
                                                   const Manifest& m, const std::string& source) {
  std::vector<TargetState> records = load_records(image);
  if (records.empty()) return std::nullopt;
  const ManifestHeader& c = m.header;
  const std::string c_uuid = format_uuid(c.luks_uuid);
  const std::string found = fmt::format("generation {} of {}", c.generation, format_time(c.time));
  // The record of SOURCE as written, else the one whose replica C's manifest names.
  const TargetState* mine = nullptr;
  for (const TargetState& ts : records)
    if (ts.record.dest == source) mine = &ts;
  if (!mine)
    for (const TargetState& ts : records)
      if (ts.record.has_replica_id && ts.record.replica_id == c.replica_id) mine = &ts;
  if (mine) {
    const TargetState& ts = *mine;
    const TargetRecord& r = ts.record;
    if (!r.uuid.empty() && r.uuid != c_uuid)
      refuse(source, fmt::format("{} holds a replica of another vault (LUKS UUID {}, {}); B's "
                                 "record {} says this vault is {}",
                                 source, c_uuid, found, ts.dir().native(), r.uuid));
    if (r.has_replica_id && r.replica_id != c.replica_id)
      refuse(source, fmt::format("{} holds another replica of this vault (replica id {}, {}) than "
                                 "the one B keeps there (replica id {}, B's record {}): it was "
                                 "swapped",
                                 source, hex16(c.replica_id), found, hex16(r.replica_id),
                                 ts.dir().native()));
    const std::string committed =
        fmt::format("B committed generation {} of {} there (B's record {})", r.generation,
                    format_time(r.time), ts.dir().native());
    if (c.generation == r.generation && m.mac == r.manifest_mac)
      return fmt::format("C's manifest is the one B recorded for target {} ({})", r.name, found);
    if (c.generation > r.generation) {
      // Newer than B's record: B died between C's commit and its own record, or the record
      // was restored from an older copy of B. Only the vault's key can make such a manifest;
      // the MAC check that follows decides.
      if (auto pending = ts.load_manifest(c.generation); pending && pending->mac == m.mac)
        return fmt::format(
            "C holds generation {}, which B committed for target {} but did not "
            "record",
            c.generation, r.name);
      return fmt::format("C holds {}, newer than B's record of target {} (generation {})", found,
                         r.name, r.generation);
    }
    if (auto h = ts.find_in_history(m.mac))
      refuse(source, fmt::format("{} was rolled back: it holds generation {} of {}; {}", source,
                                 h->generation, format_time(h->time), committed));
    if (c.generation < r.generation)
      refuse(source, fmt::format("{} was rolled back: it holds {}; {}", source, found, committed));
    refuse(source,
           fmt::format("the manifest on {} ({}) is not the one {}", source, found, committed));
  }
  // No record of this replica: B's records still say which vault it is and which replicas B
  // keeps.
  std::string vault = records.front().record.uuid;
  for (const TargetState& ts : records)
    if (ts.record.uuid == c_uuid) vault = c_uuid;
  if (!vault.empty() && vault != c_uuid)
    refuse(source, fmt::format("{} holds a replica of another vault (LUKS UUID {}, {}); B's "
                               "record {} says this vault is {}",
                               source, c_uuid, found, records.front().dir().native(), vault));
  std::string kept;
  for (const TargetState& ts : records)
    kept += fmt::format("{}{} at {} (replica id {})", kept.empty() ? "" : ", ", ts.record.name,
                        ts.record.dest, hex16(ts.record.replica_id));
  refuse(source, fmt::format("{} holds a replica of this vault (replica id {}, {}) that B does not "
                             "keep: B's targets are {}; it was swapped",
                             source, hex16(c.replica_id), found, kept));
}

std::optional<PartialNote> read_partial_note(const std::filesystem::path& note) {
  std::error_code ec;
  if (!std::filesystem::exists(note, ec)) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(read_file(note), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;  // torn: the data is re-verified
  PartialNote n;
  n.uuid = j.value("uuid", std::string());
  n.replica_id = j.value("replica_id", std::string());
  n.generation = j.value("generation", std::uint64_t{0});
  n.time = j.value("time", std::int64_t{0});
  return n;
}

void check_against_partial_note(const PartialNote& note, const std::filesystem::path& partial,
                                const Manifest& m, const std::string& source) {
  const ManifestHeader& c = m.header;
  const std::string earlier =
      fmt::format("the interrupted fetch in {} had generation {} of {}", partial.native(),
                  note.generation, format_time(note.time));
  if (!note.uuid.empty() && note.uuid != format_uuid(c.luks_uuid))
    refuse(source, fmt::format("{} now holds a replica of another vault (LUKS UUID {}); {} of "
                               "vault {} (remove it to fetch this one)",
                               source, format_uuid(c.luks_uuid), earlier, note.uuid));
  if (!note.replica_id.empty() && note.replica_id != hex16(c.replica_id))
    refuse(source, fmt::format("{} now holds another replica of this vault (replica id {}); {} "
                               "of replica {} (remove it to fetch this one)",
                               source, hex16(c.replica_id), earlier, note.replica_id));
  if (c.generation < note.generation)
    refuse(source, fmt::format("{} was rolled back: it now holds generation {} of {}; {}", source,
                               c.generation, format_time(c.time), earlier));
}

}  // namespace coffer::replicate
