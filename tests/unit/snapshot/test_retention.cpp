// Table tests of the retention policy: restic's semantics on UTC calendar periods.
#include <gtest/gtest.h>

#include <set>

#include "coffer/snapshot/layout.hpp"
#include "coffer/snapshot/retention.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/units.hpp"

using namespace coffer::snapshot;
using coffer::CalendarDuration;

namespace {

std::time_t at(int y, int mo, int d, int h = 3, int mi = 0, int s = 0) {
  return coffer::utc_time(y, mo, d, h, mi, s);
}

RetentionCandidate snap(std::time_t t) {
  return {format_timestamp(t), t};
}

std::vector<RetentionCandidate> daily_from(std::time_t first, int days) {
  std::vector<RetentionCandidate> out;
  for (int i = 0; i < days; ++i) out.push_back(snap(first + std::time_t{86400} * i));
  return out;
}

std::set<std::string> kept(const std::vector<RetentionDecision>& ds) {
  std::set<std::string> out;
  for (const auto& d : ds)
    if (d.keep()) out.insert(d.name);
  return out;
}

std::set<std::string> names(std::initializer_list<std::time_t> ts) {
  std::set<std::string> out;
  for (auto t : ts) out.insert(format_timestamp(t));
  return out;
}

std::vector<std::string> reasons_of(const std::vector<RetentionDecision>& ds, std::time_t t) {
  std::vector<std::string> out;
  for (const auto& d : ds)
    if (d.name == format_timestamp(t))
      for (auto r : d.reasons) out.emplace_back(keep_rule_name(r));
  return out;
}

// Applies the policy, drops what it removes, applies it again: nothing more may go.
void expect_stable(const RetentionPolicy& p, const std::vector<RetentionCandidate>& in,
                   const std::optional<std::string>& latest = {}) {
  auto first = apply_retention(p, in, latest);
  std::vector<RetentionCandidate> rest;
  for (const auto& d : first)
    if (d.keep()) rest.push_back({d.name, d.time});
  auto second = apply_retention(p, rest, latest);
  ASSERT_EQ(second.size(), rest.size());
  for (const auto& d : second) EXPECT_TRUE(d.keep()) << d.name << " removed by the second run";
}

}  // namespace

TEST(Retention, AYearOfDailySnapshots) {
  auto in = daily_from(at(2025, 1, 1), 365);  // 2025-01-01 .. 2025-12-31, 03:00 UTC
  RetentionPolicy p;
  p.last = 1;
  p.daily = 7;
  p.weekly = 4;
  p.monthly = 12;
  p.yearly = 2;
  auto ds = apply_retention(p, in);
  ASSERT_EQ(ds.size(), 365u);
  EXPECT_EQ(ds.front().name, "2025-01-01T03-00-00Z");  // oldest first
  // 2025-12-31 is a Wednesday: ISO weeks end on Sun 28, 21, 14 December.
  std::set<std::string> want = names(
      {at(2025, 12, 25), at(2025, 12, 26), at(2025, 12, 27), at(2025, 12, 28), at(2025, 12, 29),
       at(2025, 12, 30), at(2025, 12, 31), at(2025, 12, 21), at(2025, 12, 14), at(2025, 1, 31),
       at(2025, 2, 28),  at(2025, 3, 31),  at(2025, 4, 30),  at(2025, 5, 31),  at(2025, 6, 30),
       at(2025, 7, 31),  at(2025, 8, 31),  at(2025, 9, 30),  at(2025, 10, 31), at(2025, 11, 30)});
  EXPECT_EQ(kept(ds), want);
  EXPECT_EQ(reasons_of(ds, at(2025, 12, 31)),
            (std::vector<std::string>{"last", "daily", "weekly", "monthly", "yearly"}));
  EXPECT_EQ(reasons_of(ds, at(2025, 12, 28)), (std::vector<std::string>{"daily", "weekly"}));
  EXPECT_EQ(reasons_of(ds, at(2025, 12, 14)), (std::vector<std::string>{"weekly"}));
  EXPECT_EQ(reasons_of(ds, at(2025, 2, 28)), (std::vector<std::string>{"monthly"}));
  EXPECT_TRUE(reasons_of(ds, at(2025, 12, 13)).empty());
  expect_stable(p, in);
}

