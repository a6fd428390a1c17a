#pragma once

#include "coffer/util/log.hpp"

namespace coffer::cli {
struct GlobalOptions;
// Parses the command line, runs the command, prints errors, returns the exit code.
int run(int argc, char** argv);
// The log sink for stderr: one line per event, "coffer: " or "coffer: warning: ", or a JSON
// object with --json; -q drops info, debug needs -v. `coffer run` tees it to keep the tail.
log::Sink terminal_log_sink(const GlobalOptions& g);
}  // namespace coffer::cli
