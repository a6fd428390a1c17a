#include "coffer/snapshot/retention.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cstdint>

#include "coffer/util/error.hpp"

namespace coffer::snapshot {
namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::tm utc(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return tm;
}

// The calendar period (in UTC) a snapshot falls into, as a number unique per period. `index` is
// the snapshot's position newest first, which makes every snapshot its own "last" period.
std::int64_t period_of(KeepRule rule, std::time_t t, std::int64_t index) {
  std::tm tm = utc(t);
  std::int64_t year = tm.tm_year + 1900;
  switch (rule) {
    case KeepRule::last:
      return index;
    case KeepRule::hourly:
      return floor_div(t, 3600);
    case KeepRule::daily:
      return floor_div(t, 86400);
    case KeepRule::weekly: {
      // ISO weeks run Monday to Sunday; 1970-01-01 was a Thursday, so day d's Monday is
      // d - ((d + 3) mod 7). The Monday's day number names the week (and its ISO year).
      std::int64_t day = floor_div(t, 86400);
      return day - (((day + 3) % 7) + 7) % 7;
    }
    case KeepRule::monthly:
      return year * 12 + tm.tm_mon;
    case KeepRule::half_yearly:
      return year * 2 + (tm.tm_mon >= 6 ? 1 : 0);
    case KeepRule::yearly:
      return year;
    case KeepRule::within:
    case KeepRule::latest:
      break;
  }
  return 0;
}

}  // namespace

bool RetentionPolicy::empty() const {
  return last <= 0 && hourly <= 0 && daily <= 0 && weekly <= 0 && monthly <= 0 &&
         half_yearly <= 0 && yearly <= 0 && (!within || within->zero());
}

std::string RetentionPolicy::describe() const {
  std::string out;
  auto add = [&out](std::string_view name, int n) {
    if (n <= 0) return;
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", name, n);
  };
  add("last", last);
  add("hourly", hourly);
  add("daily", daily);
  add("weekly", weekly);
  add("monthly", monthly);
  add("half-yearly", half_yearly);
  add("yearly", yearly);
  if (within && !within->zero()) {
    if (!out.empty()) out += ", ";
    out += "within " + format_calendar_duration(*within);
  }
  return out.empty() ? std::string("nothing") : out;
}

std::string_view keep_rule_name(KeepRule r) {
  switch (r) {
    case KeepRule::last:
      return "last";
    case KeepRule::hourly:
      return "hourly";
    case KeepRule::daily:
      return "daily";
    case KeepRule::weekly:
      return "weekly";
    case KeepRule::monthly:
      return "monthly";
    case KeepRule::half_yearly:
      return "half-yearly";
    case KeepRule::yearly:
      return "yearly";
    case KeepRule::within:
      return "within";
    case KeepRule::latest:
      return "latest";
  }
  return "?";
}

std::time_t within_cutoff(std::time_t newest, const CalendarDuration& d) {
  std::tm tm = utc(newest);
  tm.tm_year -= d.years;
  tm.tm_mon -= d.months;
  tm.tm_mday -= d.days;
  tm.tm_hour -= d.hours;
  return ::timegm(&tm);  // normalises out-of-range fields the way restic's AddDate does
}

std::vector<RetentionDecision> apply_retention(const RetentionPolicy& policy,
                                               std::vector<RetentionCandidate> snapshots,
                                               const std::optional<std::string>& latest_link) {
  if (policy.empty())
    fail(ErrorKind::usage, "apply retention", "policy",
         "the policy keeps nothing (give at least one --keep-* rule or a non-zero [retention] "
         "count); refusing to remove every snapshot");
  // Newest first: the first snapshot met in a period is the newest one of that period.
  std::sort(snapshots.begin(), snapshots.end(), [](const auto& a, const auto& b) {
    return a.time != b.time ? a.time > b.time : a.name > b.name;
  });
  struct Bucket {
    KeepRule rule;
    int left;
    std::optional<std::int64_t> current;
  };
  std::array<Bucket, 7> buckets{{{KeepRule::last, policy.last, {}},
                                 {KeepRule::hourly, policy.hourly, {}},
                                 {KeepRule::daily, policy.daily, {}},
                                 {KeepRule::weekly, policy.weekly, {}},
                                 {KeepRule::monthly, policy.monthly, {}},
                                 {KeepRule::half_yearly, policy.half_yearly, {}},
                                 {KeepRule::yearly, policy.yearly, {}}}};
  std::optional<std::time_t> cutoff;
  if (!snapshots.empty() && policy.within && !policy.within->zero())
    cutoff = within_cutoff(snapshots.front().time, *policy.within);

  std::vector<RetentionDecision> out;
  out.reserve(snapshots.size());
  for (std::size_t i = 0; i < snapshots.size(); ++i) {
    RetentionDecision d{snapshots[i].name, snapshots[i].time, {}};
    // Every rule sees every snapshot: a snapshot kept by one rule still fills the others' slots.
    for (auto& b : buckets) {
      if (b.left <= 0) continue;
      std::int64_t period = period_of(b.rule, d.time, static_cast<std::int64_t>(i));
      if (b.current == period) continue;
      b.current = period;
      --b.left;
      d.reasons.push_back(b.rule);
    }
    if (cutoff && d.time > *cutoff) d.reasons.push_back(KeepRule::within);
    if (d.reasons.empty() && latest_link && *latest_link == d.name)
      d.reasons.push_back(KeepRule::latest);
    out.push_back(std::move(d));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace coffer::snapshot
