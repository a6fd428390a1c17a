// What `coffer run` tells the outside world after a chain: the run's summary, kept between runs
// as a state file (for `coffer status` and the Prometheus counters), written as a node_exporter
// textfile, pinged to a healthchecks-style URL and mailed through `sendmail -t`. Formats:
// docs/report.md. Nothing here prints: src/cli decides what a human sees.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace coffer::report {

// One step's outcome. `skipped`: a failing `before` hook, so no backup was tried.
enum class Result { ok, warnings, failed, skipped };
std::string_view result_name(Result r);
Result parse_result(std::string_view name);  // unknown text: failed

struct SourceRun {
  std::string name, path;  // path as configured: local or [user@]host:PATH
  Result result = Result::ok;
  std::string error;             // the failure's one line, empty on success
  std::string snapshot;          // the snapshot made this run (UTC name), empty if none
  std::uint64_t bytes_sent = 0;  // protocol bytes A sent to B this run
  std::uint64_t snapshots = 0;   // complete snapshots of the source after retention
};

struct TargetRun {
  std::string name, dest;
  Result result = Result::ok;
  std::string error;
  std::uint64_t generation = 0;  // committed on C (0: never)
  std::uint64_t bytes_sent = 0;  // B to C this run
};

struct RunSummary {
  std::string hostname;
  std::int64_t started = 0;  // Unix seconds
  double seconds = 0;
  int exit_code = 0;
  std::vector<SourceRun> sources;
  std::vector<TargetRun> targets;
  std::vector<std::string> log_tail;  // the run's last log lines, oldest first
  bool failed() const { return exit_code != 0 && exit_code != 3; }
  std::string result_word() const;  // "success", "warnings" or "FAILED"
};

// What is kept between runs for every source and target (docs/report.md, "State file").
struct ItemState {
  std::string kind;  // "source" or "target"
  std::string name;
  std::int64_t last_success = 0;  // Unix seconds, 0: never
  std::int64_t last_attempt = 0;
  std::string last_result;  // result_name of the last attempt
  std::string last_error;
  std::uint64_t bytes_last = 0;   // bytes sent by the last success
  std::uint64_t bytes_total = 0;  // bytes sent by every run counted in this state (a counter)
  std::uint64_t generation = 0;   // targets
  std::uint64_t snapshots = 0;    // sources
  std::string snapshot;           // sources: newest snapshot made by a run
};

struct RunState {
  std::int64_t last_run = 0;
  double last_run_seconds = 0;
  int last_exit_code = 0;
  std::vector<ItemState> items;
  const ItemState* find(std::string_view kind, std::string_view name) const;
};

// Missing file: an empty state. A damaged one: Error naming the file.
RunState load_state(const std::filesystem::path& file);
// Folds a run into the state (failures keep the last success) and writes it atomically.
RunState record_run(const std::filesystem::path& file, const RunSummary& run);

// The node_exporter textfile text for a state, and its atomic replacement (temp + rename in the
// same directory, so the exporter never reads half a file).
std::string prometheus_text(const RunState& state);
void write_prometheus(const std::filesystem::path& file, const RunState& state);

// healthchecks.io-style pings: `<url>/start`, `<url>`, `<url>/fail` (body: the log tail).
// Throws Error naming the URL when the request fails or the answer is not 2xx.
enum class Ping { start, success, failure };
void ping(const std::string& url, Ping kind, std::string_view body,
          std::chrono::seconds timeout = std::chrono::seconds(10));

// The message `sendmail -t` gets: To, Subject (host, result, duration), the summary, the tail.
std::string mail_message(const std::string& to, const RunSummary& run);
// Runs `sendmail -t` (no shell) with the message on stdin; a non-zero exit throws Error.
void send_mail(const std::string& sendmail, const std::string& to, const RunSummary& run);

}  // namespace coffer::report
