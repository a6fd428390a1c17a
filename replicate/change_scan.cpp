#include "change_scan.hpp"

#include <atomic>

#include "coffer/replicate/manifest.hpp"

namespace coffer::replicate {

void scan_changes(const ScanInput& in, ScanOutput& out,
                  const std::function<void(ChunkChanges&)>& consume) {
  const Geometry& g = in.geometry;
  const std::uint64_t D = g.detect, M = g.manifest;
  out.digest.assign(g.detect_blocks(), Hash128{});
  out.entries.assign(g.manifest_blocks(), Hash256{});
  const Hash128 zero_fast = zero_fast_hash(g.detect);
  const Hash256 zero_strong = zero_block_hash(g.manifest);
  auto base_entry = [&](std::uint64_t i) -> const Hash256& {
    return in.base_entries && i < in.base_entries->size() ? (*in.base_entries)[i] : zero_strong;
  };
  auto base_fast = [&](std::uint64_t i) -> const Hash128& {
    return i < in.base_digest->blocks.size() ? in.base_digest->blocks[i] : zero_fast;
  };
  BufferPool buffers;
  std::atomic<std::uint64_t> strong_bytes{0};
  unsigned threads = hashing_threads(in.threads);

  auto work = [&](std::uint64_t index) {
    ChunkChanges r;
    Chunk& c = r.chunk;
    c.index = index;
    c.data = buffers.take();
    std::uint64_t offset = index * g.chunk;
    std::uint64_t length = std::min(g.chunk, g.image_size - offset);
    read_chunk(in.fd, in.shown, offset, length, g.chunk, std::max(D, M), c);
    const std::uint64_t nd = Geometry::blocks(length, D), nm = Geometry::blocks(length, M);
    const std::uint64_t first_d = offset / D, first_m = offset / M;
    std::vector<char> changed(nd, 0);
    const std::vector<char> d_data = c.data_map(D, nd), m_data = c.data_map(M, nm);
    for (std::uint64_t k = 0; k < nd; ++k) {
      Hash128 h = d_data[k] ? fast_hash(c.bytes(k * D, D)) : zero_fast;
      out.digest[first_d + k] = h;
      if (in.base_digest && h != base_fast(first_d + k)) changed[k] = 1;
    }
    // Detection blocks overlapping manifest block j (D <= M: a range; D > M: the one holding it).
    auto detect_range = [&](std::uint64_t j) {
      std::uint64_t b = j * M / D, e = std::max(b + 1, (j + 1) * M / D);
      return std::pair{b, std::min(e, nd)};
    };
    for (std::uint64_t j = 0; j < nm; ++j) {
      auto [b, e] = detect_range(j);
      bool rehash = !in.base_digest;
      for (std::uint64_t k = b; k < e && !rehash; ++k) rehash = changed[k];
      Hash256 entry = base_entry(first_m + j);
      if (rehash) {
        if (m_data[j]) {
          entry = strong_hash(c.bytes(j * M, M));
          strong_bytes += M;
        } else {
          entry = zero_strong;
        }
        if (!in.base_digest && entry != base_entry(first_m + j))
          for (std::uint64_t k = b; k < e; ++k) changed[k] = 1;
      }
      out.entries[first_m + j] = entry;
    }
    for (std::uint64_t k = 0; k < nd; ++k)
      if (changed[k]) r.changed.push_back(static_cast<std::uint32_t>(k));
    if (r.changed.empty()) buffers.give(std::move(c.data));
    return r;
  };
  run_ordered<ChunkChanges>(g.chunks(), threads, threads * 2 + 2, work,
                            [&](std::uint64_t, ChunkChanges r) {
                              if (r.changed.empty()) return;
                              consume(r);
                              buffers.give(std::move(r.chunk.data));
                            });
  out.bytes_hashed_strong = strong_bytes;
}

void for_each_run(const ChunkChanges& cc, const std::vector<Hash128>& digest, std::uint32_t D,
                  std::uint64_t image_size, const std::function<void(const ChangedRun&)>& f) {
  const Chunk& c = cc.chunk;
  const std::uint64_t first = c.offset / D;
  const Hash128 zero_fast = zero_fast_hash(D);
  const std::uint64_t max_blocks = std::max<std::uint64_t>(1, kMaxRun / D);
  for (std::size_t i = 0; i < cc.changed.size();) {
    const std::uint32_t k0 = cc.changed[i];
    const bool zero = digest[first + k0] == zero_fast;
    std::size_t j = i + 1;
    while (j < cc.changed.size() && j - i < max_blocks && cc.changed[j] == cc.changed[j - 1] + 1 &&
           (digest[first + cc.changed[j]] == zero_fast) == zero)
      ++j;
    ChangedRun run;
    run.zero = zero;
    run.offset = c.offset + std::uint64_t{k0} * D;
    const std::uint64_t end =
        std::min(c.offset + (std::uint64_t{cc.changed[j - 1]} + 1) * D, image_size);
    run.length = static_cast<std::uint32_t>(end - run.offset);
    run.blocks = j - i;
    if (!zero) run.data = c.bytes(std::uint64_t{k0} * D, run.length);
    f(run);
    i = j;
  }
}

}  // namespace coffer::replicate
