#include "run_coffer.hpp"

#include <cstdlib>

namespace coffer::test {

std::string coffer_bin() {
  const char* env = std::getenv("COFFER_BIN");
  return env && *env ? env : COFFER_BIN;
}

RunResult run_coffer(const std::vector<std::string>& args, std::string_view input,
                     const std::vector<std::string>& env) {
  std::vector<std::string> argv{coffer_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  if (env.empty()) return run_process(argv, input);
  std::vector<std::string> with_env{"/usr/bin/env"};
  with_env.insert(with_env.end(), env.begin(), env.end());
  with_env.insert(with_env.end(), argv.begin(), argv.end());
  return run_process(with_env, input);
}

int count_lines(const std::string& text) {
  int n = 0;
  bool content = false;
  for (char c : text) {
    if (c == '\n') {
      n += content;
      content = false;
    } else {
      content = true;
    }
  }
  return n + content;
}

}  // namespace coffer::test
