// The run's report by mail through the system's `sendmail -t` interface (every MTA provides
// one): the recipients come from the message's own To header, so no address is on argv.
#include <fmt/format.h>
#include <unistd.h>
#include <ctime>

#include "coffer/report/report.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/process.hpp"

namespace coffer::report {
namespace {

std::string utc(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string duration(double seconds) {
  auto s = static_cast<long long>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

// Header values must not carry a newline (a name could otherwise inject headers).
std::string header_safe(std::string v) {
  for (char& c : v)
    if (c == '\n' || c == '\r') c = ' ';
  return v;
}

}  // namespace

std::string mail_message(const std::string& to, const RunSummary& run) {
  std::string m;
  m += "To: " + header_safe(to) + "\n";
  m += header_safe(fmt::format("Subject: coffer on {}: {} after {}", run.hostname,
                               run.result_word(), duration(run.seconds))) +
       "\n";
  m += "Content-Type: text/plain; charset=utf-8\n";
  m += "Auto-Submitted: auto-generated\n\n";
  m += fmt::format("coffer run on {} started {}, took {}, exit code {} ({}).\n\n", run.hostname,
                   utc(run.started), duration(run.seconds), run.exit_code, run.result_word());
  for (const auto& s : run.sources) {
    m += fmt::format("source {} ({}): {}", s.name, s.path, result_name(s.result));
    if (!s.snapshot.empty()) m += fmt::format(", snapshot {}, {} kept", s.snapshot, s.snapshots);
    if (!s.error.empty()) m += "\n  " + s.error;
    m += "\n";
  }
  for (const auto& t : run.targets) {
    m += fmt::format("target {} ({}): {}", t.name, t.dest, result_name(t.result));
    if (t.generation) m += fmt::format(", generation {}", t.generation);
    if (!t.error.empty()) m += "\n  " + t.error;
    m += "\n";
  }
  m += "\nThe log's last lines:\n";
  for (const auto& line : run.log_tail) m += "  " + line + "\n";
  return m;
}

void send_mail(const std::string& sendmail, const std::string& to, const RunSummary& run) {
  std::string program = find_program(sendmail).value_or(sendmail);
  run_checked({program, "-t"}, "mail the report with", program, mail_message(to, run));
}

}  // namespace coffer::report
