// The state file of `coffer run` (docs/report.md, "State file"): one JSON object, replaced
// atomically after every run, so `coffer status` and the Prometheus counters survive reboots.
#include <fmt/format.h>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "coffer/report/report.hpp"
#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::report {

std::string_view result_name(Result r) {
  switch (r) {
    case Result::ok:
      return "ok";
    case Result::warnings:
      return "warnings";
    case Result::failed:
      return "failed";
    case Result::skipped:
      return "skipped";
  }
  return "failed";
}

Result parse_result(std::string_view name) {
  for (Result r : {Result::ok, Result::warnings, Result::skipped})
    if (result_name(r) == name) return r;
  return Result::failed;
}

std::string RunSummary::result_word() const {
  return exit_code == 0 ? "success" : exit_code == 3 ? "warnings" : "FAILED";
}

const ItemState* RunState::find(std::string_view kind, std::string_view name) const {
  for (const auto& i : items)
    if (i.kind == kind && i.name == name) return &i;
  return nullptr;
}

namespace {

constexpr int kStateVersion = 1;

nlohmann::json to_json(const RunState& s) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& i : s.items)
    items.push_back({{"kind", i.kind},
                     {"name", i.name},
                     {"last_success", i.last_success},
                     {"last_attempt", i.last_attempt},
                     {"last_result", i.last_result},
                     {"last_error", i.last_error},
                     {"bytes_last", i.bytes_last},
                     {"bytes_total", i.bytes_total},
                     {"generation", i.generation},
                     {"snapshots", i.snapshots},
                     {"snapshot", i.snapshot}});
  return {{"version", kStateVersion},
          {"last_run", s.last_run},
          {"last_run_seconds", s.last_run_seconds},
          {"last_exit_code", s.last_exit_code},
          {"items", items}};
}

ItemState& slot(RunState& s, const std::string& kind, const std::string& name) {
  auto it = std::find_if(s.items.begin(), s.items.end(),
                         [&](const ItemState& i) { return i.kind == kind && i.name == name; });
  if (it != s.items.end()) return *it;
  s.items.push_back({});
  s.items.back().kind = kind;
  s.items.back().name = name;
  return s.items.back();
}

void fold(ItemState& i, std::int64_t when, Result r, const std::string& error,
          std::uint64_t bytes) {
  i.last_attempt = when;
  i.last_result = result_name(r);
  i.last_error = error;
  i.bytes_total += bytes;
  if (r == Result::ok || r == Result::warnings) {
    i.last_success = when;
    i.bytes_last = bytes;
  }
}

}  // namespace

RunState load_state(const std::filesystem::path& file) {
  RunState s;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return s;
  try {
    nlohmann::json j = nlohmann::json::parse(read_file(file));
    if (j.at("version").get<int>() != kStateVersion)
      fail(ErrorKind::failed, "read run state", file.native(),
           fmt::format("unknown version {}", j.at("version").dump()));
    s.last_run = j.at("last_run");
    s.last_run_seconds = j.at("last_run_seconds");
    s.last_exit_code = j.at("last_exit_code");
    for (const auto& x : j.at("items")) {
      ItemState i;
      i.kind = x.at("kind");
      i.name = x.at("name");
      i.last_success = x.at("last_success");
      i.last_attempt = x.at("last_attempt");
      i.last_result = x.at("last_result");
      i.last_error = x.at("last_error");
      i.bytes_last = x.at("bytes_last");
      i.bytes_total = x.at("bytes_total");
      i.generation = x.at("generation");
      i.snapshots = x.at("snapshots");
      i.snapshot = x.at("snapshot");
      s.items.push_back(std::move(i));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::failed, "read run state", file.native(), e.what());
  }
  return s;
}

RunState record_run(const std::filesystem::path& file, const RunSummary& run) {
  RunState s = load_state(file);
  std::int64_t end = run.started + static_cast<std::int64_t>(run.seconds);
  s.last_run = end;
  s.last_run_seconds = run.seconds;
  s.last_exit_code = run.exit_code;
  for (const auto& src : run.sources) {
    ItemState& i = slot(s, "source", src.name);
    fold(i, end, src.result, src.error, src.bytes_sent);
    if (src.result == Result::ok || src.result == Result::warnings) {
      i.snapshots = src.snapshots;
      i.snapshot = src.snapshot;
    }
  }
  for (const auto& t : run.targets) {
    ItemState& i = slot(s, "target", t.name);
    fold(i, end, t.result, t.error, t.bytes_sent);
    if (t.generation) i.generation = t.generation;
  }
  std::filesystem::create_directories(file.parent_path());
  // Durable: a lost update would make status report an old success time after a crash.
  write_file_atomic(file, to_json(s).dump(2) + "\n", 0644, Durability::durable);
  return s;
}

}  // namespace coffer::report
