// Sizes, durations and UTC dates as users write them: "512M", "4G", "64K", "1.5T", "4096";
// "30d", "1y6m"; "2026-05-01", "2026-05-01T03:00:00Z".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coffer {

// Binary multiples (K = 1024). Throws Error(kind usage) naming `what` on a bad value.
std::uint64_t parse_size(std::string_view text, std::string_view what);
std::string format_size(std::uint64_t bytes);

std::string to_hex(const void* data, std::size_t size);

// A calendar duration as restic writes it: "30d", "1y6m", "36h", "2y3m4d5h" (years, months,
// days, hours; each at most once, in that order). Months and years are calendar steps, not a
// fixed number of seconds.
struct CalendarDuration {
  int years = 0, months = 0, days = 0, hours = 0;
  bool zero() const { return years == 0 && months == 0 && days == 0 && hours == 0; }
  bool operator==(const CalendarDuration&) const = default;
};
// Throws Error(kind usage) naming `what` on a bad value.
CalendarDuration parse_calendar_duration(std::string_view text, std::string_view what);
std::string format_calendar_duration(const CalendarDuration& d);

// Seconds since the epoch of a UTC calendar time (timegm: out-of-range fields are normalised).
std::int64_t utc_time(int year, int month, int day, int hour = 0, int minute = 0, int second = 0);
// "2026-05-01", "2026-05-01T03:00", "2026-05-01T03:00:00", "2026-05-01 03:00:00", an optional
// trailing "Z": always UTC. Throws Error(kind usage) naming `what` on a bad value.
std::int64_t parse_utc_date(std::string_view text, std::string_view what);

}  // namespace coffer
