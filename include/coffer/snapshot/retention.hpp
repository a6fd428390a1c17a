// Which snapshots a retention policy keeps (restic's `forget` semantics, docs/snapshots.md).
//
// Everything is computed from the snapshots' own times (their UTC names), never from the wall
// clock: periods are calendar periods in UTC, the newest snapshot of each period is the one kept,
// every rule looks at every snapshot (so one snapshot kept as "daily" also fills a "weekly" and a
// "monthly" slot), and `within` is measured back from the newest snapshot.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/units.hpp"

namespace coffer::snapshot {

struct RetentionPolicy {
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, half_yearly = 0, yearly = 0;
  std::optional<CalendarDuration> within;
  // Keeps nothing: refused by apply_retention, since it would mean "remove everything".
  bool empty() const;
  // "last 1, daily 7, within 30d"
  std::string describe() const;
};

// Why a snapshot is kept. `latest` protects the snapshot that hosts/NAME/latest names when no rule
// keeps it (after a clock that went backwards, it is not the newest by name).
enum class KeepRule { last, hourly, daily, weekly, monthly, half_yearly, yearly, within, latest };
std::string_view keep_rule_name(KeepRule r);

struct RetentionCandidate {
  std::string name;  // the snapshot's directory name (its UTC start time)
  std::time_t time = 0;
};

struct RetentionDecision {
  std::string name;
  std::time_t time = 0;
  std::vector<KeepRule> reasons;  // empty: removed
  bool keep() const { return !reasons.empty(); }
};

// Decides every snapshot of one host (complete ones only; the caller never passes an in-progress
// one). Returned oldest first. An empty policy throws Error(kind usage). The newest snapshot is
// always kept (every non-empty policy keeps it), and so is `latest_link` if given.
std::vector<RetentionDecision> apply_retention(const RetentionPolicy& policy,
                                               std::vector<RetentionCandidate> snapshots,
                                               const std::optional<std::string>& latest_link = {});

// The start of the `within` window: `newest` moved back by `d` in UTC calendar steps (a month
// back from 31 March is "31 February", normalised to 3 March, as restic does).
std::time_t within_cutoff(std::time_t newest, const CalendarDuration& d);

}  // namespace coffer::snapshot
