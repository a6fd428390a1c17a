// What a long transfer shows while it runs: one rewritten line on a terminal (stderr, at most 4
// times a second: done of total, bytes, rate, ETA) and, with --json, a "status" line a second.
// Shared by `restore` (entries) and `replica fetch` (bytes).
#pragma once

#include <chrono>
#include <cstdint>

#include "context.hpp"

namespace coffer::cli {

class Progress {
 public:
  enum class Unit { entries, bytes };
  // The terminal line only where someone watches: stderr is a terminal, no --json, no -q, and
  // `allowed` (restore turns it off while it lists actions).
  Progress(const Context& ctx, Unit unit, bool allowed = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of `total` (entries, or bytes for Unit::bytes); `bytes` moved so far.
  void update(std::uint64_t done, std::uint64_t total, std::uint64_t bytes);

 private:
  using Clock = std::chrono::steady_clock;
  void draw(std::uint64_t done, std::uint64_t total, std::uint64_t bytes, double s);
  void emit_status(std::uint64_t done, std::uint64_t total, std::uint64_t bytes, double s) const;

  const Context& ctx_;
  Unit unit_;
  bool on_;
  bool drawn_ = false;
  Clock::time_point start_, last_draw_, last_status_;
};

}  // namespace coffer::cli
