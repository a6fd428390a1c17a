#include <gtest/gtest.h>

#include "coffer/util/error.hpp"
#include "coffer/util/process.hpp"

using namespace coffer;

TEST(Process, NoShellInterpretsArguments) {
  RunResult r = run_process({"printf", "%s|", "$HOME", "a b", ";ls"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "$HOME|a b|;ls|");
}

TEST(Process, FeedsLargeInputAndCollectsOutput) {
  std::string input(3 << 20, 'x');  // bigger than any pipe buffer
  RunResult r = run_process({"cat"}, input);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.size(), input.size());
}

TEST(Process, ExitCodeAndSignal) {
  EXPECT_EQ(run_process({"sh", "-c", "exit 7"}).exit_code, 7);
  EXPECT_EQ(run_process({"sh", "-c", "kill -9 $$"}).exit_code, 128 + 9);
}

TEST(Process, RunCheckedNamesProgramAndLastStderrLine) {
  try {
    run_checked({"sh", "-c", "echo first >&2; echo 'the real cause' >&2; exit 3"}, "format", "x.img");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "format x.img: sh exited with status 3 (the real cause)");
  }
}

TEST(Process, MissingProgramIsAnError) {
  EXPECT_THROW(Process({"/nonexistent/program"}), Error);
}

TEST(SplitCommand, QuotesAndEscapes) {
  EXPECT_EQ(split_command("pass show 'backup/vault key'"),
            (std::vector<std::string>{"pass", "show", "backup/vault key"}));
  EXPECT_EQ(split_command(R"(a "b \"c\"" d\ e)"),
            (std::vector<std::string>{"a", "b \"c\"", "d e"}));
  EXPECT_EQ(split_command("  "), std::vector<std::string>{});
  EXPECT_THROW(split_command("'open"), Error);
}