TEST(Retention, GapsCountOnlyPeriodsThatHaveASnapshot) {
  std::vector<RetentionCandidate> in = {snap(at(2026, 1, 1)), snap(at(2026, 1, 2)),
                                        snap(at(2026, 1, 10)), snap(at(2026, 2, 15)),
                                        snap(at(2026, 2, 16))};
  RetentionPolicy p;
  p.daily = 3;
  EXPECT_EQ(kept(apply_retention(p, in)),
            names({at(2026, 2, 16), at(2026, 2, 15), at(2026, 1, 10)}));
  p = {};
  p.monthly = 1;
  p.weekly = 2;  // 16 Feb is a Monday, 15 Feb the Sunday before: two ISO weeks
  EXPECT_EQ(kept(apply_retention(p, in)), names({at(2026, 2, 16), at(2026, 2, 15)}));
  expect_stable(p, in);
}

TEST(Retention, SeveralPerDayKeepTheNewestOfEachPeriod) {
  std::vector<RetentionCandidate> in;
  for (int d = 1; d <= 3; ++d)
    for (int h : {1, 7, 13, 19}) in.push_back(snap(at(2026, 3, d, h, 30)));
  RetentionPolicy p;
  p.daily = 2;
  EXPECT_EQ(kept(apply_retention(p, in)), names({at(2026, 3, 3, 19, 30), at(2026, 3, 2, 19, 30)}));
  p = {};
  p.hourly = 5;
  EXPECT_EQ(kept(apply_retention(p, in)),
            names({at(2026, 3, 3, 19, 30), at(2026, 3, 3, 13, 30), at(2026, 3, 3, 7, 30),
                   at(2026, 3, 3, 1, 30), at(2026, 3, 2, 19, 30)}));
  p = {};
  p.last = 3;
  p.daily = 3;  // the newest snapshot counts for both rules; the daily ones reach back 3 days
  auto ds = apply_retention(p, in);
  EXPECT_EQ(kept(ds), names({at(2026, 3, 3, 19, 30), at(2026, 3, 3, 13, 30), at(2026, 3, 3, 7, 30),
                             at(2026, 3, 2, 19, 30), at(2026, 3, 1, 19, 30)}));
  EXPECT_EQ(reasons_of(ds, at(2026, 3, 3, 19, 30)), (std::vector<std::string>{"last", "daily"}));
  expect_stable(p, in);
}

TEST(Retention, PeriodsAreUtcCalendarPeriods) {
  // 23:59:59 and 00:00:00 UTC are different days; 30 June and 1 July different half-years.
  std::vector<RetentionCandidate> in = {snap(at(2026, 6, 30, 23, 59, 59)),
                                        snap(at(2026, 7, 1, 0, 0, 0))};
  RetentionPolicy p;
  p.daily = 2;
  EXPECT_EQ(kept(apply_retention(p, in)).size(), 2u);
  p = {};
  p.half_yearly = 2;
  EXPECT_EQ(kept(apply_retention(p, in)).size(), 2u);
  p = {};
  p.yearly = 2;
  EXPECT_EQ(kept(apply_retention(p, in)), names({at(2026, 7, 1, 0, 0, 0)}));
  // ISO weeks cross the new year: Mon 29 Dec 2025 and Sun 4 Jan 2026 are one week.
  in = {snap(at(2025, 12, 28)), snap(at(2025, 12, 29)), snap(at(2026, 1, 4)), snap(at(2026, 1, 5))};
  p = {};
  p.weekly = 2;
  EXPECT_EQ(kept(apply_retention(p, in)), names({at(2026, 1, 5), at(2026, 1, 4)}));
  // Monthly for two years, half-yearly 3: December, June, December.
  in.clear();
  for (int y : {2024, 2025})
    for (int m = 1; m <= 12; ++m) in.push_back(snap(at(y, m, 10)));
  p = {};
  p.half_yearly = 3;
  EXPECT_EQ(kept(apply_retention(p, in)),
            names({at(2025, 12, 10), at(2025, 6, 10), at(2024, 12, 10)}));
  expect_stable(p, in);
}

TEST(Retention, WithinIsMeasuredFromTheNewestSnapshot) {
  auto in = daily_from(at(2026, 1, 1, 12), 90);  // up to 2026-03-31 12:00
  RetentionPolicy p;
  p.within = CalendarDuration{0, 0, 10, 0};
  auto ds = apply_retention(p, in);
  // Strictly after 21 March 12:00: 22 .. 31 March.
  std::set<std::string> want;
  for (int d = 22; d <= 31; ++d) want.insert(format_timestamp(at(2026, 3, d, 12)));
  EXPECT_EQ(kept(ds), want);
  // A month back from 31 March is "31 February", normalised to 3 March (restic's AddDate).
  EXPECT_EQ(within_cutoff(at(2026, 3, 31, 12), CalendarDuration{0, 1, 0, 0}), at(2026, 3, 3, 12));
  EXPECT_EQ(within_cutoff(at(2026, 3, 31, 12), CalendarDuration{1, 0, 0, 36}), at(2025, 3, 30, 0));
  p.within = CalendarDuration{0, 1, 0, 0};
  EXPECT_EQ(kept(apply_retention(p, in)).size(), 28u);  // 4 .. 31 March
  expect_stable(p, in);
}

