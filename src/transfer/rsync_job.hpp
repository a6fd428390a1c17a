// librsync, wrapped: signatures of B's previous version, deltas on A, patches on B. The one file
// that touches rs_job_t and rs_signature_t; librsync's rs_result codes become coffer::Errors
// naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace coffer::transfer {

using ByteSink = std::function<void(std::span<const std::byte>)>;

// A running librsync job: input is pushed in, output comes out through the sink.
class RsyncJob {
 public:
  RsyncJob(RsyncJob&&) noexcept;
  RsyncJob& operator=(RsyncJob&&) noexcept;
  ~RsyncJob();

  // Signature of a basis of `basis_size` bytes (block length about its square root, minimal
  // safe strong sums: small signatures for the wire).
  static RsyncJob signature(std::uint64_t basis_size, std::filesystem::path shown);
  // Patch that copies from `basis_fd` (borrowed; must outlive the job).
  static RsyncJob patch(int basis_fd, std::filesystem::path shown);

  void feed(std::span<const std::byte> in, const ByteSink& out);
  // No more input: runs the job to its end. Throws if the input was truncated.
  void finish(const ByteSink& out);

  struct State;  // opaque; public for the library's callbacks

 private:
  explicit RsyncJob(std::unique_ptr<State> s);
  void run(std::span<const std::byte> in, bool eof, const ByteSink& out);
  std::unique_ptr<State> state_;
  friend class SignatureLoader;
  friend class DeltaJob;
};

// The whole signature of an open file (read with pread from its start).
std::string file_signature(int fd, const std::filesystem::path& shown);

// Receives a signature (as bytes from the wire), then indexes it for a delta.
class SignatureLoader {
 public:
  explicit SignatureLoader(std::filesystem::path shown);
  ~SignatureLoader();
  void feed(std::span<const std::byte> in);
  void finish();  // loads and builds the hash table

 private:
  struct State;
  std::unique_ptr<State> state_;
  friend class DeltaJob;
};

// Delta of new data against a loaded signature.
class DeltaJob {
 public:
  DeltaJob(SignatureLoader& sig, std::filesystem::path shown);
  ~DeltaJob();
  void feed(std::span<const std::byte> in, const ByteSink& out) { job_.feed(in, out); }
  void finish(const ByteSink& out) { job_.finish(out); }

 private:
  RsyncJob job_;
};

}  // namespace coffer::transfer
