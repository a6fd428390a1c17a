// `coffer -n replicate`: what a run would send, from B's record alone. Nothing is written on B,
// C is not contacted (contacting it could apply a committed journal there), no key is needed.
#include <fcntl.h>
#include <sys/stat.h>
#include <chrono>

#include "change_scan.hpp"
#include "coffer/replicate/replicate.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "target_state.hpp"

namespace coffer::replicate {

ReplicateResult preview(const ReplicateOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  refuse_open_vault(o.vault);
  const std::uint32_t D = check_block_size(o.target.block_size);
  TargetState ts(o.vault.image, o.target.name);
  ts.load();
  ReplicateResult res;
  res.target = o.target.name;
  res.dest = o.target.dest;
  res.base_generation = ts.record.generation;
  res.generation = ts.record.generation + 1;
  std::vector<Hash256> entries;
  std::optional<Digest> digest = Digest{D, 0, {}};
  if (ts.record.generation > 0) {
    if (auto m = ts.load_manifest(ts.record.generation)) entries = std::move(m->entries);
    digest = ts.load_digest(ts.record.generation, D);
  }
  UniqueFd fd = open_fd(o.vault.image, O_RDONLY);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat", o.vault.image, errno);
  res.image_size = static_cast<std::uint64_t>(st.st_size);
  res.block_size = D;
  const Geometry g = Geometry::make(res.image_size, D, kManifestBlockSize);
  res.blocks = g.detect_blocks();
  res.full_compare = !digest;
  ScanInput in{fd.get(), o.vault.image, g, digest ? &*digest : nullptr, &entries, o.threads};
  ScanOutput out;
  scan_changes(in, out, [&](ChunkChanges& cc) {
    for_each_run(cc, out.digest, D, res.image_size, [&](const ChangedRun& run) {
      res.blocks_changed += run.blocks;
      (run.zero ? res.bytes_zeroed : res.bytes_changed) += run.length;
    });
  });
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::debug("preview assumes {} holds generation {} as B recorded", o.target.dest,
             ts.record.generation);
  return res;
}

}  // namespace coffer::replicate
