#include "coffer/util/units.hpp"

#include <fmt/format.h>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "coffer/util/error.hpp"

namespace coffer {

std::uint64_t parse_size(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    fail(ErrorKind::usage, "parse size", what, fmt::format("'{}' {}", text, why));
  };
  if (text.empty()) bad("is empty");
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) bad("does not start with a number");
  double value = 0;
  try {
    value = std::stod(std::string(text.substr(0, i)));
  } catch (const std::exception&) {
    bad("is not a number");
  }
  std::string_view suffix = text.substr(i);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.remove_suffix(1);
  if (suffix.size() == 2 && (suffix[1] == 'i' || suffix[1] == 'I')) suffix.remove_suffix(1);
  double mult = 1;
  if (!suffix.empty()) {
    if (suffix.size() != 1) bad("has an unknown unit (use K, M, G or T)");
    switch (suffix[0]) {
      case 'k':
      case 'K':
        mult = 1024.0;
        break;
      case 'm':
      case 'M':
        mult = 1024.0 * 1024;
        break;
      case 'g':
      case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
      case 't':
      case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
      default:
        bad("has an unknown unit (use K, M, G or T)");
    }
  }
  double bytes = value * mult;
  if (!std::isfinite(bytes) || bytes >= 1.8e19) bad("is too large");
  return static_cast<std::uint64_t>(std::llround(bytes));
}

std::string format_size(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string to_hex(const void* data, std::size_t size) {
  static const char digits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

CalendarDuration parse_calendar_duration(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    fail(ErrorKind::usage, "parse duration", what, fmt::format("'{}' {}", text, why));
  };
  if (text.empty()) bad("is empty (use e.g. 30d, 1y6m, 36h)");
  CalendarDuration d;
  static constexpr std::string_view kUnits = "ymdh";
  std::size_t next_unit = 0;  // units must come in the order y, m, d, h, each once
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    long long v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      v = v * 10 + (text[i] - '0');
      if (v > 1000000) bad("is too large");
      ++i;
    }
    if (i == start) bad("needs a number before each unit (use e.g. 30d, 1y6m, 36h)");
    if (i == text.size()) bad("needs a unit after its last number: y, m, d or h");
    std::size_t u = kUnits.find(text[i]);
    if (u == std::string_view::npos) bad("has an unknown unit (use y, m, d or h)");
    if (u < next_unit) bad("has its units out of order or twice (write y, m, d, h in that order)");
    next_unit = u + 1;
    int* dst[] = {&d.years, &d.months, &d.days, &d.hours};
    *dst[u] = static_cast<int>(v);
    ++i;
  }
  if (d.zero()) bad("is zero");
  return d;
}

std::string format_calendar_duration(const CalendarDuration& d) {
  std::string out;
  if (d.years) out += fmt::format("{}y", d.years);
  if (d.months) out += fmt::format("{}m", d.months);
  if (d.days) out += fmt::format("{}d", d.days);
  if (d.hours || out.empty()) out += fmt::format("{}h", d.hours);
  return out;
}

std::int64_t utc_time(int year, int month, int day, int hour, int minute, int second) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<std::int64_t>(::timegm(&tm));
}

std::int64_t parse_utc_date(std::string_view text, std::string_view what) {
  auto bad = [&]() -> std::int64_t {
    fail(ErrorKind::usage, "parse date", what,
         fmt::format("'{}' is not a UTC date (2026-05-01, 2026-05-01T03:00:00Z)", text));
  };
  std::string t(text);
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) t.pop_back();
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, used = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3) return bad();
  if (static_cast<std::size_t>(used) < t.size()) {
    char sep = t[static_cast<std::size_t>(used)];
    if (sep != 'T' && sep != ' ') return bad();
    const char* tail = t.c_str() + used + 1;
    int rest = 0;
    int n = std::sscanf(tail, "%2d:%2d%n:%2d%n", &h, &mi, &rest, &s, &rest);
    if (n < 2 || tail[rest] != '\0') return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return bad();
  return utc_time(y, mo, d, h, mi, s);
}

}  // namespace coffer
