#include "progress.hpp"

#include <unistd.h>
#include <cstdio>

#include "coffer/util/units.hpp"

namespace coffer::cli {
namespace {

double eta_seconds(std::uint64_t done, std::uint64_t total, double s) {
  return done > 0 && done < total
             ? s * static_cast<double>(total - done) / static_cast<double>(done)
             : 0;
}

}  // namespace

Progress::Progress(const Context& ctx, Unit unit, bool allowed)
    : ctx_(ctx),
      unit_(unit),
      on_(allowed && ::isatty(STDERR_FILENO) == 1 && !ctx.global.json && !ctx.global.quiet),
      start_(Clock::now()),
      last_draw_(start_),
      last_status_(start_) {}

Progress::~Progress() {
  if (drawn_) std::fputs("\n", stderr);
}

void Progress::update(std::uint64_t done, std::uint64_t total, std::uint64_t bytes) {
  auto now = Clock::now();
  double s = std::chrono::duration<double>(now - start_).count();
  if (on_ && (!drawn_ || now - last_draw_ >= std::chrono::milliseconds(250) || done >= total)) {
    last_draw_ = now;
    draw(done, total, bytes, s);
  }
  if (ctx_.global.json && now - last_status_ >= std::chrono::seconds(1)) {
    last_status_ = now;
    emit_status(done, total, bytes, s);
  }
}

void Progress::draw(std::uint64_t done, std::uint64_t total, std::uint64_t bytes, double s) {
  drawn_ = true;
  double rate = s > 0 ? static_cast<double>(bytes) / s : 0;
  std::string rate_text = format_size(static_cast<std::uint64_t>(rate));
  double eta = eta_seconds(done, total, s);
  if (unit_ == Unit::entries)
    std::fprintf(stderr, "\r%llu/%llu entries, %s, %s/s, ETA %.0f s   ",
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                 format_size(bytes).c_str(), rate_text.c_str(), eta);
  else
    std::fprintf(stderr, "\r%s of %s, %s/s, ETA %.0f s   ", format_size(done).c_str(),
                 format_size(total).c_str(), rate_text.c_str(), eta);
}

void Progress::emit_status(std::uint64_t done, std::uint64_t total, std::uint64_t bytes,
                           double s) const {
  if (unit_ == Unit::entries) {
    ctx_.emit_json({{"type", "status"},
                    {"entries_done", done},
                    {"entries_total", total},
                    {"bytes_done", bytes}});
    return;
  }
  ctx_.emit_json({{"type", "status"},
                  {"bytes_done", done},
                  {"bytes_total", total},
                  {"bytes_per_second", s > 0 ? static_cast<double>(bytes) / s : 0.0},
                  {"eta_seconds", eta_seconds(done, total, s)}});
}

}  // namespace coffer::cli
