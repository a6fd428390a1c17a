// Runs the real coffer binary (path from $COFFER_BIN, else the build's) and captures the result.
#pragma once

#include <string>
#include <vector>

#include "coffer/util/process.hpp"

namespace coffer::test {

std::string coffer_bin();
// Runs `coffer args...` with optional stdin and extra environment ("NAME=value").
RunResult run_coffer(const std::vector<std::string>& args, std::string_view input = {},
                     const std::vector<std::string>& env = {});
// Number of non-empty lines in `text`.
int count_lines(const std::string& text);

}  // namespace coffer::test
