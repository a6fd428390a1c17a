// The parts of `coffer run` around the steps (cmd_run.cpp): the run's outcome under the
// worst-of rule, the log's tail for the reports, one source's backup with its hooks and
// retention, and the reports at the start and the end. Hooks and reports: docs/report.md.
#pragma once

#include <cstddef>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coffer/report/report.hpp"
#include "coffer/util/error.hpp"
#include "context.hpp"

namespace coffer::cli {

// What the chain has done so far: the summary the reports get, and the exit code, the worst of
// every step's (exit_codes.hpp, worse_exit_code).
class Outcome {
 public:
  explicit Outcome(Context& ctx) : ctx_(ctx) {}
  // Logs and emits the failure; an interruption is rethrown (the chain stops, guards clean up).
  void failed(const std::string& step, const Error& e);
  void warned();
  int failures() const { return failures_; }
  int exit_code() const { return code_; }
  report::RunSummary summary;

 private:
  Context& ctx_;
  int code_ = 0;
  int failures_ = 0;
};

// Tees the log to keep its last lines for the mail and the failure ping; restores the terminal
// sink when destroyed.
class LogTail {
 public:
  LogTail(const GlobalOptions& g, std::size_t keep = 40);
  ~LogTail();
  LogTail(const LogTail&) = delete;
  std::vector<std::string> lines() const;

 private:
  struct Ring {
    mutable std::mutex mutex;
    std::deque<std::string> lines;
    std::size_t keep;
  };
  std::shared_ptr<Ring> ring_;
  const GlobalOptions& global_;
};

// One source: `before` hook (failing: skipped), backup into `repo`, retention (its `keep` or
// [retention]), then `after` or `on_failure`. Failures go to `out`; never throws but for an
// interruption.
report::SourceRun run_source(Context& ctx, const config::Config& cfg, const config::Source& source,
                             const std::filesystem::path& repo, Outcome& out);

// Where the run state lives: beside the vault image (`<image>.coffer/run-state.json`, with
// replication's state) or in a plain repository (`<dir>/.coffer/run-state.json`).
std::filesystem::path run_state_path(const config::Config& cfg);

// `[report]`: the start ping; at the end the state file, the Prometheus textfile, the success
// or failure ping and the mail. A report that fails is a warning, never a failed backup.
void report_start(const config::Config& cfg);
void report_finish(Context& ctx, const config::Config& cfg, const report::RunSummary& run);

}  // namespace coffer::cli
