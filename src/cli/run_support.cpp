#include "run_support.hpp"

#include <fmt/format.h>

#include "app.hpp"
#include "coffer/util/log.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {

void Outcome::failed(const std::string& step, const Error& e) {
  log::warn("{} failed: {}", step, e.what());
  ctx_.emit_json({{"type", "step_failed"},
                  {"step", step},
                  {"kind", kind_name(e.kind())},
                  {"message", e.what()},
                  {"exit_code", exit_code_for(e.kind())}});
  code_ = worse_exit_code(code_, exit_code_for(e.kind()));
  ++failures_;
  if (e.kind() == ErrorKind::interrupted) throw;
}

void Outcome::warned() {
  code_ = worse_exit_code(code_, kWarnings);
}

LogTail::LogTail(const GlobalOptions& g, std::size_t keep)
    : ring_(std::make_shared<Ring>()), global_(g) {
  ring_->keep = keep;
  // The tail holds warnings and info whatever -q says: the mail is read when something failed.
  log::set_sink(
      [ring = ring_, terminal = terminal_log_sink(g)](log::Level level, std::string_view msg) {
        terminal(level, msg);
        if (level == log::Level::debug) return;
        std::lock_guard lock(ring->mutex);
        ring->lines.push_back((level == log::Level::warning ? "warning: " : "") + std::string(msg));
        if (ring->lines.size() > ring->keep) ring->lines.pop_front();
      });
}

LogTail::~LogTail() {
  log::set_sink(terminal_log_sink(global_));
}

std::vector<std::string> LogTail::lines() const {
  std::lock_guard lock(ring_->mutex);
  return {ring_->lines.begin(), ring_->lines.end()};
}

std::filesystem::path run_state_path(const config::Config& cfg) {
  if (!cfg.repository.empty()) return cfg.repository / ".coffer" / "run-state.json";
  std::error_code ec;
  std::filesystem::path real = std::filesystem::weakly_canonical(cfg.vault.image, ec);
  if (ec) real = std::filesystem::absolute(cfg.vault.image);
  return std::filesystem::path(real.native() + ".coffer") / "run-state.json";
}

namespace {

std::string joined_tail(const report::RunSummary& run) {
  std::string body;
  for (const auto& line : run.log_tail) body += line + "\n";
  return body;
}

}  // namespace

void report_start(const config::Config& cfg) {
  if (cfg.report.healthcheck_url.empty()) return;
  try {
    report::ping(cfg.report.healthcheck_url, report::Ping::start, {});
  } catch (const Error& e) {
    log::warn("{} (the run goes on)", e.what());
  }
}

void report_finish(Context& ctx, const config::Config& cfg, const report::RunSummary& run) {
  auto warn = [&ctx](const char* what, const Error& e) {
    log::warn("{}", e.what());
    ctx.emit_json({{"type", "report_failed"}, {"report", what}, {"message", e.what()}});
  };
  report::RunState state;
  try {
    state = report::record_run(run_state_path(cfg), run);
  } catch (const Error& e) {
    warn("state", e);
  }
  if (!cfg.report.prometheus_textfile.empty()) {
    try {
      report::write_prometheus(cfg.report.prometheus_textfile, state);
    } catch (const Error& e) {
      warn("prometheus", e);
    }
  }
  if (!cfg.report.healthcheck_url.empty()) {
    try {
      report::ping(cfg.report.healthcheck_url,
                   run.failed() ? report::Ping::failure : report::Ping::success, joined_tail(run));
    } catch (const Error& e) {
      warn("ping", e);
    }
  }
  if (!cfg.report.email.empty() && (run.failed() || cfg.report.email_on_success)) {
    try {
      report::send_mail(cfg.report.sendmail, cfg.report.email, run);
      log::info("report mailed to {}", cfg.report.email);
    } catch (const Error& e) {
      warn("mail", e);
    }
  }
}

}  // namespace coffer::cli
