// The node_exporter textfile (docs/report.md, "Prometheus"): Prometheus' text exposition format,
// names after its conventions (base units, `_total` for counters, `_seconds`,
// `_timestamp_seconds`).
#include <fmt/format.h>
#include <string>

#include "coffer/report/report.hpp"
#include "coffer/util/atomic_file.hpp"

namespace coffer::report {
namespace {

// Label values escape backslash, double quote and newline (the exposition format's rule).
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string prometheus_text(const RunState& s) {
  std::string out;
  auto each = [&](std::string_view name, auto value, bool sources, bool targets) {
    for (const auto& i : s.items) {
      if ((i.kind == "source" && !sources) || (i.kind == "target" && !targets)) continue;
      out += fmt::format("{}{{{}=\"{}\"}} {}\n", name, i.kind, label(i.name), value(i));
    }
  };
  family(out, "coffer_last_success_timestamp_seconds", "gauge",
         "Unix time of the last successful backup (source) or replication (target).");
  each(
      "coffer_last_success_timestamp_seconds", [](const ItemState& i) { return i.last_success; },
      true, true);
  family(out, "coffer_last_run_success", "gauge",
         "1 if the last attempt for this source or target succeeded, else 0.");
  each(
      "coffer_last_run_success",
      [](const ItemState& i) {
        return i.last_result == "ok" || i.last_result == "warnings" ? 1 : 0;
      },
      true, true);
  family(out, "coffer_bytes_sent_total", "counter",
         "Bytes sent by coffer run: A to B per source, B to C per target.");
  each(
      "coffer_bytes_sent_total", [](const ItemState& i) { return i.bytes_total; }, true, true);
  family(out, "coffer_replica_generation", "gauge", "Generation committed on the target.");
  each(
      "coffer_replica_generation", [](const ItemState& i) { return i.generation; }, false, true);
  family(out, "coffer_snapshots", "gauge", "Complete snapshots of the source after retention.");
  each(
      "coffer_snapshots", [](const ItemState& i) { return i.snapshots; }, true, false);
  family(out, "coffer_last_run_duration_seconds", "gauge", "Duration of the last coffer run.");
  out += fmt::format("coffer_last_run_duration_seconds {:.3f}\n", s.last_run_seconds);
  family(out, "coffer_last_run_timestamp_seconds", "gauge", "Unix time the last coffer run ended.");
  out += fmt::format("coffer_last_run_timestamp_seconds {}\n", s.last_run);
  family(out, "coffer_last_run_exit_code", "gauge", "Exit code of the last coffer run.");
  out += fmt::format("coffer_last_run_exit_code {}\n", s.last_exit_code);
  return out;
}

void write_prometheus(const std::filesystem::path& file, const RunState& state) {
  // The rename alone is what node_exporter needs (never half a file); the next run rewrites it.
  write_file_atomic(file, prometheus_text(state), 0644, Durability::replace_only);
}

}  // namespace coffer::report
