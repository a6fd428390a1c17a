// `coffer replica status IMAGE DEST`, and how a DEST names a target.
#include <fmt/format.h>
#include <sodium.h>

#include "client.hpp"
#include "coffer/replicate/replicate.hpp"
#include "coffer/util/units.hpp"

namespace coffer::replicate {

TargetSpec resolve_target(std::string_view arg, const std::vector<config::Target>& configured,
                          std::optional<std::uint64_t> block_size) {
  TargetSpec t;
  const config::Target* match = nullptr;
  for (const auto& c : configured)
    if (c.name == arg || c.dest == arg) match = &c;
  if (match) {
    t.name = match->name;
    t.dest = match->dest;
    t.block_size = check_block_size(match->block_size);
    t.remote_command = match->remote_command;
  } else {
    Destination d = parse_destination(arg);
    t.dest = d.remote ? format_remote(*d.remote) : d.dir.native();
    // A stable name for a DEST given on the command line: the same DEST finds the same state.
    unsigned char h[8];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(t.dest.data()),
                       t.dest.size(), nullptr, 0);
    t.name = "dest-" + to_hex(h, sizeof h);
  }
  if (block_size) t.block_size = check_block_size(*block_size);
  return t;
}

StatusReport replica_status(const VaultFacts& vault, const TargetSpec& target) {
  StatusReport r;
  r.target = target.name;
  r.dest = target.dest;
  TargetState ts(vault.image, target.name);
  r.state_dir = ts.dir();
  if (ts.load()) {
    const TargetRecord& rec = ts.record;
    r.recorded = rec.generation > 0;
    r.b_record = {rec.generation, rec.time, rec.image_size};
    r.block_size = rec.detect_block_size;
    if (rec.detect_block_size)
      r.blocks = (rec.image_size + rec.detect_block_size - 1) / rec.detect_block_size;
    if (rec.last_run) {
      r.last_result = rec.last_run->ok ? "ok" : "failed: " + rec.last_run->message;
      r.last_run_time = rec.last_run->time;
      r.last_bytes_sent = rec.last_run->bytes_sent;
    }
    if (rec.last_verify)
      r.last_verify = rec.last_verify->ok ? "ok" : "failed: " + rec.last_verify->message;
  }
  ClientSession s(target);
  ReplicaState st = s.hello();
  s.bye();
  r.recovered_generation = st.recovered_generation;
  r.replica_present = st.kind == DirKind::replica;
  r.c_image_size = st.image_size;
  if (st.partial) r.partial_bytes = st.partial->bytes;
  if (st.manifest)
    r.c_manifest =
        GenerationInfo{st.manifest->generation, st.manifest->time, st.manifest->image_size};
  if (st.kind == DirKind::foreign) {
    r.mismatch = "not a coffer replica: " + st.detail;
    return r;
  }
  Assessment a = assess(ts, st, target.dest);
  r.matches = a.standing == Standing::matches || a.standing == Standing::next_pending;
  if (a.standing == Standing::missing || a.standing == Standing::mismatch)
    r.mismatch = a.explanation;
  if (r.matches && st.manifest && st.image_size != st.manifest->image_size) {
    r.matches = false;
    r.mismatch = fmt::format("C's image is {} bytes but its manifest says {}",
                             st.image_size ? std::to_string(*st.image_size) : "missing",
                             st.manifest->image_size);
  }
  return r;
}

}  // namespace coffer::replicate