TEST(Retention, SnapshotsInTheFutureAreJudgedByTheirOwnTimes) {
  // A source clock set years ahead named two snapshots in 2031; nothing reads today's clock:
  // they are simply the newest, and `within` counts back from the newest of them.
  auto in = daily_from(at(2026, 1, 1), 10);
  in.push_back(snap(at(2031, 5, 1)));
  in.push_back(snap(at(2031, 5, 3)));
  RetentionPolicy p;
  p.within = CalendarDuration{0, 0, 7, 0};
  EXPECT_EQ(kept(apply_retention(p, in)), names({at(2031, 5, 3), at(2031, 5, 1)}));
  p = {};
  p.daily = 3;
  p.yearly = 3;
  auto ds = apply_retention(p, in);
  EXPECT_EQ(kept(ds), names({at(2031, 5, 3), at(2031, 5, 1), at(2026, 1, 10)}));
  EXPECT_EQ(reasons_of(ds, at(2026, 1, 10)), (std::vector<std::string>{"daily", "yearly"}));
  expect_stable(p, in);
}

TEST(Retention, AClockJumpBackKeepsWhatLatestNames) {
  // Snapshots were made daily in March 2026; then the clock jumped back to 2025, and the last
  // backup was published with an older name. hosts/NAME/latest names it; it must stay.
  auto in = daily_from(at(2026, 3, 1), 10);
  RetentionCandidate jumped = snap(at(2025, 6, 1));
  in.push_back(jumped);
  RetentionPolicy p;
  p.last = 2;
  auto ds = apply_retention(p, in, jumped.name);
  EXPECT_EQ(kept(ds), names({at(2026, 3, 10), at(2026, 3, 9), at(2025, 6, 1)}));
  EXPECT_EQ(reasons_of(ds, at(2025, 6, 1)), (std::vector<std::string>{"latest"}));
  // A jump forward and back within one day: the newest of the day by name is kept.
  in = {snap(at(2026, 4, 1, 10)), snap(at(2026, 4, 1, 23)), snap(at(2026, 4, 1, 11))};
  p = {};
  p.daily = 1;
  EXPECT_EQ(kept(apply_retention(p, in, in.back().name)),
            names({at(2026, 4, 1, 23), at(2026, 4, 1, 11)}));
  expect_stable(p, in, in.back().name);
}

TEST(Retention, TheNewestIsAlwaysKeptAndAnEmptyPolicyIsRefused) {
  auto in = daily_from(at(2026, 1, 1), 40);
  for (int rule = 0; rule < 8; ++rule) {
    RetentionPolicy p;
    int* counts[] = {&p.last,    &p.hourly,      &p.daily, &p.weekly,
                     &p.monthly, &p.half_yearly, &p.yearly};
    if (rule < 7)
      *counts[rule] = 1;
    else
      p.within = CalendarDuration{0, 0, 0, 1};
    auto ds = apply_retention(p, in);
    EXPECT_TRUE(ds.back().keep()) << p.describe();
    EXPECT_EQ(kept(ds).size(), 1u) << p.describe();
  }
  RetentionPolicy empty;
  EXPECT_TRUE(empty.empty());
  try {
    apply_retention(empty, in);
    FAIL() << "an empty policy was applied";
  } catch (const coffer::Error& e) {
    EXPECT_EQ(e.kind(), coffer::ErrorKind::usage);
  }
  RetentionPolicy one;
  one.last = 1;
  EXPECT_TRUE(apply_retention(one, {}).empty());
}

TEST(Retention, DescribeAndDurations) {
  RetentionPolicy p;
  p.last = 1;
  p.daily = 7;
  p.half_yearly = 2;
  p.within = CalendarDuration{1, 6, 0, 0};
  EXPECT_EQ(p.describe(), "last 1, daily 7, half-yearly 2, within 1y6m");
  EXPECT_EQ(coffer::parse_calendar_duration("2y3m4d5h", "d"), (CalendarDuration{2, 3, 4, 5}));
  EXPECT_EQ(coffer::parse_calendar_duration("36h", "d"), (CalendarDuration{0, 0, 0, 36}));
  for (const char* bad : {"", "5", "d", "3x", "1d1d", "1d2y", "0d", "-1d", "1.5d"})
    EXPECT_THROW(coffer::parse_calendar_duration(bad, "--keep-within"), coffer::Error) << bad;
}
