#pragma once

namespace coffer::cli {
// Parses the command line, runs the command, prints errors, returns the exit code.
int run(int argc, char** argv);
}  // namespace coffer::cli
