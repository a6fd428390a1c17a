// Runs coffer with a deadline, for tests of work that must stay bounded (a hole that costs
// nothing, a hostile peer that must not make B spin): a run past the deadline is killed and
// reported, instead of hanging the test suite.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "coffer/util/process.hpp"

namespace coffer::test {

struct BoundedResult {
  std::optional<int> exit_code;  // empty: still running at the deadline (then killed)
  std::string err;
  double seconds = 0;
};

// Runs `coffer args...` (stdin /dev/null, stderr collected) for at most `limit`.
BoundedResult run_coffer_bounded(const std::vector<std::string>& args, std::chrono::seconds limit);

// Waits for `p` to exit (without reaping it) until `deadline`; true if it did.
bool exited_by(Process& p, std::chrono::steady_clock::time_point deadline);

}  // namespace coffer::test
